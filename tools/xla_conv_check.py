#!/usr/bin/env python3
"""Is JAX's slow CNN the adapter's doing or XLA's? A standalone training step of the CNN workload,
written from the frameworks' documentation with nothing of the harness, timed three ways:

- JAX: `jax.jit` of `value_and_grad` plus an optax Adam update, `jax.lax.conv_general_dilated`, in
  NHWC (XLA's preferred layout, the adapter's) and NCHW; with the forward pass and the second
  convolution's gradients timed alone;
- TensorFlow: the same Keras CNN step in `tf.function`, without and with `jit_compile=True` (XLA).

    .venv/bin/python tools/xla_conv_check.py [--threads 2]

Each part runs in a process of its own (layouts and XLA flags are fixed at start).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

BATCH, STEPS = 128, 20


def _timed(fn, *args, sync) -> float:
    """Seconds per call, after one untimed call (compilation)."""
    sync(fn(*args))
    start = time.perf_counter()
    for _ in range(STEPS):
        out = fn(*args)
    sync(out)
    return (time.perf_counter() - start) / STEPS


def jax_step(layout: str) -> None:
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    rng = np.random.default_rng(0)
    nhwc = layout == "NHWC"
    dims = ("NHWC", "HWIO", "NHWC") if nhwc else ("NCHW", "OIHW", "NCHW")
    kernels = [rng.standard_normal((3, 3, 1, 32)) * 0.1, rng.standard_normal((3, 3, 32, 64)) * 0.05]
    kernels = [k if nhwc else k.transpose(3, 2, 0, 1) for k in kernels]
    params = [jnp.asarray(a, jnp.float32) for a in (kernels[0], np.zeros(32), kernels[1], np.zeros(64),
                                                      rng.standard_normal((9216, 128)) * 0.01, np.zeros(128),
                                                      rng.standard_normal((128, 10)) * 0.1, np.zeros(10))]

    def conv(x, k):
        return jax.lax.conv_general_dilated(x, k, (1, 1), "VALID", dimension_numbers=dims)

    def bias(b):
        return b if nhwc else b[:, None, None]

    def forward(p, x):
        x = jax.nn.relu(conv(x, p[0]) + bias(p[1]))
        x = jax.nn.relu(conv(x, p[2]) + bias(p[3]))
        window = (1, 2, 2, 1) if nhwc else (1, 1, 2, 2)
        x = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, window, window, "VALID").reshape(x.shape[0], -1)
        return jax.nn.relu(x @ p[4] + p[5]) @ p[6] + p[7]

    opt = optax.adam(1e-3)

    @jax.jit
    def step(p, s, x, y):
        loss, grads = jax.value_and_grad(
            lambda p: optax.softmax_cross_entropy_with_integer_labels(forward(p, x), y).mean())(p)
        updates, s = opt.update(grads, s, p)
        return optax.apply_updates(p, updates), s, loss

    x = jnp.asarray(rng.random((BATCH, 28, 28, 1) if nhwc else (BATCH, 1, 28, 28), dtype=np.float32))
    y = jnp.asarray(rng.integers(0, 10, BATCH))
    state = [params, opt.init(params)]

    def train(x, y):
        state[0], state[1], loss = step(state[0], state[1], x, y)
        return state[0]

    sync = jax.block_until_ready
    seconds = _timed(train, x, y, sync=sync)
    h1 = jax.jit(lambda p, x: jax.nn.relu(conv(x, p[0])))(params, x)
    parts = {"forward": _timed(jax.jit(forward), params, x, sync=sync),
             "conv2 forward": _timed(jax.jit(conv), h1, params[2], sync=sync),
             "conv2 kernel gradient": _timed(jax.jit(jax.grad(lambda k, h: conv(h, k).sum())), params[2], h1, sync=sync),
             "conv2 input gradient": _timed(jax.jit(jax.grad(lambda h, k: conv(h, k).sum())), h1, params[2], sync=sync)}
    print(f"jax {jax.__version__} {layout}: {seconds * 1e3:.1f} ms a step, {BATCH / seconds:,.0f} samples/s; "
          + ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in parts.items()))


def tf_step(jit: bool) -> None:
    os.environ["KERAS_BACKEND"] = "tensorflow"
    import keras
    import numpy as np
    import tensorflow as tf

    threads = int(os.environ.get("OMP_NUM_THREADS", "2"))
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    layers = keras.layers
    model = keras.Sequential([keras.Input((28, 28, 1)), layers.Conv2D(32, 3, activation="relu"),
                              layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(2), layers.Flatten(),
                              layers.Dense(128, activation="relu"), layers.Dense(10)])
    opt, loss_fn = keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function(jit_compile=jit)
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        opt.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
        return loss

    rng = np.random.default_rng(0)
    x, y = tf.constant(rng.random((BATCH, 28, 28, 1), dtype=np.float32)), tf.constant(rng.integers(0, 10, BATCH))
    seconds = _timed(step, x, y, sync=lambda loss: loss.numpy())
    print(f"tensorflow {tf.__version__} tf.function{' jit_compile=True' if jit else ''}: {seconds * 1e3:.1f} ms a step, "
          f"{BATCH / seconds:,.0f} samples/s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--part", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.part:
        {"jax-NHWC": lambda: jax_step("NHWC"), "jax-NCHW": lambda: jax_step("NCHW"),
         "tf": lambda: tf_step(False), "tf-xla": lambda: tf_step(True)}[args.part]()
        return 0
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from harness.launch import child_env

    for part in ("jax-NHWC", "jax-NCHW", "tf", "tf-xla"):
        env = child_env("jax" if part.startswith("jax") else "tensorflow", "default", "cpu", args.threads)
        out = subprocess.run([sys.executable, __file__, "--part", part], env=env, capture_output=True, text=True)
        print(out.stdout.strip() or f"{part}: failed\n{out.stderr[-1500:]}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
