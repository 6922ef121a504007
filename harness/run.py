"""Carrying out a run: from options (or an interrupted run directory) to a run directory full of
records, one trial at a time in its own process. `bench.py` parses and prints; this does the work.

The order is chosen so that mistakes cost seconds, not the minutes of an environment build:
options and the output folder are checked first, then the datasets, then the isolated
environments, and only then is the run directory made and locked. A run directory is worked on by
one process at a time (`RunDir.lock`). SIGTERM, SIGHUP and Ctrl-C stop the trial in flight, which
is recorded as `interrupted` with what it measured, and end the run with the command that resumes
it (`Interrupted`, caught by the CLI).
"""
from __future__ import annotations

import dataclasses
import logging
import shlex
import signal
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from adapters import environment_of
from harness import environment, envs
from harness.files import BadFile, check_writable, describe_os_error
from harness.launch import PROJECT_ROOT, Interrupted, ProgressCallback, launch
from harness.peak import best_of, machine_speed, matmul_peak
from harness.plan import RunOptions, plan, threads_problem
from harness.record import TrialRecord, TrialSpec
from harness.rundir import IsolatedEnvironment, Manifest, MatmulPeak, RunDir, RunDirBusy
from workloads import IMAGE_DATASETS, datasets

log = logging.getLogger("harness.run")
STOP_SIGNALS = tuple(s for s in (signal.SIGTERM, getattr(signal, "SIGHUP", None), signal.SIGINT) if s)


class RunError(Exception):
    """The run cannot go on: one line for the user, and the exit code (2: the request cannot be
    carried out as given; 1: a resource, such as a dataset, is missing)."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Outcome:
    run_dir: RunDir
    records: list[TrialRecord]  # the trials this invocation ran or skipped
    total: int  # trials in the whole plan


@contextmanager
def interruptible() -> Iterator[None]:
    """SIGTERM, SIGHUP and SIGINT raise `Interrupted` in the main thread. Only the first: the
    cleanup it starts (stopping the child, writing its record) is bounded and must not be cut."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired: list[int] = []

    def interrupt(signum: int, frame: object) -> None:
        if not fired:
            fired.append(signum)
            raise Interrupted(signum)

    previous = {s: signal.signal(s, interrupt) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def resume_command(run_dir: RunDir) -> str:
    return shlex.join(["bench.py", "run", "--resume", str(run_dir.path)])


def check_data(options: RunOptions, trials: list[TrialSpec]) -> None:
    """Find (or download) every dataset the trials need before any of them starts."""
    for name in sorted({t.dataset for t in trials if t.dataset in IMAGE_DATASETS}):
        try:
            datasets.load(name, data_dir=options.data_dir, cache_dir=options.cache_dir)
        except datasets.DatasetError as exc:
            raise RunError(str(exc), code=1) from None


def prepare_environments(trials: list[TrialSpec], base: Path, create: bool) -> dict[str, str]:
    """Make sure the isolated environments the trials need exist. Returns, per environment that is
    not usable, the reason its trials are skipped (the rest of the run goes on)."""
    problems = {}
    for env in envs.needed([(t.framework, t.variant) for t in trials]):
        state = envs.status(env, base)
        if state.ready:
            continue
        command = f"bench.py env setup {env.name}" + (f" --env-dir {base}" if base != envs.base_dir(None) else "")
        if not create:
            problems[env.name] = f"environment {env.name} is not set up ({state.problem}); run: {command}"
            continue
        log.info("environment %s is %s; creating it in %s (`%s` does this alone)", env.name, state.problem,
                 state.path, command)
        try:
            envs.setup(env, base, echo=lambda line: log.info("  %s", line))
        except (envs.EnvSetupError, OSError) as exc:
            log.error("environment %s could not be set up; its trials are skipped:\n%s", env.name, exc)
            problems[env.name] = f"environment {env.name} could not be set up: {exc}"
    return problems


def _isolated_environments(trials: list[TrialSpec], base: Path) -> dict[str, IsolatedEnvironment]:
    states = {}
    for env in envs.needed([(t.framework, t.variant) for t in trials]):
        state = envs.status(env, base)
        states[env.name] = IsolatedEnvironment(ready=state.ready, python=str(state.python), versions=state.versions,
                                               requirements=list(env.requirements))
    return states


def unavailable(trial: TrialSpec, env_problems: dict[str, str], base: Path) -> str | None:
    """Why this trial cannot start (it becomes a `skipped` record), or None."""
    env = environment_of(trial.framework, trial.variant)
    if env is not None:
        return env_problems.get(env.name)
    return envs.unavailable(trial.framework, trial.variant, base)


def _open(run_dir: RunDir) -> Manifest:
    try:
        manifest = run_dir.read_manifest()
    except BadFile as exc:
        raise RunError(f"cannot resume: {exc}") from None
    problem = manifest.plan_problem()
    if problem:
        raise RunError(f"cannot resume: {run_dir.manifest_path}: {problem}")
    problem = threads_problem(manifest.options.threads)
    if problem:
        raise RunError(f"cannot resume {run_dir.path}: its options say {problem}")
    return manifest


def new_manifest(run_dir: RunDir, options: RunOptions, trials: list[TrialSpec], base: Path, command: str) -> Manifest:
    log.info("measuring the machine's matrix-multiply rate")
    described = environment.describe(options.threads)
    return Manifest(
        run_id=run_dir.run_id, command=command,
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), options=options,
        trials=[t.trial_id for t in trials],
        environment=dataclasses.replace(described, matmul_peak=MatmulPeak(**matmul_peak(options.threads)),
                                        isolated_environments=_isolated_environments(trials, base)))


def carry_out(options: RunOptions | None, out: Path | None, resume: Path | None, base: Path, create_envs: bool,
              command: str) -> Outcome:
    """A new run of `options` under `out`, or the rest of the run at `resume`. Raises RunError for
    a request that cannot be carried out, Interrupted (with `run_dir` set) when stopped."""
    run_dir = RunDir(resume) if resume else None
    if run_dir is not None:
        options = _open(run_dir).options
    else:
        try:
            check_writable(out)
        except OSError as exc:
            raise RunError(f"cannot write to output directory {out}: {describe_os_error(exc)}") from None
    trials = plan(options)
    with interruptible():
        try:
            if run_dir is not None:
                with run_dir.lock():
                    try:
                        todo_ids = set(run_dir.to_do([t.trial_id for t in trials]))
                    except BadFile as exc:
                        raise RunError(f"cannot resume: {exc}; move it out of records/ to measure that trial "
                                       "again") from None
                    todo = [t for t in trials if t.trial_id in todo_ids]
                    return Outcome(run_dir, _run_trials(run_dir, todo, options, base, create_envs), len(trials))
            check_data(options, trials)
            env_problems = prepare_environments(trials, base, create_envs)
            run_dir = RunDir.create(out)
            with run_dir.lock():
                run_dir.write_manifest(new_manifest(run_dir, options, trials, base, command), overwrite=False)
                records = execute(run_dir, trials, env_problems, base)
                remeasure_peak(run_dir)
                return Outcome(run_dir, records, len(trials))
        except RunDirBusy as exc:
            raise RunError(str(exc)) from None
        except OSError as exc:  # a full disk, a folder made read-only meanwhile
            hint = f"; when it can be written again, finish the run with: {resume_command(run_dir)}" \
                if run_dir is not None and run_dir.manifest_path.exists() else ""
            where = run_dir.path if run_dir is not None else out
            raise RunError(f"cannot write in {where}: {describe_os_error(exc)}{hint}") from None
        except Interrupted as exc:
            exc.run_dir = run_dir
            raise


def _run_trials(run_dir: RunDir, todo: list[TrialSpec], options: RunOptions, base: Path,
                create_envs: bool) -> list[TrialRecord]:
    """The trials of a resumed run that have no record yet."""
    if not todo:
        return []
    check_data(options, todo)
    env_problems = prepare_environments(todo, base, create_envs)
    records = execute(run_dir, todo, env_problems, base)
    remeasure_peak(run_dir)
    return records


def execute(run_dir: RunDir, trials: list[TrialSpec], env_problems: dict[str, str], base: Path) -> list[TrialRecord]:
    """Each trial in its own process, in order, with a progress bar on a terminal (a log line per
    trial elsewhere). The machine's speed is probed before each."""
    from tqdm import tqdm

    log.info("run %s: %d trials to do -> %s", run_dir.run_id, len(trials), run_dir.path)
    records: list[TrialRecord] = []
    with tqdm(total=len(trials), unit="trial", dynamic_ncols=True, disable=None, file=sys.stderr) as bar:
        for trial in trials:
            bar.set_description(f"{trial.label} {trial.workload}")

            def show(state: dict) -> None:
                acc = state.get("accuracy")
                bar.set_postfix_str(f"epoch {state.get('epoch', 0):.2f}/{state.get('epochs', '?')}"
                                    + (f" acc {acc:.4f}" if isinstance(acc, float) else ""))

            record = run_one(run_dir, trial, unavailable(trial, env_problems, base),
                             envs.interpreter(trial.framework, trial.variant, base), on_progress=show)
            records.append(record)
            if bar.disable:
                log.info("%s %s %s: %s", trial.label, trial.workload, trial.dataset, record.status)
            bar.set_postfix_str(record.status)
            bar.update()
    return records


def run_one(run_dir: RunDir, trial: TrialSpec, reason: str | None, python: str,
            on_progress: ProgressCallback | None = None, root: Path = PROJECT_ROOT) -> TrialRecord:
    """One trial: a `skipped` record when it cannot start (`reason`), else its own process running
    the code at `root` with `python`, the machine's speed probed just before."""
    if reason:
        record = TrialRecord.not_run(trial, run_dir.run_id, "skipped", reason)
        run_dir.write_record(record)
        return record
    return launch(trial, run_dir.path, run_dir.run_id, python=python, on_progress=on_progress,
                  machine_gflops=machine_speed(trial.threads), root=root)


def remeasure_peak(run_dir: RunDir) -> None:
    """Measure the matmul peak again after the trials and keep the better of the two in the
    manifest (a busy moment at the start would otherwise inflate every fraction of peak)."""
    manifest = run_dir.read_manifest()
    start = manifest.environment.matmul_peak
    threads = manifest.options.threads
    earlier = [dataclasses.asdict(start)] if start and start.applies_to(threads, manifest.environment.cpu_cores) else []
    best = best_of(*earlier, matmul_peak(threads))
    environment_ = dataclasses.replace(manifest.environment, matmul_peak=MatmulPeak(**best))
    run_dir.write_manifest(dataclasses.replace(manifest, environment=environment_))
