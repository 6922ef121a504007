"""Native TensorFlow (no Keras): tf.Variable, GradientTape, tf.function, and the fused
optimizer kernels (ResourceApplyAdam / ResourceApplyGradientDescent) TF's own optimizers use.
Variant "xla" compiles the training step with XLA (tf.function(jit_compile=True)).

Precision: mixed-bf16 keeps the variables in float32 and casts them and the inputs to bfloat16 in
the forward pass (what Keras's mixed policies do inside TensorFlow); bf16 / fp16 keep variables,
Adam's slots and beta powers in that dtype, since the fused kernels take every argument in the
variable's dtype (in bfloat16, beta2 = 0.999 is 1.0, which makes Adam's step size 0: pure-bf16 Adam
does not train in TensorFlow, nor in Keras, which computes the same way). Loss scaling exists only
as a Keras optimizer wrapper, so mixed-fp16 is skipped here (keras:tensorflow runs it)."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import tensorflow as tf

from adapters.base import Adapter, SkipTrial, split_batches, split_inputs
from adapters.numerics import Numerics
from workloads.spec import WorkloadSpec

_ACTIVATIONS = {"relu": tf.nn.relu, "tanh": tf.nn.tanh, "sigmoid": tf.nn.sigmoid}


def apply_gpu_policies(numerics: Numerics) -> tuple[str, str]:
    """--tf32 in TensorFlow (also for Keras on it; TF's own default is on); autotuning is set in the
    child's environment (adapters.numerics.numerics_environment). Returns how, for the record."""
    tf.config.experimental.enable_tensor_float_32_execution(numerics.tf32)
    return ("tf.config.experimental.enable_tensor_float_32_execution",
            "TF_CUDNN_USE_AUTOTUNE, XLA's --xla_gpu_autotune_level")


class TensorFlowAdapter(Adapter):
    framework = "tensorflow"

    def setup(self) -> dict[str, Any]:
        tf.config.threading.set_intra_op_parallelism_threads(self.threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        gpus = tf.config.list_physical_devices("GPU")
        if self.device == "auto":
            self.device = "cuda" if gpus else "cpu"
        if self.device == "cuda" and not gpus:
            raise SkipTrial("no GPU visible to TensorFlow")
        self.tf_device = "/GPU:0" if self.device == "cuda" else "/CPU:0"
        if self.precision.loss_scaling:
            raise SkipTrial(f"{self.numerics.precision} needs loss scaling, which TensorFlow has only as a Keras "
                            "optimizer wrapper (keras.optimizers.LossScaleOptimizer; keras:tensorflow runs it)")
        gpu_policies = apply_gpu_policies(self.numerics)
        self.compute, self.param_dtype = tf.as_dtype(self.precision.compute), tf.as_dtype(self.precision.params)
        if self.precision.mixed:
            mechanism = f"float32 variables cast to {self.precision.compute} in the forward pass; loss in float32"
        elif self.precision.reduced:
            mechanism = (f"variables, Adam's slots and beta powers in {self.precision.compute} (the fused optimizer "
                         "kernels' dtype is the variable's), inputs cast to it in the step; loss in float32")
        else:
            mechanism = "float32"
        return {
            "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
            "mode": "tf.function",
            "jit_compile": self.variant == "xla",
            **self.numerics.applied(mechanism, self.device, *gpu_policies),
        }

    def versions(self) -> dict[str, str]:
        return {"tensorflow": tf.__version__}

    def build(self, spec: WorkloadSpec, weights: Sequence[np.ndarray]) -> None:
        self.spec = spec
        with tf.device(self.tf_device):
            self.params = [tf.Variable(tf.cast(w, self.param_dtype), trainable=True) for w in weights]
            opt = spec.optimizer
            if opt.name == "adam":
                self.slots = [(tf.Variable(tf.zeros_like(p)), tf.Variable(tf.zeros_like(p))) for p in self.params]
                self.beta_powers = (tf.Variable(opt.beta1, dtype=self.param_dtype),
                                    tf.Variable(opt.beta2, dtype=self.param_dtype))
        self._step = tf.function(self._train_step, jit_compile=self.variant == "xla")
        signature = [tf.TensorSpec((None,) + tuple(spec.input_shape), tf.float32)]
        self._forward_eval = tf.function(lambda x: self._forward(x, training=False), input_signature=signature)
        self._last_loss = None

    def _forward(self, x: tf.Tensor, training: bool) -> tf.Tensor:
        """Logits in float32, computed in the precision's compute dtype."""
        params = iter([tf.cast(p, self.compute) for p in self.params])
        x = tf.cast(x, self.compute)
        for layer in self.spec.layers:
            if layer.kind == "dense":
                x = tf.matmul(x, next(params)) + next(params)
            elif layer.kind == "conv2d":
                x = tf.nn.bias_add(tf.nn.conv2d(x, next(params), strides=1, padding="VALID"), next(params))
            elif layer.kind == "maxpool":
                x = tf.nn.max_pool2d(x, ksize=layer.pool, strides=layer.pool, padding="VALID")
            elif layer.kind == "flatten":
                x = tf.reshape(x, [tf.shape(x)[0], -1])
            elif layer.kind == "dropout":
                x = tf.nn.dropout(x, rate=layer.rate) if training else x
            else:
                x = _ACTIVATIONS[layer.kind](x)
        return tf.cast(x, tf.float32)

    def _loss(self, logits: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
        if self.spec.loss == "softmax_cross_entropy":
            per_sample = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
        else:
            per_sample = tf.nn.sigmoid_cross_entropy_with_logits(labels=y, logits=logits[:, 0])
        return tf.reduce_mean(per_sample)

    def _train_step(self, x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss = self._loss(self._forward(x, training=True), y)
        grads = tape.gradient(loss, self.params)
        opt = self.spec.optimizer
        if opt.name == "adam":
            b1_power, b2_power = self.beta_powers
            for var, grad, (m, v) in zip(self.params, grads, self.slots):
                tf.raw_ops.ResourceApplyAdam(
                    var=var.handle, m=m.handle, v=v.handle, beta1_power=b1_power.read_value(),
                    beta2_power=b2_power.read_value(), lr=opt.learning_rate, beta1=opt.beta1,
                    beta2=opt.beta2, epsilon=opt.eps, grad=grad, use_locking=False)
            b1_power.assign(b1_power * opt.beta1)
            b2_power.assign(b2_power * opt.beta2)
        else:
            for var, grad in zip(self.params, grads):
                tf.raw_ops.ResourceApplyGradientDescent(var=var.handle, alpha=tf.cast(opt.learning_rate, var.dtype),
                                                        delta=grad)
        return loss

    def param_count(self) -> int:
        return int(sum(np.prod(v.shape) for v in self.params))

    def stage(self, x: np.ndarray, y: np.ndarray) -> None:
        with tf.device(self.tf_device):
            self.batches = [(tf.identity(xb), tf.identity(yb)) for xb, yb in split_batches(x, y, self.spec.batch_size)]
        if self.device == "cuda":
            tf.test.experimental.sync_devices()  # host-to-GPU copies are queued, not done
        self.n_batches = len(self.batches)

    def train_step(self, i: int) -> tf.Tensor:
        self._last_loss = self._step(*self.batches[i])
        return self._last_loss

    def synchronize(self) -> None:
        # A host read of the last result waits for everything queued before it.
        if self._last_loss is not None:
            self._last_loss.numpy()

    def loss_values(self, handles: Sequence[tf.Tensor]) -> list[float]:
        return [float(h.numpy()) for h in handles]

    def stage_inference(self, x: np.ndarray) -> dict[str, Any]:
        size = self.spec.batch_size
        with tf.device(self.tf_device):
            self.batches = [tf.identity(xb) for xb in split_inputs(x, size)]
        if self.device == "cuda":
            tf.test.experimental.sync_devices()
        self.n_batches = len(self.batches)
        signature = [tf.TensorSpec((size,) + tuple(self.spec.input_shape), tf.float32)]
        self._infer = tf.function(lambda x: self._forward(x, training=False), input_signature=signature,
                                  jit_compile=self.variant == "xla")
        return {"inference": f"tf.function of the forward pass{', jit_compile=True' if self.variant == 'xla' else ''}"}

    def infer(self, i: int) -> tf.Tensor:
        if self.device != "cuda":  # a device scope costs about 20 us a call (4% of a batch-1 call here)
            return self._infer(self.batches[i])
        with tf.device(self.tf_device):
            return self._infer(self.batches[i])

    def wait(self, handles: Sequence[tf.Tensor]) -> None:
        for handle in handles[-1:]:  # the device runs them in order: the last one done, all are
            handle.numpy()

    def outputs(self, handle: tf.Tensor) -> np.ndarray:
        return handle.numpy()

    def predict(self, x: np.ndarray) -> np.ndarray:
        with tf.device(self.tf_device):
            return self._forward_eval(tf.constant(x)).numpy()

    def device_memory_peak(self) -> int | None:
        if self.device != "cuda":
            return None
        return int(tf.config.experimental.get_memory_info("GPU:0")["peak"])
