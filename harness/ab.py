"""An A/B run on one machine: two revisions of this project, their trials interleaved.

A baseline recorded on another machine, or on the same shared runner another day, mixes the
machine's change with the code's. Here both revisions are checked out as git worktrees (no
network), and each trial of the plan runs once for each side, back to back, the side that goes
first alternating from trial to trial, so that both see the same machine at the same time. Each
side's trial is the side's own code (its adapters, workloads and `harness.trial`, run in its
worktree); this process, the revision that was invoked, plans, launches and times the trials
alike for both. Each side gets an ordinary run directory, so `report` and `compare` work on them.

What each side needs is reused where it agrees with the invoking revision: the same
requirements.txt runs on this interpreter, the same isolated-environment pins on the same
environments; a side whose pins differ gets its own (a venv in its worktree, environments under
the A/B folder), built by its own `bench.py env setup`.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from adapters import ENVIRONMENTS, environment_of
from adapters.numerics import Numerics
from harness import envs
from harness.paths import PROJECT_ROOT, PROGRAM, is_source_tree
from harness.plan import RunOptions, plan
from harness.record import TrialRecord, TrialSpec
from harness.rundir import GitState, RunDir
from harness.executor import run_one
from harness.prepare import RunError, check_data, describe, prepare_environments, remeasure_peak
from harness.run import interruptible, new_manifest

log = logging.getLogger("harness.ab")
SIDES = ("base", "head")


@dataclass
class Side:
    name: str  # "base" or "head"
    ref: str  # as given
    commit: str
    root: Path  # its worktree
    python: str  # the interpreter of its main environment
    env_base: Path  # where its isolated environments live
    env_problems: dict[str, str] = dataclasses.field(default_factory=dict)  # per trial id: why it is skipped
    run_dir: RunDir | None = None

    def interpreter(self, trial: TrialSpec) -> str:
        env = environment_of(trial.framework, trial.variant)
        return self.python if env is None else envs.interpreter(trial.framework, trial.variant, self.env_base)


@dataclass
class ABOutcome:
    folder: Path
    base: Side
    head: Side
    records: dict[str, list[TrialRecord]]  # per side, in the order they ran


def _git(*args: str, cwd: Path = PROJECT_ROOT) -> str:
    out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise RunError(f"git {' '.join(args)} failed in {cwd}: {out.stderr.strip().splitlines()[-1:] or out.returncode}")
    return out.stdout.strip()


def resolve(ref: str) -> str:
    """The commit a ref names in this repository (one line naming the ref otherwise)."""
    out = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], cwd=PROJECT_ROOT,
                         capture_output=True, text=True, timeout=60)
    if out.returncode != 0 or not out.stdout.strip():
        raise RunError(f"unknown revision {ref!r} in {PROJECT_ROOT}; give a branch, tag or commit of this "
                       f"repository (fetched already: the A/B run does not use the network)")
    return out.stdout.strip()


def _side_pins(python: str, root: Path) -> dict[str, list[str]] | None:
    """The isolated environments' pins as the side's own registry declares them (None: it cannot say)."""
    code = ("import json; from adapters import ENVIRONMENTS as E; "
            "print(json.dumps({k: list(v.requirements) for k, v in E.items()}))")
    out = subprocess.run([python, "-c", code], cwd=root, capture_output=True, text=True, timeout=120)
    try:
        return json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else None
    except (ValueError, IndexError):
        return None


def _prepare(side: Side, folder: Path, env_base: Path, create_envs: bool) -> None:
    """The side's interpreter and isolated environments: ours where they agree, its own otherwise."""
    ours = (PROJECT_ROOT / "requirements.txt").read_text()
    if (side.root / "requirements.txt").read_text() != ours:
        venv = side.root / ".venv"
        log.info("%s (%s): its requirements.txt differs; setting up %s", side.name, side.ref, venv)
        for cmd in ([sys.executable, "-m", "venv", str(venv)],
                    [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "-r",
                     str(side.root / "requirements.txt")]):
            if subprocess.run(cmd, cwd=side.root).returncode != 0:
                raise RunError(f"cannot set up {side.name}'s environment ({side.ref}): {' '.join(cmd[:4])} ... failed")
        side.python = str(venv / "bin" / "python")
    pins = _side_pins(side.python, side.root)
    same = pins == {k: list(v.requirements) for k, v in ENVIRONMENTS.items()}
    side.env_base = env_base if same else folder / f"envs-{side.name}"
    if not same and create_envs:
        log.info("%s (%s): its isolated environments' pins differ; setting them up in %s", side.name, side.ref,
                 side.env_base)
        subprocess.run([side.python, "bench.py", "env", "setup", "--env-dir", str(side.env_base)], cwd=side.root)


def _problem(side: Side, trial: TrialSpec, shared: dict[str, str], env_base: Path) -> str | None:
    """Why the side cannot run this trial (it becomes `skipped`), or None."""
    if trial.numerics != Numerics() and not (side.root / "adapters" / "numerics.py").exists():
        # Its harness would ignore the numeric settings it does not know and measure float32 under this label.
        return (f"{side.name} ({side.ref}) predates --precision, --tf32 and --autotune; it would run float32 "
                "with each framework's defaults")
    env = environment_of(trial.framework, trial.variant)
    if env is not None and side.env_base == env_base:
        return shared.get(env.name)
    if env is not None:
        python = Path(side.interpreter(trial))
        return None if python.exists() else f"environment {env.name} of {side.name} is not set up in {side.env_base}"
    return envs.unavailable(trial.framework, trial.variant, env_base) if side.python == sys.executable else None


def run_ab(base_ref: str, head_ref: str, options: RunOptions, out: Path, env_base: Path, create_envs: bool,
           command: str) -> ABOutcome:
    """Check out both revisions, run every trial of `options` for each, interleaved, and return both
    sides' records; the run directories are `<out>/<time>-<base>-<head>/{base,head}/<run id>`."""
    if not is_source_tree():
        raise RunError(f"{PROGRAM} ab checks out two revisions of dlbench's own git repository, and this dlbench is an "
                       f"installed copy ({PROJECT_ROOT}); run it from a clone (python bench.py ab, or the dlbench "
                       f"of an editable install)")
    commits = {name: resolve(ref) for name, ref in zip(SIDES, (base_ref, head_ref))}
    trials = plan(options)
    check_data(options, trials)
    folder = out / f"{datetime.now().strftime('%Y%m%d-%H%M%S')}-{commits['base'][:7]}-{commits['head'][:7]}"
    folder.mkdir(parents=True)
    sides: dict[str, Side] = {}
    try:
        for name, ref in zip(SIDES, (base_ref, head_ref)):
            root = folder / "worktrees" / name
            _git("worktree", "add", "--detach", "--quiet", str(root), commits[name])
            sides[name] = Side(name, ref, commits[name], root, sys.executable, env_base)
        shared = prepare_environments(trials, env_base, create_envs)
        for side in sides.values():
            _prepare(side, folder, env_base, create_envs)
            side.env_problems = {t.trial_id: p for t in trials if (p := _problem(side, t, shared, env_base))}
        records: dict[str, list[TrialRecord]] = {name: [] for name in SIDES}
        with interruptible():
            for side in sides.values():
                side.run_dir = RunDir.create(folder / side.name)
                manifest = new_manifest(side.run_dir, options, trials, describe(options, trials, side.env_base),
                                        command)
                env = dataclasses.replace(manifest.environment, git=GitState(commit=side.commit, dirty=False))
                side.run_dir.write_manifest(dataclasses.replace(manifest, environment=env), overwrite=False)
            log.info("A/B %s (%s) against %s (%s): %d trials each, interleaved -> %s", head_ref, commits["head"][:7],
                     base_ref, commits["base"][:7], len(trials), folder)
            for i, trial in enumerate(trials):
                for side in (sides["base"], sides["head"]) if i % 2 == 0 else (sides["head"], sides["base"]):
                    records[side.name].append(_run_one(side, trial))
            for side in sides.values():
                remeasure_peak(side.run_dir)
        return ABOutcome(folder, sides["base"], sides["head"], records)
    finally:
        for side in sides.values():
            subprocess.run(["git", "worktree", "remove", "--force", str(side.root)], cwd=PROJECT_ROOT,
                           capture_output=True, timeout=120)
        shutil.rmtree(folder / "worktrees", ignore_errors=True)
        subprocess.run(["git", "worktree", "prune"], cwd=PROJECT_ROOT, capture_output=True, timeout=120)


def _run_one(side: Side, trial: TrialSpec) -> TrialRecord:
    record = run_one(side.run_dir, trial, side.env_problems.get(trial.trial_id), side.interpreter(trial),
                     root=side.root)
    log.info("%s %s %s %s: %s", side.name, trial.label, trial.workload, trial.dataset, record.status)
    return record
