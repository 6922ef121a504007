"""The same thread settings for every framework, set in the child's environment before import."""
from __future__ import annotations

import os


def usable_cores() -> list[int]:
    """The cores this process may run on (its affinity mask; every core where there is none)."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return list(range(os.cpu_count() or 1))


def default_threads() -> int:
    return len(usable_cores())


def thread_env(threads: int) -> dict[str, str]:
    """Variables read by OpenMP, MKL, OpenBLAS, TensorFlow and XLA at import. Each adapter also
    applies `threads` through its framework's own API; inter-op parallelism is 1 everywhere."""
    n = str(threads)
    return {
        "OMP_NUM_THREADS": n,
        "MKL_NUM_THREADS": n,
        "OPENBLAS_NUM_THREADS": n,
        "TF_NUM_INTRAOP_THREADS": n,
        "TF_NUM_INTEROP_THREADS": "1",
        # XLA has no thread-count flag: `intra_op_parallelism_threads=N` (a TensorFlow option, seen
        # in many XLA_FLAGS) is ignored without its dashes and fatal with them ("Unknown flag in
        # XLA_FLAGS"). Eigen's threading is switched here; the CPU affinity bounds the rest.
        "XLA_FLAGS": f"--xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'}",
    }


def openmp_wait_policy() -> str:
    """The OpenMP wait policy every trial runs with. The harness sets none: each OpenMP runtime's
    default (spin a little, then sleep) is what users of PyTorch, MXNet and Theano get, and measured
    here it is the faster setting for all of them once Theano shares one thread pool with its BLAS
    (PASSIVE cost PyTorch 16-19% and MXNet 15% at 2 threads; see the README). A user's
    OMP_WAIT_POLICY reaches every framework alike."""
    return os.environ.get("OMP_WAIT_POLICY") or "runtime default (unset)"


def pin_to_cores(threads: int) -> list[int] | None:
    """Restrict this process to `threads` cores when fewer than all were asked for.

    Thread-count variables are advice some runtimes ignore (XLA's CPU client in JAX starts a
    thread per core whatever XLA_FLAGS says); an affinity mask binds every framework alike.
    Returns the cores in use, or None where the platform cannot pin."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    cores = usable_cores()
    if threads < len(cores):
        cores = cores[:threads]
        os.sched_setaffinity(0, cores)
    return cores
