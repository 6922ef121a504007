#!/usr/bin/env python3
"""Does the harness cost anything? Compare its mnist_mlp throughput with a minimal hand-written loop.

For each installed framework, a child process (the trial's environment, threads and core
affinity) runs the harness's trial body (`harness.trial.run`, with its staging, block timing and
untimed evaluations) and, after each of the harness's timed blocks, a block of the same number of
steps of a plain training loop written the way a user would, on the same batches in the same
order. Interleaving in 0.2 s blocks matters on a shared machine: its speed drifts by 5-15% over
tens of seconds, within a process and between processes, so loops timed one after the other
(even alternating whole processes) differ by more than the 3% this check must resolve, while
neighbouring blocks see the same machine.

Both sides leave out their very first step (compilation) and convert each epoch's batches before
timing it. Per framework, pooled over `--rounds` processes, it prints harness / hand for the mean
rate (all samples over all timed seconds, what a user's own loop prints) and for the median block
rate (the harness's reported figure), and the median of the per-pair ratios with its bootstrap CI.

    .venv/bin/python tools/overhead_check.py [-f pytorch -f tensorflow ...] [--rounds 2] [--threads 1]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adapters import FRAMEWORKS, label  # noqa: E402
from harness import envs  # noqa: E402
from harness.launch import child_env  # noqa: E402
from harness.record import TrialRecord, TrialSpec  # noqa: E402
from harness.threads import pin_to_cores  # noqa: E402
from harness.trial import run as run_trial  # noqa: E402

BATCH = 128
LIMIT = 0.03
CHOICES = ("pytorch", "tensorflow", "keras:tensorflow", "keras:torch", "keras:jax", "jax", "mxnet", "theano")


def _epochs():
    """The quick profile's epochs of mnist_mlp in the harness's batch order, as NumPy batches."""
    from workloads import get_workload, training_data
    from workloads.spec import batch_order

    spec = get_workload("mnist_mlp")
    data = training_data(spec, "mnist", "quick")
    n = len(data.x_train) // BATCH
    for epoch in range(spec.epochs["quick"]):
        x, y = data.epoch(batch_order(0, epoch, len(data.x_train)))
        yield [(x[i * BATCH:(i + 1) * BATCH], y[i * BATCH:(i + 1) * BATCH]) for i in range(n)]


class HandLoop:
    """A plain training loop over the quick profile's epochs, advanced one timed block at a time.

    `convert` turns a NumPy batch into the framework's tensors (each epoch's, before its steps are
    timed), `step` trains on one, `finish` waits for queued work (the block's barrier)."""

    def __init__(self, convert: Callable, step: Callable, finish: Callable) -> None:
        self.convert, self.step, self.finish = convert, step, finish
        self.epochs = _epochs()
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


def hand_pytorch(threads: int) -> HandLoop:
    import torch
    from torch import nn

    torch.set_num_threads(threads)
    model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)

    def step(x, y):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    return HandLoop(lambda x, y: (torch.from_numpy(x), torch.from_numpy(y)), step, lambda: None)


def hand_tensorflow(threads: int) -> HandLoop:
    import tensorflow as tf

    from workloads import get_workload

    if tf.config.threading.get_intra_op_parallelism_threads() != threads:  # the adapter may have set it
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    params = [tf.Variable(w) for w in get_workload("mnist_mlp").init_weights(0)]
    slots = [(tf.Variable(tf.zeros_like(p)), tf.Variable(tf.zeros_like(p))) for p in params]
    b1p, b2p = tf.Variable(0.9), tf.Variable(0.999)
    last = []

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            h = tf.nn.relu(tf.matmul(x, params[0]) + params[1])
            h = tf.nn.relu(tf.matmul(h, params[2]) + params[3])
            logits = tf.matmul(h, params[4]) + params[5]
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
        for p, g, (m, v) in zip(params, tape.gradient(loss, params), slots):
            tf.raw_ops.ResourceApplyAdam(var=p.handle, m=m.handle, v=v.handle, beta1_power=b1p.read_value(),
                                         beta2_power=b2p.read_value(), lr=1e-3, beta1=0.9, beta2=0.999,
                                         epsilon=1e-7, grad=g)
        b1p.assign(b1p * 0.9)
        b2p.assign(b2p * 0.999)
        return loss

    return HandLoop(lambda x, y: (tf.constant(x), tf.constant(y)), lambda x, y: last.append(step(x, y)),
                        lambda: last[-1].numpy() if last else None)


def hand_keras(threads: int) -> HandLoop:
    import keras

    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(512, activation="relu"),
                              keras.layers.Dense(512, activation="relu"), keras.layers.Dense(10)])
    model.compile(optimizer=keras.optimizers.Adam(1e-3, epsilon=1e-7),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))

    def convert(x, y):
        batch = keras.ops.convert_to_tensor(x), keras.ops.convert_to_tensor(y)
        if keras.backend.backend() == "jax":  # asynchronous copies: done before the clock starts
            import jax
            jax.block_until_ready(batch)
        return batch

    return HandLoop(convert, model.train_on_batch, lambda: None)


def hand_jax(threads: int) -> HandLoop:
    import jax
    import jax.numpy as jnp
    import optax

    from workloads import get_workload

    params = [jnp.asarray(w) for w in get_workload("mnist_mlp").init_weights(0)]
    opt = optax.adam(1e-3, eps=1e-7)
    state = [params, opt.init(params)]

    def loss_fn(p, x, y):
        h = jax.nn.relu(x @ p[0] + p[1])
        h = jax.nn.relu(h @ p[2] + p[3])
        return optax.softmax_cross_entropy_with_integer_labels(h @ p[4] + p[5], y).mean()

    @jax.jit
    def update(p, s, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(p, x, y)
        updates, s = opt.update(grads, s, p)
        return optax.apply_updates(p, updates), s, loss

    def step(x, y):
        state[0], state[1], _ = update(state[0], state[1], x, y)

    # device_put is asynchronous: wait for each copy, so that none is paid inside a timed block.
    return HandLoop(lambda x, y: jax.block_until_ready((jax.device_put(x), jax.device_put(y))), step,
                        lambda: jax.block_until_ready(state[0]))


def hand_mxnet(threads: int) -> HandLoop:
    import mxnet as mx
    from mxnet import autograd, gluon

    from workloads import get_workload

    net = gluon.nn.HybridSequential()
    net.add(gluon.nn.Dense(512, activation="relu", in_units=784), gluon.nn.Dense(512, activation="relu", in_units=512),
            gluon.nn.Dense(10, in_units=512))
    net.initialize()
    for param, w in zip(net.collect_params().values(), get_workload("mnist_mlp").init_weights(0)):
        param.set_data(mx.nd.array(w.T if w.ndim == 2 else w))
    trainer = gluon.Trainer(net.collect_params(), "adam", {"learning_rate": 1e-3, "epsilon": 1e-7})
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()

    def step(x, y):  # Gluon's documented loop, without a host read of the loss per step
        with autograd.record():
            loss = loss_fn(net(x), y)
        loss.backward()
        trainer.step(BATCH)

    return HandLoop(lambda x, y: (mx.nd.array(x), mx.nd.array(y)), step, mx.nd.waitall)


def hand_theano(threads: int) -> HandLoop:
    import adapters.theano  # noqa: F401 - the same THEANO_FLAGS (BLAS, OpenMP) as the adapter's
    import numpy as np
    import theano
    import theano.tensor as T

    from workloads import get_workload

    params = [theano.shared(w) for w in get_workload("mnist_mlp").init_weights(0)]
    x, y = T.fmatrix(), T.ivector()
    h = T.nnet.relu(T.dot(x, params[0]) + params[1])
    h = T.nnet.relu(T.dot(h, params[2]) + params[3])
    loss = T.nnet.categorical_crossentropy(T.nnet.softmax(T.dot(h, params[4]) + params[5]), y).mean()
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
    return HandLoop(lambda xb, yb: (xb, yb.astype(np.int32)), step, lambda: None)


HAND = {"pytorch": hand_pytorch, "tensorflow": hand_tensorflow, "keras": hand_keras, "jax": hand_jax,
        "mxnet": hand_mxnet, "theano": hand_theano}


def paired_trial(name: str, threads: int, data_dir: str | None, round_: int) -> dict[str, Any]:
    """In this process: the harness's trial of mnist_mlp, with a hand-loop block after each of its
    blocks (through the trial's progress callback, which the harness calls between blocks, untimed).
    The hand loop is built after the harness's first step, so that the adapter applies the thread
    settings first, as in a trial of its own."""
    framework, _, variant = name.partition(":")
    variant = variant or "default"
    trial = TrialSpec(trial_id=f"overhead.{framework}.{variant}.{round_}", framework=framework, variant=variant,
                      label=label(framework, variant), adapter=FRAMEWORKS[framework].adapter, workload="mnist_mlp",
                      dataset="mnist", profile="quick", device="cpu", threads=threads, seed=0, repeat=round_,
                      data_dir=data_dir)
    record = TrialRecord.not_run(trial, "overhead", status="error", reason="")
    hand: list[HandLoop] = []

    def after_block(force: bool = False, **state: object) -> None:
        if force:  # the end of training, not a block
            return
        if not hand:
            hand.append(HAND[framework](threads))
        hand[0].run(record.blocks[-1].steps if record.blocks else record.first_block.steps)

    run_trial(trial, record, after_block)
    return {"harness": [[b.steps, b.seconds] for b in record.blocks], "hand": hand[0].blocks}


def run_round(name: str, threads: int, data_dir: str | None, round_: int) -> dict[str, Any]:
    """One paired trial in a child with the trial's environment and interpreter."""
    framework, _, variant = name.partition(":")
    variant = variant or "default"
    out = subprocess.run([envs.interpreter(framework, variant, envs.base_dir()), __file__, "--pair", name,
                          "--threads", str(threads), "--round", str(round_)],
                         env=child_env(framework, variant, "cpu", threads), cwd=ROOT, capture_output=True, text=True)
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
    parser.add_argument("--rounds", type=int, default=2, help="paired processes per framework (pooled)")
    parser.add_argument("--threads", type=int, default=1,
                        help="threads for both sides (default 1: the harness's own cost does not depend on threads, "
                             "and on a shared 2-core machine one thread is the steadier measure)")
    parser.add_argument("--save", type=Path, help="write every round's blocks (steps, seconds) to this JSON file")
    parser.add_argument("--pair", help=argparse.SUPPRESS)
    parser.add_argument("--round", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    data_dir = os.environ.get("BENCH_DATA_DIR")
    if args.pair:
        pin_to_cores(args.threads)  # as the harness's trial does, before any framework starts threads
        print(json.dumps(paired_trial(args.pair, args.threads, data_dir, args.round)))
        return 0
    names = args.framework or [n for n in CHOICES if _available(n)]
    worst, saved = 0.0, {}
    print(f"{'framework':<17} {'hand mean':>10} {'harness':>8} {'ratio':>6}   {'hand median':>11} {'harness':>8} "
          f"{'ratio':>6}   {'per-pair ratio [95% CI]':<24} blocks")
    for name in names:
        saved[name] = [run_round(name, args.threads, data_dir, r) for r in range(args.rounds)]
        if args.save:
            args.save.write_text(json.dumps(saved))
        s = summarize(saved[name])
        (hm, bm), (hd, bd), (pr, lo, hi) = s["mean"], s["median"], s["pairs"]
        worst = max(worst, abs(bm / hm - 1), abs(bd / hd - 1))
        print(f"{name:<17} {hm:>10,.0f} {bm:>8,.0f} {bm / hm:>6.3f}   {hd:>11,.0f} {bd:>8,.0f} {bd / hd:>6.3f}   "
              f"{pr:.3f} [{lo:.3f}, {hi:.3f}]{'':<6} {s['blocks']}", flush=True)
    print(f"largest deviation of harness from hand: {worst:.1%} (limit {LIMIT:.0%}); samples/s, {args.threads} "
          f"thread(s), {args.rounds} round(s)")
    return 0 if worst <= LIMIT else 1


if __name__ == "__main__":
    sys.exit(main())
