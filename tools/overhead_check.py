#!/usr/bin/env python3
"""Does the harness cost anything? Compare its throughput with hand-written training loops.

For each default framework variant and workload (mnist_mlp, mnist_cnn), a child process (the
trial's environment, threads and core affinity) runs the harness's trial body
(`harness.trial.run`, with its staging, block timing and untimed evaluations) and, after each of
the harness's timed blocks, a block of the same number of steps of a training loop written the way
that framework's documentation trains (not through the adapter: its own model code, its own
optimizer; Keras through `Model.fit` on NumPy arrays, on a thread of its own paused between
blocks). Interleaving in 0.2 s blocks matters on a shared machine: its speed drifts by 5-15% over
tens of seconds, within a process and between processes, so loops timed one after the other
(even alternating whole processes) differ by more than the 3% this check must resolve, while
neighbouring blocks see the same machine. Both sides allocate from one untrimmed glibc arena
(`round_env`): `fit` runs on a thread of its own, and with glibc's default arena per thread the
same code ran up to 20% faster there than on the main thread.

Both sides leave out their very first step (compilation); the plain loops other than Keras's
convert each epoch's batches before timing it (as the harness stages them), Keras's `fit` makes
its batches inside its steps, as its users' do. Per framework, pooled over `--rounds` processes,
it prints harness / hand for the mean rate (all samples over all timed seconds, what a user's own
loop prints) and for the median block rate (the harness's reported figure), and the median of the
per-pair ratios with its bootstrap CI. It exits 1 when the harness is more than 3% slower.

    .venv/bin/python tools/overhead_check.py [-f pytorch ...] [-w mnist_mlp -w mnist_cnn] [--rounds 2]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adapters import FRAMEWORKS, label  # noqa: E402
from harness import envs  # noqa: E402
from harness.allocator import malloc_in_effect  # noqa: E402
from harness.record import TrialRecord, TrialSpec  # noqa: E402
from harness.threads import pin_to_cores  # noqa: E402
from harness.trial import run as run_trial  # noqa: E402

BATCH = 128
LIMIT = 0.03
CHOICES = ("pytorch", "tensorflow", "keras:tensorflow", "keras:torch", "keras:jax", "jax", "mxnet", "theano")
WORKLOADS = ("mnist_mlp", "mnist_cnn")


def _data(workload: str):
    from workloads import get_workload, training_data

    spec = get_workload(workload)
    return spec, training_data(spec, "mnist", "quick")


def _epochs(workload: str = "mnist_mlp"):
    """The quick profile's epochs of `workload` in the harness's batch order, as NumPy batches."""
    from workloads.spec import batch_order

    spec, data = _data(workload)
    n = len(data.x_train) // BATCH
    for epoch in range(spec.epochs["quick"]):
        x, y = data.epoch(batch_order(0, epoch, len(data.x_train)))
        yield [(x[i * BATCH:(i + 1) * BATCH], y[i * BATCH:(i + 1) * BATCH]) for i in range(n)]


class HandLoop:
    """A plain training loop over the quick profile's epochs, advanced one timed block at a time.

    `convert` turns a NumPy batch into the framework's tensors (each epoch's, before its steps are
    timed), `step` trains on one, `finish` waits for queued work (the block's barrier)."""

    def __init__(self, convert: Callable, step: Callable, finish: Callable, workload: str = "mnist_mlp") -> None:
        self.convert, self.step, self.finish = convert, step, finish
        self.epochs = _epochs(workload)
        self.batches: list = []
        self.next = 0
        self.first_seconds: float | None = None  # the very first step, left out as the harness does
        self.blocks: list[tuple[int, float]] = []  # (steps, seconds)

    def run(self, steps: int) -> None:
        """Time up to `steps` steps (fewer at an epoch's end) between two barriers."""
        if self.next == len(self.batches):
            self.batches, self.next = [self.convert(x, y) for x, y in next(self.epochs)], 0
        chunk = self.batches[self.next:self.next + (1 if self.first_seconds is None else steps)]
        self.next += len(chunk)
        self.finish()
        start = time.perf_counter()
        for x, y in chunk:
            self.step(x, y)
        self.finish()
        took = time.perf_counter() - start
        if self.first_seconds is None:
            self.first_seconds = took
        else:
            self.blocks.append((len(chunk), took))

    def close(self) -> None:
        pass


class FitLoop:
    """Keras as Keras users train: one `Model.fit` call over the NumPy training set (shuffled by
    Keras, batches made by its own data pipeline), on a thread of its own that pauses between
    blocks. A callback before each step hands over to the other side once the block has its steps;
    Keras runs `on_train_batch_begin` without reading the step's logs, so the callback adds no
    per-step sync, and `fit` keeps dispatching asynchronously. A block that crosses an epoch's end
    includes what `fit` does there (syncing the state back, the next epoch's shuffle), as a user's
    epoch does. `barrier` waits for the queued steps (JAX's asynchronous dispatch)."""

    def __init__(self, model: Any, x: np.ndarray, y: np.ndarray, barrier: Callable[[], None]) -> None:
        import keras

        self.model, self.barrier = model, barrier
        self.first_seconds: float | None = None
        self.blocks: list[tuple[int, float]] = []
        self._go, self._back = threading.Semaphore(0), threading.Semaphore(0)
        self._steps = self._count = 0
        self._start: float | None = None
        self._stop, self._ended, self._error = False, False, None
        loop = self

        class Handover(keras.callbacks.Callback):
            def on_train_batch_begin(self, batch, logs=None):
                loop._before_step()

        def fit() -> None:
            try:
                model.fit(x, y, batch_size=BATCH, epochs=10_000, shuffle=True, verbose=0, callbacks=[Handover()])
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                self._error = exc
            finally:
                self._ended = True
                self._back.release()

        self._thread = threading.Thread(target=fit, daemon=True)

    def _before_step(self) -> None:
        if self._stop:
            return
        if self._start is None or self._count == self._steps:  # no block yet, or the block has its steps
            if self._start is not None:
                self.barrier()
                took = time.perf_counter() - self._start
                if self.first_seconds is None:
                    self.first_seconds = took
                else:
                    self.blocks.append((self._steps, took))
                self._back.release()
            self._go.acquire()
            if self._stop:
                self.model.stop_training = True
                return
            self._count, self._start = 0, time.perf_counter()
        self._count += 1

    def run(self, steps: int) -> None:
        """Let `fit` run one block of `steps` steps (the very first step alone) and wait for it."""
        if not self._thread.is_alive() and not self._ended:
            self._thread.start()
        self._steps = 1 if self.first_seconds is None else steps
        self._go.release()
        self._back.acquire()
        if self._ended:
            raise RuntimeError(f"model.fit ended early: {self._error!r}")

    def close(self) -> None:
        self._stop = True
        self._go.release()
        self._thread.join()


def _initial_weights(workload: str, oihw: bool = False) -> list[np.ndarray]:
    """The hand-written models' Glorot-uniform kernels and zero biases, in order: dense kernels
    (in, out), conv kernels (kh, kw, in, out), or (out, in, kh, kw) with `oihw` (Theano)."""
    if workload == "mnist_cnn":
        shapes = [(3, 3, 1, 32), (32,), (3, 3, 32, 64), (64,), (9216, 128), (128,), (128, 10), (10,)]
    else:
        shapes = [(784, 512), (512,), (512, 512), (512,), (512, 10), (10,)]
    rng, out = np.random.default_rng(0), []
    for shape in shapes:
        if len(shape) == 1:
            out.append(np.zeros(shape, np.float32))
            continue
        limit = np.sqrt(6 / (int(np.prod(shape[:-1])) + shape[-1]))
        w = rng.uniform(-limit, limit, shape).astype(np.float32)
        out.append(np.ascontiguousarray(w.transpose(3, 2, 0, 1)) if oihw and w.ndim == 4 else w)
    return out


def hand_pytorch(workload: str, threads: int) -> HandLoop:
    """PyTorch's documented loop (the MNIST example's model, NCHW), eager."""
    import torch
    from torch import nn

    torch.set_num_threads(threads)
    if workload == "mnist_cnn":
        model = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Flatten(), nn.Linear(9216, 128), nn.ReLU(), nn.Linear(128, 10))

        def convert(x, y):
            return torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(y)
    else:
        model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))

        def convert(x, y):
            return torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)

    def step(x, y):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    return HandLoop(convert, step, lambda: None, workload)


def hand_tensorflow(workload: str, threads: int) -> HandLoop:
    """TensorFlow's custom-training guide: tf.Variables, a GradientTape in a tf.function, and a
    Keras optimizer's apply_gradients."""
    import keras
    import tensorflow as tf

    if tf.config.threading.get_intra_op_parallelism_threads() != threads:  # the adapter may have set it
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    params = [tf.Variable(w) for w in _initial_weights(workload)]
    opt = keras.optimizers.Adam(1e-3, epsilon=1e-7)

    def forward(x):
        if workload == "mnist_cnn":
            h = tf.nn.relu(tf.nn.conv2d(x, params[0], 1, "VALID") + params[1])
            h = tf.nn.relu(tf.nn.conv2d(h, params[2], 1, "VALID") + params[3])
            h = tf.reshape(tf.nn.max_pool2d(h, 2, 2, "VALID"), (-1, 9216))
            h = tf.nn.relu(tf.matmul(h, params[4]) + params[5])
            return tf.matmul(h, params[6]) + params[7]
        h = tf.nn.relu(tf.matmul(x, params[0]) + params[1])
        h = tf.nn.relu(tf.matmul(h, params[2]) + params[3])
        return tf.matmul(h, params[4]) + params[5]

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=forward(x)))
        opt.apply_gradients(zip(tape.gradient(loss, params), params))
        return loss

    last = []
    return HandLoop(lambda x, y: (tf.constant(x), tf.constant(y)), lambda x, y: last.append(step(x, y)),
                    lambda: last[-1].numpy() if last else None, workload)


def hand_keras(workload: str, threads: int) -> FitLoop:
    """Keras's guide: a Sequential model, compile with its defaults, fit on NumPy arrays."""
    import keras

    from workloads.spec import batch_order

    if workload == "mnist_cnn":
        layers = [keras.Input((28, 28, 1)), keras.layers.Conv2D(32, 3, activation="relu"),
                  keras.layers.Conv2D(64, 3, activation="relu"), keras.layers.MaxPooling2D(2), keras.layers.Flatten(),
                  keras.layers.Dense(128, activation="relu"), keras.layers.Dense(10)]
    else:
        layers = [keras.Input((784,)), keras.layers.Dense(512, activation="relu"),
                  keras.layers.Dense(512, activation="relu"), keras.layers.Dense(10)]
    model = keras.Sequential(layers)
    model.compile(optimizer=keras.optimizers.Adam(1e-3, epsilon=1e-7),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    _, data = _data(workload)
    x, y = data.epoch(batch_order(0, 0, len(data.x_train)))
    return FitLoop(model, x, y, lambda: fit_barrier(model))


def fit_barrier(model: Any) -> None:
    """Wait for the steps `fit` has queued. TensorFlow and torch run each step before returning;
    on JAX, `fit` keeps the latest state in `model._jax_state` (a dict Keras wraps in its own
    tracking type, which JAX does not see as a tree: its arrays are waited for one list at a time)."""
    import keras

    state = getattr(model, "_jax_state", None)
    if keras.backend.backend() == "jax" and state:
        import jax

        jax.block_until_ready([list(arrays) for arrays in state.values()])


def hand_jax(workload: str, threads: int) -> HandLoop:
    """JAX's documented way: a pure loss function, jax.jit of value_and_grad and an optax update."""
    import jax
    import jax.numpy as jnp
    import optax

    params = [jnp.asarray(w) for w in _initial_weights(workload)]
    opt = optax.adam(1e-3, eps=1e-7)
    state = [params, opt.init(params)]

    def conv(x, w, b):
        return jax.lax.conv_general_dilated(x, w, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")) + b

    def logits(p, x):
        if workload == "mnist_cnn":
            h = jax.nn.relu(conv(x, p[0], p[1]))
            h = jax.nn.relu(conv(h, p[2], p[3]))
            h = jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
            h = jax.nn.relu(h.reshape(len(h), -1) @ p[4] + p[5])
            return h @ p[6] + p[7]
        h = jax.nn.relu(x @ p[0] + p[1])
        h = jax.nn.relu(h @ p[2] + p[3])
        return h @ p[4] + p[5]

    def loss_fn(p, x, y):
        return optax.softmax_cross_entropy_with_integer_labels(logits(p, x), y).mean()

    @jax.jit
    def update(p, s, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(p, x, y)
        updates, s = opt.update(grads, s, p)
        return optax.apply_updates(p, updates), s, loss

    def step(x, y):
        state[0], state[1], _ = update(state[0], state[1], x, y)

    # device_put is asynchronous: wait for each copy, so that none is paid inside a timed block.
    return HandLoop(lambda x, y: jax.block_until_ready((jax.device_put(x), jax.device_put(y))), step,
                    lambda: jax.block_until_ready(state[0]), workload)


def hand_mxnet(workload: str, threads: int) -> HandLoop:
    """Gluon's documented loop (imperative, as the default variant): autograd.record, backward,
    Trainer.step, no host read of the loss per step."""
    import mxnet as mx
    from mxnet import autograd, gluon

    net = gluon.nn.HybridSequential()
    if workload == "mnist_cnn":
        net.add(gluon.nn.Conv2D(32, 3, activation="relu"), gluon.nn.Conv2D(64, 3, activation="relu"),
                gluon.nn.MaxPool2D(2), gluon.nn.Flatten(), gluon.nn.Dense(128, activation="relu"), gluon.nn.Dense(10))

        def convert(x, y):
            return mx.nd.array(x.transpose(0, 3, 1, 2)), mx.nd.array(y)
    else:
        net.add(gluon.nn.Dense(512, activation="relu"), gluon.nn.Dense(512, activation="relu"), gluon.nn.Dense(10))

        def convert(x, y):
            return mx.nd.array(x), mx.nd.array(y)
    net.initialize(mx.init.Xavier())
    trainer = gluon.Trainer(net.collect_params(), "adam", {"learning_rate": 1e-3, "epsilon": 1e-7})
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()

    def step(x, y):
        with autograd.record():
            loss = loss_fn(net(x), y)
        loss.backward()
        trainer.step(BATCH)

    return HandLoop(convert, step, mx.nd.waitall, workload)


def hand_theano(workload: str, threads: int) -> HandLoop:
    """Theano's tutorial way: symbolic graph, T.grad, one compiled function with the Adam updates."""
    import adapters.theano  # noqa: F401 - the same THEANO_FLAGS (BLAS, OpenMP) as the adapter's
    import theano
    import theano.tensor as T
    from theano.tensor.signal.pool import pool_2d

    params = [theano.shared(w) for w in _initial_weights(workload, oihw=True)]
    y = T.ivector()
    if workload == "mnist_cnn":
        x = T.tensor4()
        h = T.nnet.relu(T.nnet.conv2d(x, params[0]) + params[1].dimshuffle("x", 0, "x", "x"))
        h = T.nnet.relu(T.nnet.conv2d(h, params[2]) + params[3].dimshuffle("x", 0, "x", "x"))
        h = pool_2d(h, ws=(2, 2), ignore_border=True).flatten(2)
        h = T.nnet.relu(T.dot(h, params[4]) + params[5])
        out = T.dot(h, params[6]) + params[7]

        def convert(xb, yb):
            return np.ascontiguousarray(xb.transpose(0, 3, 1, 2)), yb.astype(np.int32)
    else:
        x = T.fmatrix()
        h = T.nnet.relu(T.dot(x, params[0]) + params[1])
        h = T.nnet.relu(T.dot(h, params[2]) + params[3])
        out = T.dot(h, params[4]) + params[5]

        def convert(xb, yb):
            return xb, yb.astype(np.int32)
    loss = T.nnet.categorical_crossentropy(T.nnet.softmax(out), y).mean()
    t = theano.shared(np.float32(0))
    t1 = t + 1
    lr = T.constant(1e-3, dtype="float32") * T.sqrt(1 - T.constant(0.999, dtype="float32") ** t1) \
        / (1 - T.constant(0.9, dtype="float32") ** t1)
    updates = [(t, t1)]
    for p, g in zip(params, T.grad(loss, params)):
        m = theano.shared(np.zeros_like(p.get_value()))
        v = theano.shared(np.zeros_like(p.get_value()))
        m1 = T.constant(0.9, dtype="float32") * m + T.constant(0.1, dtype="float32") * g
        v1 = T.constant(0.999, dtype="float32") * v + T.constant(0.001, dtype="float32") * T.sqr(g)
        updates += [(m, m1), (v, v1), (p, p - lr * m1 / (T.sqrt(v1) + T.constant(1e-7, dtype="float32")))]
    step = theano.function([x, y], loss, updates=updates)
    return HandLoop(convert, step, lambda: None, workload)


HAND = {"pytorch": hand_pytorch, "tensorflow": hand_tensorflow, "keras": hand_keras, "jax": hand_jax,
        "mxnet": hand_mxnet, "theano": hand_theano}


class _Enough(Exception):
    """Raised from the trial's progress callback once enough paired blocks are timed."""


def paired_trial(name: str, workload: str, threads: int, data_dir: str | None, round_: int,
                 max_blocks: int) -> dict[str, Any]:
    """In this process: the harness's trial of `workload`, with a hand-loop block after each of its
    blocks (through the trial's progress callback, which the harness calls between blocks, untimed),
    until the trial ends or `max_blocks` pairs are timed. The hand loop is built after the harness's
    first step, so that the adapter applies the thread settings first, as in a trial of its own."""
    framework, _, variant = name.partition(":")
    variant = variant or "default"
    trial = TrialSpec(trial_id=f"overhead.{framework}.{variant}.{round_}", framework=framework, variant=variant,
                      label=label(framework, variant), adapter=FRAMEWORKS[framework].adapter, workload=workload,
                      dataset="mnist", profile="quick", device="cpu", threads=threads, seed=0, repeat=round_,
                      data_dir=data_dir)
    record = TrialRecord.not_run(trial, "overhead", status="error", reason="")
    hand: list[HandLoop | FitLoop] = []

    def after_block(force: bool = False, **state: object) -> None:
        if force:  # the end of training, not a block
            return
        if not hand:
            hand.append(HAND[framework](workload, threads))
        hand[0].run(record.blocks[-1].steps if record.blocks else record.first_block.steps)
        if len(record.blocks) >= max_blocks:
            raise _Enough

    try:
        run_trial(trial, record, after_block)
    except _Enough:
        pass
    hand[0].close()
    pairs = min(len(record.blocks), len(hand[0].blocks))  # the trial may end without a callback after its last block
    return {"harness": [[b.steps, b.seconds] for b in record.blocks[:pairs]], "hand": hand[0].blocks[:pairs]}


def round_env(framework: str, variant: str, threads: int) -> dict[str, str]:
    """The trial's environment with glibc's allocator held still (`--malloc steady`). By default
    each thread allocates from an arena of its own and the main arena gives freed memory back to
    the system and faults it in again, by an amount that depends on where long-lived blocks happen to
    lie. Measured on PyTorch's CNN (Keras's torch backend, the same train function driven on the
    main thread, on a worker thread, and by `fit` on a worker thread, interleaved in one process):
    the worker thread ran 9-20% faster than the main thread with the defaults, all three within 3%
    with one untrimmed arena (and about 25% faster). The check compares code paths; which thread a
    side runs on (`fit` runs on its own here) or where its heap happens to lie must not decide it.
    Trials keep glibc's defaults, as users' scripts run, unless a run asks for `--malloc steady`."""
    from harness.launch import child_env  # the parent's only: it needs psutil, which isolated environments lack

    return child_env(framework, variant, "cpu", threads, malloc="steady")


def run_round(name: str, workload: str, threads: int, data_dir: str | None, round_: int,
              max_blocks: int) -> dict[str, Any]:
    """One paired trial in a child with the trial's environment and interpreter."""
    framework, _, variant = name.partition(":")
    variant = variant or "default"
    out = subprocess.run([envs.interpreter(framework, variant, envs.base_dir()), __file__, "--pair", name,
                          "-w", workload, "--threads", str(threads), "--round", str(round_),
                          "--max-blocks", str(max_blocks)],
                         env=round_env(framework, variant, threads), cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{name}: paired trial failed:\n" + "\n".join(out.stderr.strip().splitlines()[-10:]))
    return json.loads(out.stdout.strip().splitlines()[-1])


def summarize(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Harness / hand for the mean and the median rate (pooled over rounds), and per-pair ratios."""
    from reports.stats import median_ci  # the parent's (SciPy): not in the frameworks' own environments

    def rates(side: str) -> list[np.ndarray]:
        return [np.array([steps * BATCH / seconds for steps, seconds in r[side]]) for r in rounds]

    def mean(side: str) -> float:
        return sum(s for r in rounds for s, _ in r[side]) * BATCH / sum(t for r in rounds for _, t in r[side])

    hand, harness = rates("hand"), rates("harness")
    pairs = [b / h for b, h in zip(harness, hand)]
    return {
        "mean": (mean("hand"), mean("harness")),
        "median": (float(np.median(np.concatenate(hand))), float(np.median(np.concatenate(harness)))),
        "pairs": (float(np.median(np.concatenate(pairs))), *median_ci(pairs)),
        "blocks": sum(len(p) for p in pairs),
    }


def _available(name: str) -> bool:
    framework, _, variant = name.partition(":")
    return envs.unavailable(framework, variant or "default", envs.base_dir()) is None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-f", "--framework", action="append", choices=CHOICES, default=[])
    parser.add_argument("-w", "--workload", action="append", choices=WORKLOADS, default=[])
    parser.add_argument("--rounds", type=int, default=2, help="paired processes per framework (pooled)")
    parser.add_argument("--max-blocks", type=int, default=60, help="paired blocks per round at most (default 60)")
    parser.add_argument("--threads", type=int, default=1,
                        help="threads for both sides (default 1: the harness's own cost does not depend on threads, "
                             "and on a shared 2-core machine one thread is the steadier measure)")
    parser.add_argument("--save", type=Path, help="write every round's blocks (steps, seconds) to this JSON file")
    parser.add_argument("--pair", help=argparse.SUPPRESS)
    parser.add_argument("--round", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    data_dir = os.environ.get("BENCH_DATA_DIR")
    workloads = args.workload or ["mnist_mlp"]
    if args.pair:
        pin_to_cores(args.threads)  # as the harness's trial does, before any framework starts threads
        result = paired_trial(args.pair, workloads[0], args.threads, data_dir, args.round, args.max_blocks)
        result["malloc"] = malloc_in_effect()
        print(json.dumps(result))
        return 0
    names = args.framework or [n for n in CHOICES if _available(n)]
    worst, saved = 0.0, {}
    print(f"{'framework':<17} {'workload':<10} {'hand mean':>10} {'harness':>8} {'ratio':>6}   {'hand median':>11} "
          f"{'harness':>8} {'ratio':>6}   {'per-pair ratio [95% CI]':<24} blocks")
    for workload in workloads:
        for name in names:
            key = f"{name} {workload}"
            saved[key] = [run_round(name, workload, args.threads, data_dir, r, args.max_blocks)
                          for r in range(args.rounds)]
            if args.save:
                args.save.write_text(json.dumps(saved))
            s = summarize(saved[key])
            (hm, bm), (hd, bd), (pr, lo, hi) = s["mean"], s["median"], s["pairs"]
            worst = max(worst, 1 - bm / hm, 1 - bd / hd)
            print(f"{name:<17} {workload:<10} {hm:>10,.0f} {bm:>8,.0f} {bm / hm:>6.3f}   {hd:>11,.0f} {bd:>8,.0f} "
                  f"{bd / hd:>6.3f}   {pr:.3f} [{lo:.3f}, {hi:.3f}]{'':<6} {s['blocks']}", flush=True)
    print(f"largest shortfall of harness against hand: {max(worst, 0):.1%} (limit {LIMIT:.0%}); samples/s, "
          f"{args.threads} thread(s), {args.rounds} round(s)")
    return 0 if worst <= LIMIT else 1


if __name__ == "__main__":
    sys.exit(main())
