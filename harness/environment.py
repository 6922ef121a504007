"""The environment a run measured on, for its manifest. Reads versions without importing frameworks."""
from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys

from adapters import FRAMEWORKS, installed_version
from adapters.base import cpuinfo_field
from harness.paths import PROJECT_ROOT
from harness.rundir import GitState, RunEnvironment
from harness.threads import openmp_wait_policy, thread_env


def cpu_model() -> str:
    return cpuinfo_field("model name") or platform.processor() or platform.machine()


def memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _run(cmd: list[str]) -> str | None:
    if shutil.which(cmd[0]) is None:
        return None
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10, cwd=PROJECT_ROOT)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def gpus() -> list[str]:
    listing = _run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"])
    return [line.strip() for line in listing.splitlines()] if listing else []


def git_commit() -> GitState:
    commit = _run(["git", "rev-parse", "HEAD"])
    status = _run(["git", "status", "--porcelain", "--untracked-files=no"])
    return GitState(commit=commit, dirty=bool(status) if status is not None else None)


def describe(threads: int) -> RunEnvironment:
    """This machine and the main environment (the run adds its peak and isolated environments)."""
    import numpy

    return RunEnvironment(
        python=platform.python_version(),
        python_executable=sys.executable,
        os=platform.platform(),
        cpu_model=cpu_model(),
        cpu_cores=os.cpu_count(),
        memory_bytes=memory_bytes(),
        gpus=gpus(),
        numpy=numpy.__version__,
        frameworks={name: installed_version(name) for name, info in FRAMEWORKS.items() if not info.environment},
        git=git_commit(),
        threads=threads,
        thread_env={**thread_env(threads), "OMP_WAIT_POLICY": openmp_wait_policy()},
    )
