"""Carrying out a run: from options (or an interrupted run directory) to a run directory full of
records, each trial in its own process, placed by the run's executor (`harness.executor`: here, one
at a time, or on a Ray cluster). `bench.py` parses and prints; this does the work.

The order is chosen so that mistakes cost seconds, not the minutes of an environment build:
options and the output folder are checked first, then the executor's machines are prepared
(datasets, then isolated environments), and only then is the run directory made and locked. A run directory is worked on by
one process at a time (`RunDir.lock`). SIGTERM, SIGHUP and Ctrl-C stop the trial in flight, which
is recorded as `interrupted` with what it measured, and end the run with the command that resumes
it (`Interrupted`, caught by the CLI).
"""
from __future__ import annotations

import dataclasses
import shlex
import signal
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from harness.executor import Executor, executor_for
from harness.files import BadFile, check_writable, describe_os_error
from harness.launch import Interrupted
from harness.plan import RunOptions, plan, threads_problem
from harness.paths import PROGRAM
from harness.prepare import RunError
from harness.record import TrialRecord, TrialSpec
from harness.rundir import Manifest, RunDir, RunDirBusy, RunEnvironment
from workloads.profiles import get_profile

STOP_SIGNALS = tuple(s for s in (signal.SIGTERM, getattr(signal, "SIGHUP", None), signal.SIGINT) if s)


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
    return shlex.join([PROGRAM, "run", "--resume", str(run_dir.path)])


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


def new_manifest(run_dir: RunDir, options: RunOptions, trials: list[TrialSpec], environment_: RunEnvironment,
                 command: str) -> Manifest:
    return Manifest(run_id=run_dir.run_id, command=command,
                    created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), options=options,
                    trials=[t.trial_id for t in trials], environment=environment_,
                    profile=dataclasses.replace(get_profile(options.profile), budget_s=options.budget))


def carry_out(options: RunOptions | None, out: Path | None, resume: Path | None, base: Path, create_envs: bool,
              command: str, ray_address: str | None = None) -> Outcome:
    """A new run of `options` under `out`, or the rest of the run at `resume`. Raises RunError for
    a request that cannot be carried out, Interrupted (with `run_dir` set) when stopped."""
    run_dir = RunDir(resume) if resume else None
    if run_dir is not None:
        options = _open(run_dir).options
        if ray_address and options.executor == "ray":  # the cluster may have moved since
            options = dataclasses.replace(options, ray_address=ray_address)
    trials = plan(options)
    executor = executor_for(options)  # a Ray cluster that cannot be reached is named before anything is made
    with interruptible():
        try:
            if run_dir is None:
                try:
                    check_writable(out)
                except OSError as exc:
                    raise RunError(f"cannot write to output directory {out}: {describe_os_error(exc)}") from None
            else:
                with run_dir.lock():
                    try:
                        todo_ids = set(run_dir.to_do([t.trial_id for t in trials]))
                    except BadFile as exc:
                        raise RunError(f"cannot resume: {exc}; move it out of records/ to measure that trial "
                                       "again") from None
                    todo = [t for t in trials if t.trial_id in todo_ids]
                    return Outcome(run_dir, _run_trials(run_dir, executor, todo, options, base, create_envs),
                                   len(trials))
            problems = executor.prepare(options, trials, base, create_envs)
            environment_ = executor.describe(options, trials, base)
            run_dir = RunDir.create(out)
            with run_dir.lock():
                run_dir.write_manifest(new_manifest(run_dir, options, trials, environment_, command), overwrite=False)
                records = executor.execute(run_dir, trials, problems, base)
                executor.finish(run_dir)
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
        finally:
            executor.close()


def _run_trials(run_dir: RunDir, executor: Executor, todo: list[TrialSpec], options: RunOptions, base: Path,
                create_envs: bool) -> list[TrialRecord]:
    """The trials of a resumed run that have no record yet."""
    if not todo:
        return []
    problems = executor.prepare(options, todo, base, create_envs)
    records = executor.execute(run_dir, todo, problems, base)
    executor.finish(run_dir)
    return records
