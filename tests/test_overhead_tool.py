"""The overhead check's hand loop must train what the harness trains: every batch of every epoch
once, in order, the very first step alone and untimed, each block between two barriers."""
import os

import pytest

from tools import overhead_check


def test_hand_loop_trains_each_batch_once_per_epoch(data_dir, monkeypatch):
    monkeypatch.setenv("BENCH_DATA_DIR", str(data_dir))
    seen, barriers = [], []

    def fingerprint(x, y):
        return int(y[0]) * 10**6 + int(x[0].sum())

    loop = overhead_check.HandLoop(lambda x, y: (x, y), lambda x, y: seen.append(fingerprint(x, y)),
                                   lambda: barriers.append(len(seen)))
    epochs = list(overhead_check._epochs())
    total = sum(len(batches) for batches in epochs)
    sizes = [1, 5, 40, 37]  # block sizes as the harness's trial might ask for them
    while len(seen) < total:
        loop.run(sizes[min(len(barriers) // 2, len(sizes) - 1)])
    assert seen == [fingerprint(x, y) for batches in epochs for x, y in batches]
    assert barriers[:2] == [0, 1] and loop.first_seconds is not None  # the first step, on its own
    assert sum(steps for steps, _ in loop.blocks) == total - 1
    assert all(seconds >= 0 for _, seconds in loop.blocks)
    per_epoch = len(epochs[0])
    done = 1
    for steps, _ in loop.blocks:  # no block spans two epochs (each epoch is converted untimed first)
        assert done // per_epoch == (done + steps - 1) // per_epoch
        done += steps


def test_block_check_compares_blocks_after_an_evaluation_with_the_rest():
    from harness.record import SCHEMA_VERSION, Block, Evaluation, TrialRecord
    from tools.block_check import after_evaluation_ratio

    blocks = [Block(0, 1, 10, 0.1), Block(0, 11, 10, 0.1), Block(0, 21, 10, 0.2), Block(0, 31, 10, 0.1)]
    record = TrialRecord(schema_version=SCHEMA_VERSION, trial_id="t", run_id="r", framework="f", variant="default",
                         label="f", workload="w", dataset="d", profile="quick", device="cpu", threads=1, seed=0,
                         repeat=0, status="ok", blocks=blocks, evaluations=[Evaluation(21, 0.5, 1.0, 0.9)])
    assert after_evaluation_ratio(record) == (0.5, 1, 3)  # the block at step 21 ran at half the others' rate
    record.evaluations = []
    assert after_evaluation_ratio(record) is None


FIT_LOOP_SCRIPT = """
import time, numpy as np, keras
from tools.overhead_check import FitLoop, BATCH, fit_barrier
model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4)])
model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
rng = np.random.default_rng(0)
x, y = rng.random((BATCH * 5, 8), dtype=np.float32), rng.integers(0, 4, BATCH * 5)
import jax
ready = []
def barrier():
    fit_barrier(model)
    ready.append(all(a.is_ready() for arrays in model._jax_state.values() for a in arrays))
loop = FitLoop(model, x, y, barrier)
def done():  # steps fit has run, read while it is paused (the state lives outside the model during fit)
    state = getattr(model, "_jax_state", None)
    return int(state["optimizer_variables"][0]) if state else 0
sizes, paused = [1, 3, 1, 7, 2, 9], []
for n in sizes:
    loop.run(n)
    before = done(); time.sleep(0.05); paused.append(done() == before)
    print("after", n, before)
loop.close()
print(loop.first_seconds is not None, [s for s, _ in loop.blocks], all(paused), loop._thread.is_alive(), all(ready))
"""


def test_fit_loop_runs_fit_in_blocks_of_the_asked_steps_and_pauses_between(tmp_path):
    """Keras's side of the check: one `fit` call, paused between blocks (no step runs while the
    other side is timed), each block the asked number of steps, across epoch ends, its barrier waits
    for every queued step (JAX); close() ends it."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    out = subprocess.run([sys.executable, "-c", FIT_LOOP_SCRIPT], cwd=ROOT, capture_output=True, text=True,
                         env={**__import__("os").environ, "KERAS_BACKEND": "jax"}, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.strip().splitlines()
    counts = [int(line.split()[2]) for line in lines if line.startswith("after")]
    assert counts == [1, 4, 5, 12, 14, 23]  # steps done when each block returned: 1, then 3, 1, 7, 2, 9 more
    assert lines[-1] == "True [3, 1, 7, 2, 9] True False True"  # ... and each barrier left no step queued


ARENA_SCRIPT = """
import ctypes, threading
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype, libc.malloc.argtypes, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_size_t], [ctypes.c_void_p]
def allocate():
    libc.free(libc.malloc(1 << 16))
t = threading.Thread(target=allocate); t.start(); t.join()
libc.malloc_stats()  # one "Arena N:" section per malloc arena, on stderr
"""


def test_rounds_allocate_from_one_malloc_arena_whichever_thread_a_side_runs_on():
    """`fit` runs on a thread of its own in the check; with glibc's default arena per thread, the
    same Keras train function ran 9-20% faster there than on the main thread, where the harness
    trains: a gap of position, not of code. Every round's environment keeps the process to one arena."""
    import subprocess
    import sys

    from tools.overhead_check import round_env

    def arenas(env: dict[str, str]) -> int:
        out = subprocess.run([sys.executable, "-c", ARENA_SCRIPT], env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return out.stderr.count("Arena ")

    assert arenas(round_env("keras", "torch", 2)) == 1
    assert arenas(round_env("pytorch", "default", 2)) == 1
    assert arenas(dict(os.environ)) == 2  # what glibc does by default: the thread's own arena


@pytest.mark.parametrize("framework", ["pytorch", "mxnet"])
def test_a_paired_round_runs_with_the_steady_allocator(data_dir, framework):
    """The arena count above is only half of it: each round's child must be started with that
    environment. (It was not: the tool started rounds with the trial's environment, so `fit` on its
    worker thread got an arena of its own and keras:torch's CNN read 0.92 of `fit`, 1.01 with it.)
    MXNet's round runs in its isolated environment, which has none of the parent's extras."""
    from tests.conftest import interpreter_or_skip
    from harness.allocator import STEADY
    from tools.overhead_check import run_round

    interpreter_or_skip(framework, "default")
    result = run_round(framework, "mnist_mlp", 1, str(data_dir), 0, max_blocks=2)
    assert result["malloc"] == STEADY
    assert len(result["harness"]) == len(result["hand"]) == 2
