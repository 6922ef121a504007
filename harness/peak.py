"""The machine's float32 matrix-multiply rate, the yardstick for each trial's efficiency."""
from __future__ import annotations

import time

import numpy as np

PEAK_SIZE = 2048
PEAK_REPEATS = 5


def matmul_peak(size: int = PEAK_SIZE, repeats: int = PEAK_REPEATS) -> dict[str, object]:
    """Best of `repeats` float32 (size x size) @ (size x size) products with NumPy's BLAS, all
    threads: GFLOP/s counted as 2 size^3 per product."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    a @ b  # warm-up: thread pool start, page faults
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    blas = next((lib.get("internal_api") or lib.get("name") for lib in _blas_info()), "unknown")
    return {"gflops": 2 * size**3 / best / 1e9, "method": f"NumPy {np.__version__} matmul ({blas}), float32, "
            f"{size}x{size}, best of {repeats}"}


def _blas_info() -> list[dict]:
    try:
        config = np.show_config(mode="dicts")
        return [config["Build Dependencies"]["blas"]]
    except (TypeError, KeyError):  # NumPy < 1.25 has no mode="dicts"
        return []
