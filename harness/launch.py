"""The parent side of a trial: launch the child, enforce the timeout, turn any outcome into a record.

Whatever happens, the trial ends with a record in the run directory and no process of it left
running: a crash, a kill or a hang becomes an `error` or `timeout` record with its cause and the
child's last output; an interpreter that cannot start becomes an `error` record; an interruption of
the parent (Ctrl-C, SIGTERM, SIGHUP) stops the child, which writes what it measured, and becomes an
`interrupted` record before the interruption goes on up; and a parent that dies outright takes its
child with it (`harness.lifeline`).
"""
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
from adapters.numerics import Numerics, numerics_environment
from harness import lifeline, scratch
from harness.allocator import malloc_environment
from harness.files import BadFile, describe_os_error, write_json
from harness.gpu_memory import ProcessGpuMemory
from harness.measure import oom_kills
from harness.record import Placement, TrialRecord, TrialSpec
from harness.rundir import RunDir
from harness.schema import load_record
from harness.threads import thread_env
from harness.trial import LAUNCHED_AT_VAR
from harness.paths import CACHE_DIR_VAR, child_code_root
from workloads.datasets import ENV_DATA_DIR

PROGRESS_S = 1.0  # the parent wakes this often; more would steal cycles from the child on small machines
TERM_GRACE_S = 5.0  # after SIGTERM, time for the child to write what it measured
LOG_TAIL_LINES = 12
PATH_VARIABLES = (ENV_DATA_DIR, CACHE_DIR_VAR)  # resolved here: the child runs elsewhere
NATIVE_CRASHES = {"SIGSEGV": "a crash in native code", "SIGBUS": "a crash in native code",
                  "SIGILL": "an illegal instruction in native code", "SIGFPE": "an arithmetic fault in native code",
                  "SIGABRT": "aborted by native code (a failed check or assertion)"}

# Compilation caches on disk would make a trial's first block a warm start when an earlier run
# compiled the same graph (Inductor's FX graph cache survives torch.compiler.reset()). Each trial
# gets fresh, empty ones, removed after it; caches that persist only when configured are switched off.
CACHE_DIRS = {"TORCHINDUCTOR_CACHE_DIR": "inductor", "TRITON_CACHE_DIR": "triton", "CUDA_CACHE_PATH": "cuda"}
CACHES_OFF = ("JAX_COMPILATION_CACHE_DIR",)  # JAX's persistent cache: off unless this is set
COMPILE_CACHE = ("cold: fresh, empty TORCHINDUCTOR_CACHE_DIR, TRITON_CACHE_DIR and CUDA_CACHE_PATH for this "
                 "trial; no persistent JAX or TensorFlow XLA cache")
COMPILE_CACHE_VAR = "BENCH_COMPILE_CACHE"  # tells the child what it got, for its record

ProgressCallback = Callable[[dict], None]


class Interrupted(BaseException):
    """The run was stopped by a signal (Ctrl-C, SIGTERM, SIGHUP), raised in the parent's main thread."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
        self.run_dir: object = None  # the RunDir being worked on, once there is one

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name


def cold_caches(env: dict[str, str], folder: Path) -> dict[str, str]:
    """`env` with every compilation cache in (empty) sub-folders of `folder`, or switched off."""
    env = {k: v for k, v in env.items() if k not in CACHES_OFF}
    env.update({name: str(folder / sub) for name, sub in CACHE_DIRS.items()})
    flags = [f for f in env.get("TF_XLA_FLAGS", "").split() if not f.startswith("--tf_xla_persistent_cache")]
    env["TF_XLA_FLAGS"] = " ".join(flags)
    env[COMPILE_CACHE_VAR] = COMPILE_CACHE
    return env


def child_env(framework: str, variant: str, device: str, threads: int, root: Path | None = None,
              numerics: Numerics = Numerics(), malloc: str = "default") -> dict[str, str]:
    """The environment of any child that runs an adapter (a trial or an equivalence probe) from the
    project at `root` (another revision's worktree in an A/B run; default: this project's code)."""
    env = dict(os.environ)
    env.update(thread_env(threads))
    env.update(malloc_environment(malloc))
    for name, value in numerics_environment(numerics, device).items():
        env[name] = f"{env[name]} {value}" if name == "XLA_FLAGS" and env.get(name) else value
    info = FRAMEWORKS.get(framework)
    if info is not None:
        env.update(info.env.get(variant, {}))
    if device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""  # no framework may touch (or reserve memory on) a GPU
    for name in PATH_VARIABLES:
        if env.get(name):
            env[name] = os.path.abspath(os.path.expanduser(env[name]))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root or child_code_root()), env.get("PYTHONPATH")]))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    env["PYTHONUNBUFFERED"] = "1"
    return lifeline.child_environment(env)


def _log_tail(path: Path) -> str:
    try:
        with open(path, errors="replace") as fh:
            lines = deque((line.rstrip() for line in fh if line.strip()), maxlen=LOG_TAIL_LINES)
    except OSError:
        return ""
    return "\n".join(lines)


def _read_progress(path: Path) -> dict | None:
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def _end_group(proc: subprocess.Popen) -> None:
    """SIGKILL whatever is left in the exited child's process group (its own session)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


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


def _interruption(exc: BaseException) -> str:
    if isinstance(exc, Interrupted):
        return exc.name
    if isinstance(exc, KeyboardInterrupt):
        return "Ctrl-C"
    return f"a failure of the harness itself: {type(exc).__name__}: {exc}"


def launch(trial: TrialSpec, run_dir: Path, run_id: str, python: str = sys.executable,
           on_progress: ProgressCallback | None = None, machine_gflops: float | None = None,
           root: Path | None = None, placement: Placement = Placement(), probe_s: float | None = None) -> TrialRecord:
    """Run one trial in a fresh process and return its record (also stored in run_dir/records).
    `machine_gflops`: the machine's speed measured just before (harness.peak.machine_speed), in
    `probe_s` seconds;
    `root`: the project whose code the trial runs (another revision's worktree in an A/B run;
    default: this project's, `harness.paths.child_code_root`);
    `placement`: the executor, node and attempt, stamped on the record."""
    run = RunDir(run_dir)
    spec_path, result_path = run.work_dir / f"{trial.trial_id}.trial.json", run.work_dir / f"{trial.trial_id}.result.json"
    progress_path = run.work_dir / f"{trial.trial_id}.progress.json"
    log_path = run.log_path(trial.trial_id)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    write_json(spec_path, trial.__dict__)
    for stale in (result_path, progress_path):
        stale.unlink(missing_ok=True)

    cmd = [python, "-m", "harness.trial", str(spec_path), str(result_path), str(progress_path), run_id]
    with scratch.folder("caches", trial.trial_id) as caches:
        return _supervise(trial, run, run_id, cmd, caches, result_path, progress_path, log_path, on_progress,
                          machine_gflops, root or child_code_root(), placement, probe_s)


def _supervise(trial: TrialSpec, run: RunDir, run_id: str, cmd: list[str], caches: Path, result_path: Path,
               progress_path: Path, log_path: Path, on_progress: ProgressCallback | None,
               machine_gflops: float | None, root: Path, placement: Placement, probe_s: float | None) -> TrialRecord:
    """Start the child, wait for it within the time limit, and store its record (see `launch`)."""
    python = cmd[0]
    timed_out, interruption, last_state = False, None, {}
    started = time.monotonic()
    with open(log_path, "w") as log:
        try:
            env = cold_caches(child_env(trial.framework, trial.variant, trial.device, trial.threads, root,
                                        trial.numerics, trial.malloc), caches)
            env[LAUNCHED_AT_VAR] = repr(time.time())
            started = time.monotonic()
            proc = subprocess.Popen(cmd, cwd=root, stdout=log, stderr=subprocess.STDOUT, env=env,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        except OSError as exc:
            record = TrialRecord.not_run(trial, run_id, "error",
                                         f"cannot start the trial's interpreter {python}: {describe_os_error(exc)}")
            return _store(run, record.place(placement), machine_gflops, probe_s)
        oom_before = oom_kills(proc.pid)
        # A blocking waitpid on a helper thread: Popen.wait(timeout=...) would poll every few
        # milliseconds and preempt the child's compute threads on a 2-core machine.
        exited = threading.Event()
        threading.Thread(target=lambda: (proc.wait(), exited.set()), daemon=True).start()
        deadline = started + trial.timeout_s
        gpu_memory = ProcessGpuMemory(proc.pid) if trial.device != "cpu" else None
        try:
            if gpu_memory:
                gpu_memory.start()
            while not exited.wait(timeout=min(PROGRESS_S, max(0.0, deadline - time.monotonic()))):
                last_state = _read_progress(progress_path) or last_state
                if on_progress and last_state:
                    on_progress(last_state)
                if time.monotonic() >= deadline:
                    timed_out = True
                    _stop(proc)
                    break
        except BaseException as exc:  # Ctrl-C, a signal, a failure in the parent: never leave the child running
            interruption = exc
            _stop(proc)
        exited.wait()
        lifetime = time.monotonic() - started
        _end_group(proc)  # what the frameworks started and left behind (compile workers, helpers)
        if gpu_memory:
            gpu_memory.stop()
        oom_after = oom_kills()

    record = _result(trial, run_id, proc.returncode, result_path, log_path, timed_out)
    if record is not None and record.wall_seconds is not None and "start" in record.phases:
        record.phases["end"] = max(0.0, lifetime - record.phases["start"] - record.wall_seconds)
    if record is None:
        record = TrialRecord.not_run(trial, run_id, "error",
                                     _failure(proc.returncode, log_path, oom_before, oom_after, last_state))
    if interruption is not None and record.status != "ok":
        record.status = "interrupted"
        record.reason = (f"the run was interrupted ({_interruption(interruption)}) "
                         f"{time.monotonic() - started:.0f} s into this trial; what it measured until then is kept; "
                         f"`bench.py run --resume` measures it again")
    if gpu_memory:
        record.device_process_peak_bytes = gpu_memory.peak_bytes
    _store(run, record.place(placement), machine_gflops, probe_s)
    if interruption is not None:
        raise interruption
    return record


def _store(run: RunDir, record: TrialRecord, machine_gflops: float | None, probe_s: float | None = None) -> TrialRecord:
    record.machine_gflops = machine_gflops
    if probe_s is not None:
        record.phases = {"probe": probe_s, **record.phases}
    run.write_record(record)
    return record


def _result(trial: TrialSpec, run_id: str, returncode: int, result_path: Path, log_path: Path,
            timed_out: bool) -> TrialRecord | None:
    """The child's own record (marked `timeout` if it was stopped at the limit), or None."""
    record = None
    if result_path.exists():
        try:
            record = load_record(result_path)
        except BadFile as exc:
            return TrialRecord.not_run(trial, run_id, "error", f"the child wrote an unreadable record: {exc.problem}")
    if timed_out:
        reason = f"no result within the {trial.timeout_s:g} s time limit; the child was stopped"
        if record is None:
            return TrialRecord.not_run(trial, run_id, "timeout", reason)
        record.status, record.reason = "timeout", reason
    return record


def _failure(returncode: int, log_path: Path, oom_before: tuple[str, int] | None,
             oom_after: tuple[str, int] | None, last_state: dict) -> str:
    """Why a child ended without a record, as far as can be told, with its last output."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        how = f"child killed by {name} without a record"
        if name == "SIGKILL":
            how += ": " + _kill_cause(oom_before, oom_after, last_state)
        elif name in NATIVE_CRASHES:
            how += f" ({NATIVE_CRASHES[name]})"
    else:
        how = f"child exited with code {returncode} without a record"
    tail = _log_tail(log_path)
    return how + (f"; last output:\n{tail}" if tail else "; it printed nothing")


def _kill_cause(before: tuple[str, int] | None, after: tuple[str, int] | None, last_state: dict) -> str:
    rss = last_state.get("rss_bytes")
    memory = f"; {rss / 2**20:,.0f} MiB resident at its last progress report" if isinstance(rss, int) else ""
    if before and after and after[1] > before[1]:
        return f"the kernel's out-of-memory killer ended it ({after[0]}: oom_kill {before[1]} -> {after[1]}){memory}"
    if before and after:
        return (f"not by the harness, and no out-of-memory kill was counted ({after[0]}): something else sent "
                f"SIGKILL{memory}")
    return f"not by the harness; most likely the kernel's out-of-memory killer (no OOM counter is readable here){memory}"
