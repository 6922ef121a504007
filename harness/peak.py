"""The machine's float32 matrix-multiply rate, the yardstick for each trial's efficiency."""
from __future__ import annotations

import time

import numpy as np
from threadpoolctl import threadpool_limits

PEAK_SIZE = 2048
PEAK_REPEATS = 5
PEAK_MIN_SECONDS = 1.5  # keep multiplying this long: a neighbour that holds a core for a moment is outlasted
PROBE_SIZE = 512
PROBE_SECONDS = 0.3


def product_times(size: int, min_seconds: float, repeats: int = 1) -> np.ndarray:
    """Seconds of each float32 (size x size) @ (size x size) product with NumPy's BLAS, after one
    untimed warm-up (thread pool start, page faults): at least `repeats` of them, over at least
    `min_seconds`. A product counts 2 size^3 FLOPs."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    a @ b
    times, began = [], time.perf_counter()
    while len(times) < repeats or time.perf_counter() - began < min_seconds:
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return np.array(times)


def matmul_peak(threads: int, size: int = PEAK_SIZE, repeats: int = PEAK_REPEATS,
                min_seconds: float = PEAK_MIN_SECONDS) -> dict[str, object]:
    """Best of at least `repeats` products on `threads` BLAS threads (the trials' count: a 1-thread
    trial is measured against what one thread can do), over at least `min_seconds`, in GFLOP/s."""
    with threadpool_limits(limits=threads, user_api="blas"):
        times = product_times(size, min_seconds, repeats)
    blas = next((lib.get("internal_api") or lib.get("name") for lib in _blas_info()), "unknown")
    return {"gflops": 2 * size**3 / float(times.min()) / 1e9, "threads": threads,
            "method": f"NumPy {np.__version__} matmul ({blas}), float32, {size}x{size}, {threads} thread"
                      f"{'s' if threads > 1 else ''}, best of {times.size}"}


def _blas_info() -> list[dict]:
    try:
        config = np.show_config(mode="dicts")
        return [config["Build Dependencies"]["blas"]]
    except (TypeError, KeyError):  # NumPy < 1.25 has no mode="dicts"
        return []


def best_of(*measurements: dict) -> dict[str, object]:
    """The highest of several peak measurements (one at the start of a run, one at its end), with
    all of them kept: the lower one was disturbed by something else on the machine."""
    best = max(measurements, key=lambda m: m["gflops"])
    return {**best, "measurements_gflops": [round(m["gflops"], 1) for m in measurements]}


def machine_speed(threads: int, size: int = PROBE_SIZE, seconds: float = PROBE_SECONDS) -> float:
    """The machine's speed right now: median GFLOP/s of float32 (size x size) products over
    `seconds`, on `threads` BLAS threads. Taken before every trial, it shows how the shared
    machine's speed drifted during a run and between runs, which no trial's own spread can show.
    The median, not the best: it is the contention a trial would have met, not the capacity."""
    with threadpool_limits(limits=threads, user_api="blas"):
        times = product_times(size, seconds)
    return 2 * size**3 / float(np.median(times)) / 1e9
