"""Keras 3 with its backend as the variant (KERAS_BACKEND is set by the harness before import).

Training runs the way Keras users train: through Keras's own compiled train function, driven one
step at a time as `Model.fit` drives it (`FitSteps`), with no host read per step. Variant
"<backend>" compiles with Keras's default jit_compile="auto" (on a CPU: XLA for JAX only);
"<backend>-jit" forces jit_compile=True (XLA on TensorFlow, torch.compile on torch) and
"<backend>-nojit" forces it off. "<backend>-onbatch" trains with `train_on_batch` instead, which
returns each step's loss as a host float (a sync after every step; on JAX also a copy of the
model's state back into the model), the harness's Keras path before fit-style training.

Inference runs the way Keras users predict: `Model.predict(x, batch_size=...)` on host arrays, one
call for a timed block's batches (as for a bulk of inputs) and one per batch in latency calls.
"<backend>-call" variants predict with `model(x, training=False)` on backend tensors instead, the
way Keras's documentation advises for small batches; they have no training.

Precision is Keras's dtype policy, set before the model is built: float32, bfloat16, mixed_bfloat16,
float16, mixed_float16 (for which `compile` wraps the optimizer in Keras's LossScaleOptimizer). The
record states the resolved policy. Keras's Adam computes its bias correction in the variable's dtype,
where beta2 = 0.999 is 1.0 in bfloat16: under the pure bfloat16 policy Adam's step size is 0."""
from __future__ import annotations

import importlib
import os
from typing import Any, Sequence

import keras
import numpy as np
from keras import layers

from adapters.base import Adapter, SkipTrial, split_batches, split_inputs
from workloads.spec import ACTIVATIONS, WorkloadSpec

# --precision -> Keras's dtype policy.
POLICIES = {"fp32": "float32", "bf16": "bfloat16", "mixed-bf16": "mixed_bfloat16", "fp16": "float16",
            "mixed-fp16": "mixed_float16"}


def build_model(spec: WorkloadSpec) -> keras.Sequential:
    """The spec's layers as Keras layers; an activation right after a dense or conv layer becomes
    that layer's `activation`, as Keras code is written (a separate Activation layer costs a
    layer call per step, measurable on the eager torch backend)."""
    model = keras.Sequential([keras.Input(shape=tuple(spec.input_shape))])
    kinds = [layer.kind for layer in spec.layers] + [None]
    for i, layer in enumerate(spec.layers):
        fused = kinds[i + 1] if kinds[i + 1] in ACTIVATIONS else None
        if layer.kind == "dense":
            model.add(layers.Dense(layer.units, activation=fused))
        elif layer.kind == "conv2d":
            model.add(layers.Conv2D(layer.filters, layer.kernel, padding="valid", activation=fused))
        elif layer.kind == "maxpool":
            model.add(layers.MaxPooling2D(layer.pool))
        elif layer.kind == "flatten":
            model.add(layers.Flatten())  # channels_last: (h, w, c) order, as the spec
        elif layer.kind == "dropout":
            model.add(layers.Dropout(layer.rate))
        elif i == 0 or not spec.layers[i - 1].has_weights:  # otherwise fused into that layer
            model.add(layers.Activation(layer.kind))
    return model


class FitSteps:
    """Keras's own compiled train function (`Model.make_train_function`), called once per step the
    way `Model.fit` calls it (keras/src/backend/<backend>/trainer.py, Keras 3.15): the step's logs
    stay backend tensors, nothing is read back to the host per step, and on JAX the variables stay
    outside the model between steps and are put back only when something else needs them (an
    evaluation), as fit does at each epoch's end. Keras's loss in the logs is the running mean since
    the metrics were reset (at each epoch, as fit resets them); `losses` recovers each step's."""

    def __init__(self, model: keras.Model) -> None:
        self.model, self.backend = model, keras.backend.backend()
        self.built = False
        self.state: tuple | None = None  # JAX: (trainable, non-trainable, optimizer, metrics) values
        self.count, self.mean = 0, 0.0  # steps since the metrics were reset, running mean before them

    def step(self, batch: tuple) -> tuple[int, Any]:
        model = self.model
        if not self.built:  # as fit does before its first step: optimizer and metric variables
            model._symbolic_build(data_batch=batch)
            model.make_train_function()
            self.built = True
        if self.backend in ("tensorflow", "torch"):
            logs = model.train_function([batch])  # an iterable of one batch, as fit's iterator gives
        else:
            if self.state is None:
                self.state = model._get_jax_state(trainable_variables=True, non_trainable_variables=True,
                                                  optimizer_variables=True, metrics_variables=True,
                                                  purge_model_variables=True)
            logs, self.state = model.train_function(self.state, iter([batch]))
        self.count += 1
        return self.count, logs

    def barrier(self, handle: tuple[int, Any] | None) -> None:
        """Wait for every queued step (a host read of the last loss on TensorFlow)."""
        if self.backend == "jax" and self.state is not None:
            import jax
            jax.block_until_ready(self.state)
        elif self.backend == "tensorflow" and handle is not None:
            handle[1]["loss"].numpy()

    def settle(self) -> None:
        """Put the variables back into the model (JAX), before anything but training uses it."""
        if self.backend == "jax" and self.state is not None:
            names = ("trainable_variables", "non_trainable_variables", "optimizer_variables", "metrics_variables")
            self.model._jax_state = dict(zip(names, self.state))
            self.model._jax_state_synced = False
            self.model.jax_state_sync()
            self.state = None

    def new_epoch(self) -> None:
        """Reset the metrics, as fit does at each epoch's start."""
        self.settle()
        self.model.reset_metrics()
        self.count, self.mean = 0, 0.0

    def losses(self, handles: Sequence[tuple[int, Any]]) -> list[float]:
        """Each step's loss from the running means: L_k = k M_k - (k - 1) M_(k-1)."""
        out = []
        for count, logs in handles:
            mean = float(logs["loss"])
            out.append(count * mean - (count - 1) * self.mean if count > 1 else mean)
            self.mean = mean
        return out


class KerasAdapter(Adapter):
    framework = "keras"

    def setup(self) -> dict[str, Any]:
        backend = keras.backend.backend()
        wanted, _, mode = self.variant.partition("-")
        self.jit_setting: bool | str = {"jit": True, "nojit": False}.get(mode, "auto")
        self.on_batch = mode == "onbatch"
        self.call = mode == "call"
        if backend != wanted:
            raise RuntimeError(f"Keras loaded backend {backend!r}, expected {wanted!r} (KERAS_BACKEND "
                               f"is {os.environ.get('KERAS_BACKEND')!r})")
        has_gpu = self._backend_has_gpu()
        if self.device == "auto":
            self.device = "cuda" if has_gpu else "cpu"
        if self.device == "cuda" and not has_gpu:
            raise SkipTrial(f"no GPU visible to the Keras {backend} backend")
        settings: dict[str, Any] = {"backend": backend, "mode": "train_on_batch" if self.on_batch else
                                    "Keras's train function, one call per step as Model.fit makes it"}
        # TF32 and autotuning are switched as the backend's own adapter switches them.
        if backend == "tensorflow":
            import tensorflow as tf
            from adapters.tensorflow import apply_gpu_policies
            tf.config.threading.set_intra_op_parallelism_threads(self.threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
            gpu_policies = apply_gpu_policies(self.numerics)
            settings.update(intra_op_threads=self.threads, inter_op_threads=1)
        elif backend == "torch":
            import torch
            from adapters.pytorch import apply_gpu_policies
            torch.set_num_threads(self.threads)
            gpu_policies = apply_gpu_policies(self.numerics)
            settings.update(intra_op_threads=torch.get_num_threads())
        else:
            from adapters.jax import apply_gpu_policies
            gpu_policies = apply_gpu_policies(self.numerics, self.device)
            settings.update(intra_op_threads="XLA_FLAGS/OMP (environment)")
        self.policy = POLICIES[self.numerics.precision]
        # The mechanism is filled in once the model is built (the policy as Keras resolved it).
        self._numerics_how = (self.device, *gpu_policies)
        return settings

    def _backend_has_gpu(self) -> bool:
        backend = keras.backend.backend()
        if backend == "tensorflow":
            import tensorflow as tf
            return bool(tf.config.list_physical_devices("GPU"))
        if backend == "torch":
            import torch
            return torch.cuda.is_available()
        import jax
        return any(d.platform == "gpu" for d in jax.devices())

    def versions(self) -> dict[str, str]:
        backend = keras.backend.backend()
        module = importlib.import_module({"torch": "torch", "tensorflow": "tensorflow", "jax": "jax"}[backend])
        return {"keras": keras.__version__, backend: module.__version__}

    def build(self, spec: WorkloadSpec, weights: Sequence[np.ndarray]) -> dict[str, Any]:
        self.spec = spec
        keras.utils.set_random_seed(0)  # only affects dropout; weights come from the spec
        if keras.backend.backend() == "torch":
            # Start compiling from scratch, as in a fresh process: torch.compile caches by code
            # object, and Keras's train step is the same code for every model built in a process
            # (the equivalence probe builds several), which would mark shapes dynamic.
            import torch
            torch.compiler.reset()
        keras.config.set_dtype_policy(self.policy)
        self.model = build_model(spec)
        self.model.set_weights(list(weights))
        opt = spec.optimizer
        if opt.name == "adam":
            optimizer = keras.optimizers.Adam(learning_rate=opt.learning_rate, beta_1=opt.beta1,
                                              beta_2=opt.beta2, epsilon=opt.eps)
        else:
            optimizer = keras.optimizers.SGD(learning_rate=opt.learning_rate)
        if spec.loss == "softmax_cross_entropy":
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        else:
            loss = keras.losses.BinaryCrossentropy(from_logits=True)
        self.model.compile(optimizer=optimizer, loss=loss, jit_compile=self.jit_setting)
        self.fit = None if self.on_batch else FitSteps(self.model)
        self._last = None
        policy = self.model.dtype_policy
        mechanism = (f"Keras dtype policy {policy.name!r} (compute {policy.compute_dtype}, variables "
                     f"{policy.variable_dtype})")
        if isinstance(self.model.optimizer, keras.optimizers.LossScaleOptimizer):
            mechanism += ", the optimizer wrapped in keras.optimizers.LossScaleOptimizer (dynamic loss scaling)"
        return {"jit_compile": self.jit_setting, "jit_compile_resolved": self.model.jit_compile,
                **self.numerics.applied(mechanism, *self._numerics_how)}

    def param_count(self) -> int:
        return int(self.model.count_params())

    def stage(self, x: np.ndarray, y: np.ndarray) -> None:
        if self.fit is not None:
            self.fit.new_epoch()
        if self.spec.loss == "binary_cross_entropy":
            y = y.reshape(-1, 1)
        convert = keras.ops.convert_to_tensor
        self.batches = [(convert(xb), convert(yb)) for xb, yb in split_batches(x, y, self.spec.batch_size)]
        self.n_batches = len(self.batches)
        self._wait_for_copies()

    def _wait_for_copies(self) -> None:
        """Finish the backend's asynchronous copies (JAX's always, the others' to a GPU)."""
        backend = keras.backend.backend()
        if backend == "jax":
            import jax
            jax.block_until_ready(self.batches)
        elif self.device == "cuda" and backend == "tensorflow":
            import tensorflow as tf
            tf.test.experimental.sync_devices()
        elif self.device == "cuda" and backend == "torch":
            import torch
            torch.cuda.synchronize()

    def train_step(self, i: int) -> Any:
        if self.fit is None:
            return self.model.train_on_batch(*self.batches[i])
        self._last = self.fit.step(self.batches[i])
        return self._last

    def synchronize(self) -> None:
        # train_on_batch returns the loss as a host float, so each of its steps has already waited.
        if self.fit is not None:
            self.fit.barrier(self._last)
            if self.device == "cuda" and keras.backend.backend() == "torch":
                import torch
                torch.cuda.synchronize()

    def loss_values(self, handles: Sequence[Any]) -> list[float]:
        return self.fit.losses(handles) if self.fit is not None else [float(h) for h in handles]

    def stage_inference(self, x: np.ndarray) -> dict[str, Any]:
        size = self.spec.batch_size
        self.n_batches = len(x) // size
        if self.call:
            convert = keras.ops.convert_to_tensor
            self.batches = [convert(xb) for xb in split_inputs(x, size)]
            self._wait_for_copies()
            return {"inference": "model(x, training=False) on backend tensors, one call per batch"}
        self.inputs = np.ascontiguousarray(x[:self.n_batches * size])
        return {"inference": f"Model.predict(x, batch_size={size}) on host arrays: one call for a timed "
                             "block's batches, one per batch in latency calls"}

    def _predict(self, first: int, n: int) -> np.ndarray:
        size = self.spec.batch_size
        out = self.model.predict(self.inputs[first * size:(first + n) * size], batch_size=size, verbose=0)
        return np.asarray(out, dtype=np.float32)

    def infer(self, i: int) -> Any:
        return self.model(self.batches[i], training=False) if self.call else self._predict(i, 1)

    def infer_block(self, first: int, n: int) -> list[Any]:
        if self.call:
            return super().infer_block(first, n)
        out = []
        while n > 0:  # one predict call per run of consecutive staged batches
            take = min(n, self.n_batches - first)
            out.append(self._predict(first, take))
            first, n = 0, n - take
        return out

    def wait(self, handles: Sequence[Any]) -> None:
        if not self.call or not handles:
            return  # predict returns host arrays
        backend = keras.backend.backend()
        if backend == "jax":
            import jax
            jax.block_until_ready(list(handles))
        elif backend == "tensorflow":
            handles[-1].numpy()
        elif self.device == "cuda":
            import torch
            torch.cuda.synchronize()

    def outputs(self, handle: Any) -> np.ndarray:
        return np.asarray(keras.ops.convert_to_numpy(handle), dtype=np.float32)

    def predict(self, x: np.ndarray) -> np.ndarray:
        if self.fit is not None:
            self.fit.settle()
        return np.asarray(self.model.predict_on_batch(x), dtype=np.float32)

    def device_memory_peak(self) -> int | None:
        if self.device != "cuda":
            return None
        backend = keras.backend.backend()
        if backend == "tensorflow":
            import tensorflow as tf
            return int(tf.config.experimental.get_memory_info("GPU:0")["peak"])
        if backend == "torch":
            import torch
            return int(torch.cuda.max_memory_allocated())
        import jax
        stats = jax.devices()[0].memory_stats() or {}
        return stats.get("peak_bytes_in_use")
