"""MXNet 1.9 Gluon, imperative (variant "default") or hybridized with static_alloc and
static_shape (variant "hybrid", the cached static graph). Runs in its own environment (numpy < 1.24).

MXNet executes asynchronously on its engine threads; `mx.nd.waitall()` is the device barrier.

Precision through MXNet's AMP (`mxnet.contrib.amp`, initialised before the network is built):
mixed-bf16 on the CPU (oneDNN), mixed-fp16 with AMP's dynamic loss scaling on a GPU. Pure bf16 is
skipped (Gluon cannot cast parameters to bfloat16), as are float16 formats on a CPU (MXNet 1.9's
float16 dense layers run only with cuDNN) and bfloat16 on a GPU; pure fp16 on a GPU casts the
network (`net.cast`).
"""
from __future__ import annotations

import os
from typing import Any, Sequence

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon
from mxnet.gluon import nn

from adapters.base import (Adapter, SkipTrial, channels_first_weights, cpuinfo_field, hwio_to_oihw, split_batches,
                           split_inputs)
from workloads.spec import WorkloadSpec

AVX512_CORE = {"avx512f", "avx512bw", "avx512vl", "avx512dq"}


def _has_avx512_core() -> bool:
    """Whether this CPU has the AVX-512 subsets oneDNN's bfloat16 kernels need (Linux's flag names)."""
    flags = cpuinfo_field("flags")
    return flags is None or AVX512_CORE <= set(flags.split())  # no /proc/cpuinfo: let oneDNN answer for itself


class _FlattenHWC(nn.HybridBlock):
    """Flatten NCHW activations in (h, w, c) order, the spec's order, so shared weights fit."""

    def hybrid_forward(self, F, x):  # noqa: N803 - Gluon's signature
        return F.flatten(F.transpose(x, axes=(0, 2, 3, 1)))


def build_net(spec: WorkloadSpec, flatten_nchw: bool = False) -> nn.HybridSequential:
    """The spec's model; `flatten_nchw`: flatten activations as they lie, the next dense layer's
    kernel being reordered to match (adapters.base.channels_first_weights)."""
    net = nn.HybridSequential()
    with net.name_scope():
        for layer, shape_in in zip(spec.layers, spec.shapes()):
            if layer.kind == "dense":
                net.add(nn.Dense(layer.units, in_units=shape_in[0], flatten=True))
            elif layer.kind == "conv2d":
                net.add(nn.Conv2D(layer.filters, layer.kernel, in_channels=shape_in[-1], layout="NCHW"))
            elif layer.kind == "maxpool":
                net.add(nn.MaxPool2D(layer.pool))
            elif layer.kind == "flatten":
                net.add(nn.Flatten() if flatten_nchw else _FlattenHWC())
            elif layer.kind == "dropout":
                net.add(nn.Dropout(layer.rate))
            else:
                net.add(nn.Activation(layer.kind))
    return net


def load_weights(net: nn.HybridSequential, weights: Sequence[np.ndarray], ctx: mx.Context) -> None:
    net.initialize(mx.init.Zero(), ctx=ctx)
    it = iter(weights)
    for block in net:
        if isinstance(block, nn.Dense):
            block.weight.set_data(mx.nd.array(np.ascontiguousarray(next(it).T), ctx=ctx))
            block.bias.set_data(mx.nd.array(next(it), ctx=ctx))
        elif isinstance(block, nn.Conv2D):
            block.weight.set_data(mx.nd.array(hwio_to_oihw(next(it)), ctx=ctx))
            block.bias.set_data(mx.nd.array(next(it), ctx=ctx))


def _binary_cross_entropy(logits: mx.nd.NDArray, y: mx.nd.NDArray) -> mx.nd.NDArray:
    """Per-sample BCE from logits as softplus(z) - z*y. Gluon's SigmoidBinaryCrossEntropyLoss uses
    relu(z) - z*y + softplus(-|z|), whose gradient MXNet evaluates as 0 - y at exactly z = 0 (the
    derivatives of relu and abs there are taken as 0) instead of sigmoid(0) - y = 0.5 - y; XOR's
    (0, 0) point has z = 0 at the start, so its first update would differ from every other framework's."""
    return (mx.nd.Activation(logits, act_type="softrelu") - logits * y).mean(axis=1)


class MXNetAdapter(Adapter):
    framework = "mxnet"

    def setup(self) -> dict[str, Any]:
        gpus = mx.context.num_gpus()
        if self.device == "auto":
            self.device = "cuda" if gpus else "cpu"
        if self.device == "cuda" and not gpus:
            raise SkipTrial("no GPU visible to MXNet (or this MXNet build has no CUDA)")
        self.ctx = mx.gpu(0) if self.device == "cuda" else mx.cpu()
        mechanism = self._apply_precision()
        features = mx.runtime.Features()
        return {
            "mode": "hybridize(static_alloc=True, static_shape=True)" if self.variant == "hybrid"
                    else "imperative (not hybridized)",
            "intra_op_threads": int(os.environ.get("OMP_NUM_THREADS", "0")) or "OpenMP default",
            "engine": os.environ.get("MXNET_ENGINE_TYPE", "ThreadedEnginePerDevice"),
            "mkldnn": features.is_enabled("MKLDNN"),
            "blas": next((f for f in ("BLAS_MKL", "BLAS_OPEN", "BLAS_ATLAS", "BLAS_APPLE")
                          if features.is_enabled(f)), "none"),
            **self.numerics.applied(mechanism, self.device, "no switch of MXNet's own: NVIDIA_TF32_OVERRIDE=0 "
                                    "when off, the CUDA libraries' defaults when on", "MXNET_CUDNN_AUTOTUNE_DEFAULT"),
        }

    def _apply_precision(self) -> str:
        """Initialise AMP for a mixed precision (before any network exists); the mechanism, for the record."""
        p, self.amp = self.precision, None
        if not p.reduced:
            return "float32"
        if p.compute == "bfloat16" and not p.mixed:
            raise SkipTrial("MXNet 1.9's Gluon cannot cast parameters to bfloat16; only AMP's mixed bfloat16 "
                            "(mixed-bf16) is supported")
        if p.compute == "float16" and self.device != "cuda":
            raise SkipTrial("MXNet 1.9's float16 dense layers run only with cuDNN (on a GPU), not on a CPU")
        if p.compute == "bfloat16" and self.device == "cuda":
            raise SkipTrial("MXNet 1.9's bfloat16 AMP runs on oneDNN (the CPU); on a GPU its AMP has float16 only")
        if p.compute == "bfloat16" and not _has_avx512_core():
            raise SkipTrial("MXNet 1.9's oneDNN has bfloat16 kernels only for CPUs with AVX-512 (F, BW, VL, DQ); on "
                            "this CPU it cannot create them ('could not create a primitive descriptor iterator')")
        if p.mixed:
            from mxnet.contrib import amp
            amp.init(target_dtype=p.compute)
            self.amp = amp
            return (f"mxnet.contrib.amp.init(target_dtype={p.compute!r}): AMP's lists of {p.compute} and float32 "
                    "operators, float32 parameters" + (", amp.init_trainer (dynamic loss scaling)"
                                                       if p.loss_scaling else ""))
        return "net.cast('float16'), inputs in float16, Adam's multi_precision off"

    def versions(self) -> dict[str, str]:
        return {"mxnet": mx.__version__}

    def build(self, spec: WorkloadSpec, weights: Sequence[np.ndarray]) -> None:
        self.spec = spec
        self.channels_first = len(spec.input_shape) == 3
        weights, flatten_nchw = channels_first_weights(spec, weights)
        self.net = build_net(spec, flatten_nchw)
        load_weights(self.net, weights, self.ctx)
        self.input_dtype = "float32"
        if self.precision.reduced and not self.precision.mixed:
            self.net.cast(self.precision.compute)
            self.input_dtype = self.precision.compute
        if self.variant == "hybrid":
            self.net.hybridize(static_alloc=True, static_shape=True)
        opt = spec.optimizer
        if opt.name == "adam":
            # MXNet's Adam is the "epsilon-hat" form of the spec (bias correction folded into the
            # step size), the same as Keras and TensorFlow.
            self.trainer = gluon.Trainer(self.net.collect_params(), "adam", {
                "learning_rate": opt.learning_rate, "beta1": opt.beta1, "beta2": opt.beta2,
                "epsilon": opt.eps})
        else:
            self.trainer = gluon.Trainer(self.net.collect_params(), "sgd", {"learning_rate": opt.learning_rate})
        if self.precision.loss_scaling:
            self.amp.init_trainer(self.trainer)
        if spec.loss == "softmax_cross_entropy":
            self.loss_fn = gluon.loss.SoftmaxCrossEntropyLoss(sparse_label=True, from_logits=False)
        else:
            self.loss_fn = _binary_cross_entropy

    def param_count(self) -> int:
        return sum(int(np.prod(p.shape)) for p in self.net.collect_params().values() if p.grad_req != "null")

    def _inputs(self, x: np.ndarray) -> mx.nd.NDArray:
        if self.channels_first:
            x = x.transpose(0, 3, 1, 2)
        return mx.nd.array(np.ascontiguousarray(x), ctx=self.ctx, dtype=self.input_dtype)

    def stage(self, x: np.ndarray, y: np.ndarray) -> None:
        self.batches = [(self._inputs(xb), mx.nd.array(yb.reshape(len(yb), -1) if self.spec.loss ==
                                                       "binary_cross_entropy" else yb,
                                                       ctx=self.ctx, dtype="float32"))
                        for xb, yb in split_batches(x, y, self.spec.batch_size)]
        self.n_batches = len(self.batches)

    def train_step(self, i: int) -> mx.nd.NDArray:
        x, y = self.batches[i]
        with autograd.record():
            out = self.net(x)
            loss = self.loss_fn(out.astype("float32") if self.precision.reduced else out, y)
            if self.precision.loss_scaling:
                with self.amp.scale_loss(loss, self.trainer) as scaled:
                    autograd.backward(scaled)
        if not self.precision.loss_scaling:
            loss.backward()
        # Gluon losses are per sample; step(batch_size) divides the summed gradient by the batch
        # size, which makes the update that of the mean loss (what the other adapters minimise).
        self.trainer.step(self.spec.batch_size)
        # The per-sample losses, averaged only when read (untimed): a mean per step would be one
        # more operator in every timed step, which a plain Gluon loop does not run.
        return loss

    def synchronize(self) -> None:
        mx.nd.waitall()

    def loss_values(self, handles: Sequence[mx.nd.NDArray]) -> list[float]:
        if not handles:
            return []
        return mx.nd.stack(*handles).reshape((len(handles), -1)).mean(axis=1).asnumpy().astype(float).tolist()

    def stage_inference(self, x: np.ndarray) -> dict[str, Any]:
        size = self.spec.batch_size
        self.batches = [self._inputs(xb) for xb in split_inputs(x, size)]
        self.n_batches = len(self.batches)
        mx.nd.waitall()
        mode = "hybridized (static_alloc, static_shape)" if self.variant == "hybrid" else "imperative"
        return {"inference": f"net(x) outside autograd.record (predict mode), {mode}"}

    def infer(self, i: int) -> mx.nd.NDArray:
        return self.net(self.batches[i])

    def outputs(self, handle: mx.nd.NDArray) -> np.ndarray:
        return handle.astype("float32").asnumpy()

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.net(self._inputs(x)).astype("float32").asnumpy()

    def device_memory_peak(self) -> int | None:
        # MXNet keeps no peak counter; what its pooled allocator holds at the end (total - free)
        # is the closest figure it exposes, and with the pool it is the high-water mark.
        if self.device != "cuda":
            return None
        free, total = mx.context.gpu_memory_info(0)
        return int(total - free)
