"""The C allocator's policy, one for every trial of a run (`--malloc`).

`default` leaves glibc as users' scripts get it (a user's own MALLOC_* variables reach every trial
alike). `steady` keeps freed memory in the process: one malloc arena, never trimmed, grown 1 GiB at
a time. With glibc's defaults, runtimes that free large temporaries after every step hand them back
to the kernel and fault them in again: measured here (2 cores), JAX's CNN step faulted 337 MiB a
step (86k minor faults, 193 of its 308 ms in the kernel) and ran about twice as fast under
`steady`; TensorFlow's did not change (the README has every framework). glibc reads these
variables once, at process start, so they are set in each trial's environment
(harness.launch.child_env)."""
from __future__ import annotations

import os

MALLOC_DESCRIPTIONS = {"default": "glibc as users get it (no MALLOC_ variables of the harness's)",
                       "steady": "glibc keeping freed memory (one arena, never trimmed, grown 1 GiB at a time)"}
MALLOC_POLICIES = tuple(MALLOC_DESCRIPTIONS)
STEADY = {"MALLOC_ARENA_MAX": "1", "MALLOC_TRIM_THRESHOLD_": str(16 << 30), "MALLOC_TOP_PAD_": str(1 << 30)}


def malloc_environment(policy: str) -> dict[str, str]:
    """The variables a trial's environment gets for `policy` (none for `default`)."""
    if policy not in MALLOC_POLICIES:
        raise ValueError(f"malloc policy {policy!r} is not one of {', '.join(MALLOC_POLICIES)}")
    return dict(STEADY) if policy == "steady" else {}


def malloc_in_effect() -> dict[str, str] | str:
    """glibc's tunables as this process was started with them, for its record."""
    found = {k: v for k, v in sorted(os.environ.items()) if k.startswith("MALLOC_") or k == "GLIBC_TUNABLES"}
    return found or "glibc defaults"
