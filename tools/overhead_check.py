#!/usr/bin/env python3
"""Does the harness cost anything? Compare its mnist_mlp throughput with a minimal hand-written loop.

For each installed framework, runs (each in a fresh process with the same thread settings) a plain
training loop written the way a user would, then the harness's own trial of the same workload,
and prints harness / hand-written. Both run the quick profile's three epochs on the same batches
in the same order, converted to tensors before each epoch's clock starts, and leave out the very
first step. Two figures are compared, each computed the same way on both sides: the mean rate
(all samples over all timed seconds, what a user's own loop usually prints) and the median rate
over blocks of about 0.2 s (the harness's reported steady-state figure).

    .venv/bin/python tools/overhead_check.py [-f pytorch -f tensorflow ...] [--rounds 3]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adapters import FRAMEWORKS, label  # noqa: E402
from harness.launch import child_env, launch  # noqa: E402
from harness.record import TrialSpec  # noqa: E402
from harness import envs  # noqa: E402
from harness.threads import pin_to_cores  # noqa: E402
from harness.trial import next_block_size  # noqa: E402

BATCH = 128
CHOICES = ("pytorch", "tensorflow", "keras:tensorflow", "keras:torch", "keras:jax", "jax", "mxnet", "theano")


def _epochs():
    """The quick profile's epochs of mnist_mlp in the harness's batch order, as NumPy batches."""
    from workloads import get_workload, training_data
    from workloads.spec import batch_order

    spec = get_workload("mnist_mlp")
    data = training_data(spec, "mnist", "quick")
    n = len(data.x_train) // BATCH
    for epoch in range(spec.epochs["quick"]):
        order = batch_order(0, epoch, len(data.x_train))
        x, y = data.x_train[order], data.y_train[order]
        yield spec, [(x[i * BATCH:(i + 1) * BATCH], y[i * BATCH:(i + 1) * BATCH]) for i in range(n)]


def _time_epochs(convert, step, finish) -> tuple[float, float]:
    """(mean, median-of-blocks) samples/s over all steps but the very first (the harness reports
    that one apart too). Blocks sized as the harness sizes them end with a barrier, as in the harness; converting each
    epoch's batches to tensors happens before its clock starts, as in the harness."""
    seconds, steps, rates, block = 0.0, 0, [], 1
    for epoch, (spec, batches) in enumerate(_epochs()):
        batches = [convert(x, y) for x, y in batches]
        if epoch == 0:
            step(*batches[0])
            finish()
            batches = batches[1:]
        i = 0
        while i < len(batches):
            chunk = batches[i:i + block]
            i += len(chunk)
            start = time.perf_counter()
            for x, y in chunk:
                step(x, y)
            finish()
            took = time.perf_counter() - start
            seconds, steps = seconds + took, steps + len(chunk)
            rates.append(len(chunk) * BATCH / took)
            block = next_block_size(len(chunk), took)
    return steps * BATCH / seconds, float(np.median(rates))


def hand_pytorch(threads: int) -> float:
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

    return _time_epochs(lambda x, y: (torch.from_numpy(x), torch.from_numpy(y)), step, lambda: None)


def hand_tensorflow(threads: int) -> float:
    import tensorflow as tf

    from workloads import get_workload

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

    return _time_epochs(lambda x, y: (tf.constant(x), tf.constant(y)), lambda x, y: last.append(step(x, y)),
                        lambda: last[-1].numpy() if last else None)


def hand_keras(threads: int) -> float:
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

    return _time_epochs(convert, model.train_on_batch, lambda: None)


def hand_jax(threads: int) -> float:
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
    return _time_epochs(lambda x, y: jax.block_until_ready((jax.device_put(x), jax.device_put(y))), step,
                        lambda: jax.block_until_ready(state[0]))


def hand_mxnet(threads: int) -> float:
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

    losses = []  # kept until the block's barrier, as a loop that reports its losses would

    def step(x, y):
        with autograd.record():
            loss = loss_fn(net(x), y)
        loss.backward()
        trainer.step(BATCH)
        losses.append(loss.mean())

    def finish():
        mx.nd.waitall()
        losses.clear()

    return _time_epochs(lambda x, y: (mx.nd.array(x), mx.nd.array(y)), step, finish)


def hand_theano(threads: int) -> float:
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
    return _time_epochs(lambda xb, yb: (xb, yb.astype(np.int32)), step, lambda: None)


HAND = {"pytorch": hand_pytorch, "tensorflow": hand_tensorflow, "keras": hand_keras, "jax": hand_jax,
        "mxnet": hand_mxnet, "theano": hand_theano}


def run_hand(name: str, threads: int, data_dir: str | None) -> tuple[float, float]:
    framework, _, variant = name.partition(":")
    trial = TrialSpec(trial_id="hand", framework=framework, variant=variant or "default", label=name, adapter="",
                      workload="mnist_mlp", dataset="mnist", profile="quick", device="cpu", threads=threads,
                      seed=0, repeat=0, data_dir=data_dir)
    env = child_env(trial.framework, trial.variant, trial.device, trial.threads)
    python = envs.interpreter(trial.framework, trial.variant, envs.base_dir())
    out = subprocess.run([python, __file__, "--hand", framework, "--threads", str(threads)],
                         env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    mean, median = out.stdout.strip().splitlines()[-1].split()
    return float(mean), float(median)


def run_harness(name: str, threads: int, data_dir: str | None, work: Path, round_: int) -> tuple[float, float]:
    framework, _, variant = name.partition(":")
    variant = variant or "default"
    trial = TrialSpec(trial_id=f"{framework}.{variant}.{round_}", framework=framework, variant=variant,
                      label=label(framework, variant), adapter=FRAMEWORKS[framework].adapter, workload="mnist_mlp",
                      dataset="mnist", profile="quick", device="cpu", threads=threads, seed=0, repeat=round_,
                      data_dir=data_dir)
    record = launch(trial, work, "overhead", python=envs.interpreter(framework, variant, envs.base_dir()))
    if record.status != "ok":
        raise RuntimeError(f"{name}: harness trial {record.status}: {record.reason}")
    from reports.aggregate import block_throughputs, mean_throughput

    return mean_throughput(record), float(np.median(block_throughputs(record)))


def _available(name: str) -> bool:
    framework, _, variant = name.partition(":")
    return envs.unavailable(framework, variant or "default", envs.base_dir()) is None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-f", "--framework", action="append", choices=CHOICES, default=[])
    parser.add_argument("--rounds", type=int, default=3, help="alternating hand/harness rounds (medians compared)")
    parser.add_argument("--threads", type=int, default=1,
                        help="threads for both sides (default 1: on a shared 2-core machine two-thread rates jump "
                             "between levels for seconds at a time, and the harness's own cost does not depend on "
                             "threads)")
    parser.add_argument("--hand", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.hand:
        pin_to_cores(args.threads)  # as the harness's trial does, before any framework starts threads
        print(*HAND[args.hand](args.threads))
        return 0
    data_dir = os.environ.get("BENCH_DATA_DIR")
    names = args.framework or [n for n in CHOICES if _available(n)]
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{'framework':<18} {'figure':<7} {'hand samples/s':>15} {'harness samples/s':>18} {'harness/hand':>13}")
        for name in names:
            hand, harness = [], []
            for round_ in range(args.rounds):  # alternate, so drift on a shared machine hits both
                hand.append(run_hand(name, args.threads, data_dir))
                harness.append(run_harness(name, args.threads, data_dir, Path(tmp), round_))
            for i, figure in enumerate(("mean", "median")):
                h = float(np.median([v[i] for v in hand]))
                b = float(np.median([v[i] for v in harness]))
                worst = max(worst, abs(b / h - 1))
                print(f"{name:<18} {figure:<7} {h:>15,.0f} {b:>18,.0f} {b / h:>12.3f}x   rounds: "
                      + json.dumps({"hand": [round(v[i]) for v in hand], "harness": [round(v[i]) for v in harness]}),
                      flush=True)
    print(f"largest deviation: {worst:.1%} (limit 3%)")
    return 0 if worst <= 0.03 else 1


if __name__ == "__main__":
    sys.exit(main())
