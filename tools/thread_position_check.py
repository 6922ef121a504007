#!/usr/bin/env python3
"""Does the thread a Keras training loop runs on change its speed? An A/A check for the overhead tool.

`tools/overhead_check.py` runs Keras's `fit` on a worker thread (so that it can pause it between
blocks) and the harness on the main thread. This script, in one process, interleaves blocks of
three loops on the same model and data: the harness's step path (`adapters.keras.FitSteps`) on the
main thread, the same path on a worker thread, and `fit` on a worker thread (the overhead tool's
`FitLoop`). If the first two differ, the overhead tool's Keras ratio measures thread position, not
the harness. Run it under different glibc allocator settings to see why, e.g.

    .venv/bin/python tools/thread_position_check.py --backend torch
    MALLOC_ARENA_MAX=1 .venv/bin/python tools/thread_position_check.py --backend torch
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("torch", "tensorflow", "jax"), default="torch")
    parser.add_argument("--blocks", type=int, default=45)
    parser.add_argument("--steps", type=int, default=2, help="steps per block (CNN, batch 128)")
    args = parser.parse_args()
    os.environ["KERAS_BACKEND"] = args.backend
    import keras
    import numpy as np

    from adapters.keras import FitSteps
    from tools.overhead_check import BATCH, FitLoop, fit_barrier

    if args.backend == "torch":
        import torch
        torch.set_num_threads(2)

    def model() -> keras.Model:
        m = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(32, 3, activation="relu"),
                              keras.layers.Conv2D(64, 3, activation="relu"), keras.layers.MaxPooling2D(2),
                              keras.layers.Flatten(), keras.layers.Dense(128, activation="relu"), keras.layers.Dense(10)])
        m.compile(optimizer=keras.optimizers.Adam(1e-3, epsilon=1e-7),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return m

    rng = np.random.default_rng(0)
    n = BATCH * 60
    x, y = rng.random((n, 28, 28, 1), dtype=np.float32), rng.integers(0, 10, n).astype(np.int32)
    batches = [(keras.ops.convert_to_tensor(x[i:i + BATCH]), keras.ops.convert_to_tensor(y[i:i + BATCH]))
               for i in range(0, n, BATCH)]

    class Steps:
        def __init__(self) -> None:
            self.fit, self.k, self.last = FitSteps(model()), 0, None

        def run(self, steps: int) -> float:
            start = time.perf_counter()
            for _ in range(steps):
                self.last = self.fit.step(batches[self.k % len(batches)])
                self.k += 1
            self.fit.barrier(self.last)
            return time.perf_counter() - start

    main_side, worker_side, pool = Steps(), Steps(), ThreadPoolExecutor(1)
    fit_model = model()
    fit = FitLoop(fit_model, x, y, lambda: fit_barrier(fit_model))
    main_side.run(1), pool.submit(worker_side.run, 1).result(), fit.run(1)  # compile, untimed
    times: dict[str, list[float]] = {"harness steps, main thread": [], "harness steps, worker thread": [],
                                     "fit, worker thread": []}
    for _ in range(args.blocks):
        times["harness steps, main thread"].append(main_side.run(args.steps))
        times["harness steps, worker thread"].append(pool.submit(worker_side.run, args.steps).result())
        fit.run(args.steps)
        times["fit, worker thread"].append(fit.blocks[-1][1])
    fit.close()
    base = statistics.median(times["harness steps, main thread"])
    settings = {k: v for k, v in os.environ.items() if k.startswith("MALLOC_")} or "glibc defaults"
    print(f"Keras on {args.backend}, CNN, {args.blocks} interleaved blocks of {args.steps} steps; malloc: {settings}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:<30} {args.steps * BATCH / median:8,.0f} samples/s   speed / main-thread harness {base / median:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
