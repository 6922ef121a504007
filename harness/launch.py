"""The parent side of a trial: launch the child, enforce the timeout, turn any outcome into a record."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Callable

from adapters import FRAMEWORKS
from harness.record import TrialRecord, TrialSpec, read_record, write_json
from harness.threads import thread_env

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PROGRESS_S = 1.0  # the parent wakes this often; more would steal cycles from the child on small machines
TERM_GRACE_S = 5.0  # after SIGTERM, time for the child to write what it measured
LOG_TAIL_LINES = 12

ProgressCallback = Callable[[dict], None]


def child_env(framework: str, variant: str, device: str, threads: int) -> dict[str, str]:
    """The environment of any child that runs an adapter (a trial or an equivalence probe)."""
    env = dict(os.environ)
    env.update(thread_env(threads))
    info = FRAMEWORKS.get(framework)
    if info is not None:
        env.update(info.env.get(variant, {}))
    if device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""  # no framework may touch (or reserve memory on) a GPU
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _log_tail(path: Path) -> str:
    try:
        with open(path, errors="replace") as fh:
            lines = deque((line.rstrip() for line in fh if line.strip()), maxlen=LOG_TAIL_LINES)
    except OSError:
        return ""
    return "\n".join(lines)


def _read_progress(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the child's process group, then SIGKILL it if it does not leave in time."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=TERM_GRACE_S)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def launch(trial: TrialSpec, run_dir: Path, run_id: str, python: str = sys.executable,
           on_progress: ProgressCallback | None = None, machine_gflops: float | None = None) -> TrialRecord:
    """Run one trial in a fresh process and return its record (also stored in run_dir/records).
    `machine_gflops`: the machine's speed measured just before (harness.peak.machine_speed)."""
    work = run_dir / "work"
    spec_path, result_path = work / f"{trial.trial_id}.trial.json", work / f"{trial.trial_id}.result.json"
    progress_path = work / f"{trial.trial_id}.progress.json"
    log_path = run_dir / "logs" / f"{trial.trial_id}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    write_json(spec_path, trial.__dict__)
    for stale in (result_path, progress_path):
        stale.unlink(missing_ok=True)

    cmd = [python, "-m", "harness.trial", str(spec_path), str(result_path), str(progress_path), run_id]
    timed_out = False
    with open(log_path, "w") as log:
        env = child_env(trial.framework, trial.variant, trial.device, trial.threads)
        proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        # A blocking waitpid on a helper thread: Popen.wait(timeout=...) would poll every few
        # milliseconds and preempt the child's compute threads on a 2-core machine.
        exited = threading.Event()
        threading.Thread(target=lambda: (proc.wait(), exited.set()), daemon=True).start()
        deadline = time.monotonic() + trial.timeout_s
        try:
            while not exited.wait(timeout=min(PROGRESS_S, max(0.0, deadline - time.monotonic()))):
                if on_progress and (state := _read_progress(progress_path)):
                    on_progress(state)
                if time.monotonic() >= deadline:
                    timed_out = True
                    _stop(proc)
                    break
        except BaseException:  # Ctrl-C in the parent: do not leave the child running
            _stop(proc)
            raise
        exited.wait()

    record = _result(trial, run_id, proc.returncode, result_path, log_path, timed_out)
    record.machine_gflops = machine_gflops
    write_json(run_dir / "records" / f"{trial.trial_id}.json", record.to_dict(), overwrite=False)
    return record


def _result(trial: TrialSpec, run_id: str, returncode: int, result_path: Path, log_path: Path,
            timed_out: bool) -> TrialRecord:
    record = None
    if result_path.exists():
        try:
            record = read_record(result_path)
        except (ValueError, TypeError, KeyError) as exc:
            return TrialRecord.not_run(trial, run_id, "error", f"child wrote an unreadable record: {exc}")
    if timed_out:
        reason = f"no result within the {trial.timeout_s:g} s time limit; the child was stopped"
        if record is None:
            return TrialRecord.not_run(trial, run_id, "timeout", reason)
        record.status, record.reason = "timeout", reason
        return record
    if record is not None:
        return record
    how = f"killed by signal {-returncode}" if returncode < 0 else f"exited with code {returncode}"
    tail = _log_tail(log_path)
    return TrialRecord.not_run(trial, run_id, "error",
                               f"child {how} without a record" + (f"; last output:\n{tail}" if tail else ""))
