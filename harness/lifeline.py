"""Children that end with their parent.

A trial's child runs in its own session (so a terminal's Ctrl-C reaches the parent alone, which
stops the child itself and records what it measured). The cost: when the parent dies without
cleaning up (SIGKILL, an out-of-memory kill, a CI runner reaping it), nothing would stop the
child, and it would go on eating the CPU of the next run and writing into the run directory.

So every child the harness starts is tied to it: on Linux the kernel sends the child SIGKILL the
moment its parent dies (prctl PR_SET_PDEATHSIG, which survives exec), and the child checks that
its parent is still the one that started it (it may have died before the tie was made). Where
prctl does not exist, a daemon thread polls the parent's pid once a second.

`tie_to_parent()` is called first thing by Python children of the harness; `command(cmd)` wraps
any other program (pip, venv) so that it is tied before it execs.
Standard library only: this runs in every child environment.
"""
from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading
import time
from typing import NoReturn

PARENT_PID_VAR = "BENCH_PARENT_PID"  # set by the parent in a child's environment
PR_SET_PDEATHSIG = 1
POLL_S = 1.0

# `python -c` program that ties itself to its parent, then becomes the command (argv[2:]).
_EXEC_TIED = ("import ctypes, os, signal, sys\n"
              "try:\n"
              "    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)\n"
              "except (OSError, AttributeError):\n"
              "    pass\n"
              "if os.getppid() != int(sys.argv[1]):\n"
              "    sys.exit(137)\n"
              "os.execvp(sys.argv[2], sys.argv[2:])\n")


def _kill_self_on_parent_death() -> bool:
    """Ask the kernel for SIGKILL when the parent dies (Linux); False where that is not possible."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(POLL_S)
    os.killpg(os.getpgrp(), signal.SIGKILL) if os.getpgrp() == os.getpid() else os._exit(137)


def tie_to_parent() -> None:
    """End this process when the harness process that started it ends (see the module's docstring).
    Does nothing when not started by the harness ($BENCH_PARENT_PID unset)."""
    expected = os.environ.get(PARENT_PID_VAR)
    if not expected:
        return
    parent = int(expected)
    if not _kill_self_on_parent_death():
        threading.Thread(target=_watch, args=(parent,), daemon=True, name="lifeline").start()
    if os.getppid() != parent:  # the parent died before the tie was made
        os._exit(137)


def child_environment(env: dict[str, str]) -> dict[str, str]:
    """`env` with this process named as the parent a child must not outlive."""
    return {**env, PARENT_PID_VAR: str(os.getpid())}


def command(cmd: list[str]) -> list[str]:
    """`cmd` run so that it dies with this process (Linux; elsewhere `cmd` unchanged)."""
    if not sys.platform.startswith("linux"):
        return cmd
    return [sys.executable, "-c", _EXEC_TIED, str(os.getpid()), *cmd]


def leave(code: int) -> NoReturn:
    """End a child once its results are on disk, without the interpreter's teardown: the
    frameworks' exit handlers and finalizers took 1.1 s after TensorFlow's import here (0.4 s after
    PyTorch's) between every two trials, and nothing a child leaves needs them (a trial's caches are
    its own scratch folder; the parent ends whatever processes the frameworks started in the
    trial's session, `harness.launch`)."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
