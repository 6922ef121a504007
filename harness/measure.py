"""Process memory figures (standard library only: runs in the child)."""
from __future__ import annotations

import resource
import sys


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def current_rss_bytes() -> int | None:
    kib = _status_kib("VmRSS")
    return kib * 1024 if kib is not None else None


def peak_rss_bytes() -> int:
    """High-water mark of this process's resident set."""
    kib = _status_kib("VmHWM")
    if kib is not None:
        return kib * 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def oom_kills(pid: int | str = "self") -> tuple[str, int] | None:
    """How many processes the kernel's out-of-memory killer has ended in `pid`'s memory cgroup,
    and the file that says so (cgroup v2 memory.events, v1 memory.oom_control); None where no
    such counter can be read. Compared before and after a trial, it tells an OOM kill from a
    plain SIGKILL."""
    try:
        with open(f"/proc/{pid}/cgroup") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    candidates = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":
            candidates += [f"/sys/fs/cgroup{path.rstrip('/')}/memory.events", "/sys/fs/cgroup/memory.events"]
        elif "memory" in controllers.split(","):
            candidates += [f"/sys/fs/cgroup/memory{path.rstrip('/')}/memory.oom_control",
                           "/sys/fs/cgroup/memory/memory.oom_control"]
    for candidate in candidates:
        try:
            with open(candidate) as fh:
                for line in fh:
                    name, _, value = line.partition(" ")
                    if name == "oom_kill":
                        return candidate, int(value)
        except (OSError, ValueError):
            continue
    return None
