"""JAX: a pure function of the spec's layers, optax for the optimizer, the whole train step
(forward, backward, update) under one jax.jit, with the old parameters donated.

Precision is dtypes in the jitted step, as JAX code does it: bf16 / fp16 keep the parameters (and
optax's state, which follows them) in that dtype; mixed-bf16 keeps them in float32 and casts them
and the inputs to bfloat16 inside the step; the loss is computed in float32. JAX has no loss
scaling of its own, so mixed-fp16 is skipped (DeepMind's separate `jmp` library provides one)."""
from __future__ import annotations

from functools import partial
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from adapters.base import Adapter, SkipTrial, split_batches, split_inputs
from adapters.numerics import Numerics
from workloads.spec import WorkloadSpec


def forward(spec: WorkloadSpec, params: Sequence[jax.Array], x: jax.Array, key: jax.Array | None = None,
            compute: jnp.dtype = jnp.float32) -> jax.Array:
    """Logits (float32) for NHWC (or flat) inputs; kernels in the spec's layouts, so no conversion
    is needed. Parameters and inputs are cast to `compute` (a no-op where they have it). With a PRNG
    `key` (training) dropout draws its masks; without one it is the identity."""
    it = iter([p.astype(compute) for p in params])
    x = x.astype(compute)
    for layer in spec.layers:
        if layer.kind == "dense":
            x = x @ next(it) + next(it)
        elif layer.kind == "conv2d":
            x = jax.lax.conv_general_dilated(x, next(it), (1, 1), "VALID",
                                             dimension_numbers=("NHWC", "HWIO", "NHWC")) + next(it)
        elif layer.kind == "maxpool":
            p = layer.pool
            x = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, p, p, 1), (1, p, p, 1), "VALID")
        elif layer.kind == "flatten":
            x = x.reshape(x.shape[0], -1)  # NHWC: (h, w, c) order, as the spec
        elif layer.kind == "relu":
            x = jax.nn.relu(x)
        elif layer.kind == "tanh":
            x = jnp.tanh(x)
        elif layer.kind == "sigmoid":
            x = jax.nn.sigmoid(x)
        elif layer.kind == "dropout" and key is not None and layer.rate > 0:
            key, sub = jax.random.split(key)
            keep = 1.0 - layer.rate
            x = jnp.where(jax.random.bernoulli(sub, keep, x.shape), x / keep, 0.0).astype(compute)
    return x.astype(jnp.float32)


def loss_fn(spec: WorkloadSpec, params: Sequence[jax.Array], x: jax.Array, y: jax.Array,
            key: jax.Array | None = None, compute: jnp.dtype = jnp.float32) -> jax.Array:
    logits = forward(spec, params, x, key, compute)
    if spec.loss == "softmax_cross_entropy":
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    return optax.sigmoid_binary_cross_entropy(logits[:, 0], y).mean()


def make_optimizer(spec: WorkloadSpec) -> optax.GradientTransformation:
    opt = spec.optimizer
    if opt.name == "adam":
        # The spec's Adam is the "epsilon-hat" form (eps added to sqrt(v), bias correction folded
        # into the step size, as TensorFlow, Keras, MXNet and Theano do). optax adds eps to the
        # bias-corrected sqrt(v) instead: the same step when its eps at step t is
        # eps / sqrt(1 - b2^t), given each step as an injected schedule (count starts at 0).
        b2, eps = opt.beta2, opt.eps
        return optax.inject_hyperparams(optax.adam)(
            learning_rate=opt.learning_rate, b1=opt.beta1, b2=b2,
            eps=lambda count: eps / jnp.sqrt(1 - b2 ** (count + 1)))
    return optax.sgd(opt.learning_rate)


def apply_gpu_policies(numerics: Numerics, device: str) -> tuple[str, str]:
    """--tf32 in JAX (also for Keras on JAX): XLA's GPU default lets float32 dots use TF32;
    autotuning is set in the child's environment (adapters.numerics.numerics_environment). Returns
    how, for the record."""
    if device == "cuda":
        jax.config.update("jax_default_matmul_precision", "tensorfloat32" if numerics.tf32 else "highest")
    return "jax_default_matmul_precision", "XLA's GPU autotuner (--xla_gpu_autotune_level)"


class JaxAdapter(Adapter):
    framework = "jax"

    def setup(self) -> dict[str, Any]:
        has_gpu = any(d.platform == "gpu" for d in jax.devices())
        if self.device == "auto":
            self.device = "cuda" if has_gpu else "cpu"
        if self.device == "cuda" and not has_gpu:
            raise SkipTrial("no GPU visible to JAX")
        self.dev = jax.devices("gpu" if self.device == "cuda" else "cpu")[0]
        if self.precision.loss_scaling:
            raise SkipTrial(f"{self.numerics.precision} needs loss scaling, and JAX has none of its own "
                            "(DeepMind's separate jmp library provides it)")
        gpu_policies = apply_gpu_policies(self.numerics, self.device)
        self.compute, self.param_dtype = jnp.dtype(self.precision.compute), jnp.dtype(self.precision.params)
        if self.precision.mixed:
            mechanism = f"float32 parameters cast to {self.precision.compute} inside the jitted step; loss in float32"
        elif self.precision.reduced:
            mechanism = f"parameters, optax state and inputs in {self.precision.compute}; loss in float32"
        else:
            mechanism = "float32"
        return {"mode": "jax.jit of the whole train step, parameters donated",
                "intra_op_threads": "XLA_FLAGS (environment) and the CPU affinity",
                "jax_device": str(self.dev),
                **self.numerics.applied(mechanism, self.device, *gpu_policies)}

    def versions(self) -> dict[str, str]:
        import jaxlib
        return {"jax": jax.__version__, "jaxlib": jaxlib.__version__, "optax": optax.__version__}

    def build(self, spec: WorkloadSpec, weights: Sequence[np.ndarray]) -> None:
        self.spec = spec
        self.params = [jax.device_put(np.asarray(w, np.float32), self.dev).astype(self.param_dtype) for w in weights]
        optimizer = make_optimizer(spec)
        # Committed to the device like the step's outputs: optax creates Adam's step count
        # uncommitted, and a jitted function compiles again when an argument's placement changes,
        # which made the second step a second compilation (0.5 s, inside the steady state).
        self.opt_state = jax.device_put(optimizer.init(self.params), self.dev)

        self.key = jax.device_put(jax.random.key(0), self.dev)  # dropout masks only

        @partial(jax.jit, donate_argnums=(0, 1, 2))
        def step(params, opt_state, key, x, y):
            key, sub = jax.random.split(key) if spec.has_dropout else (key, None)
            loss, grads = jax.value_and_grad(partial(loss_fn, spec, compute=self.compute))(params, x, y, sub)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state, key, loss

        self._step = step
        self._predict = jax.jit(partial(forward, spec, compute=self.compute))

    def param_count(self) -> int:
        return sum(int(p.size) for p in self.params)

    def stage(self, x: np.ndarray, y: np.ndarray) -> None:
        if self.spec.loss == "binary_cross_entropy":
            y = y.astype(np.float32)
        self.batches = [(jax.device_put(xb, self.dev), jax.device_put(yb, self.dev))
                        for xb, yb in split_batches(x, y, self.spec.batch_size)]
        jax.block_until_ready(self.batches)  # device_put is asynchronous, even to the CPU
        self.n_batches = len(self.batches)

    def train_step(self, i: int) -> jax.Array:
        x, y = self.batches[i]
        self.params, self.opt_state, self.key, loss = self._step(self.params, self.opt_state, self.key, x, y)
        return loss

    def synchronize(self) -> None:
        # Every step depends on the previous parameters, so the newest ones finish last.
        jax.block_until_ready(self.params)

    def loss_values(self, handles: Sequence[jax.Array]) -> list[float]:
        return [float(v) for v in jax.device_get(list(handles))]

    def stage_inference(self, x: np.ndarray) -> dict[str, Any]:
        size = self.spec.batch_size
        self.batches = [jax.device_put(xb, self.dev) for xb in split_inputs(x, size)]
        jax.block_until_ready(self.batches)
        self.n_batches = len(self.batches)
        return {"inference": "jax.jit of the forward pass"}

    def infer(self, i: int) -> jax.Array:
        return self._predict(self.params, self.batches[i])

    def wait(self, handles: Sequence[jax.Array]) -> None:
        jax.block_until_ready(list(handles))

    def outputs(self, handle: jax.Array) -> np.ndarray:
        return np.asarray(handle)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self._predict(self.params, jax.device_put(x, self.dev)))

    def device_memory_peak(self) -> int | None:
        if self.device != "cuda":
            return None
        return (self.dev.memory_stats() or {}).get("peak_bytes_in_use")
