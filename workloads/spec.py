"""Framework-neutral description of a workload.

A workload is data: its layers, loss, optimizer, batch size and epochs per profile. Adapters
translate the layer kinds into native layers; the initial weights come from NumPy here, so every
framework starts from the same point. This module needs only NumPy (it runs in every child
environment, including the old-NumPy ones).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from workloads.profiles import PROFILES

ACTIVATIONS = ("relu", "sigmoid", "tanh")
LAYER_KINDS = ("dense", "conv2d", "maxpool", "flatten", *ACTIVATIONS, "dropout")
LOSSES = ("softmax_cross_entropy", "binary_cross_entropy")
OPTIMIZERS = ("sgd", "adam")


@dataclass(frozen=True)
class Layer:
    """One layer. `units` for dense, `filters`/`kernel` for conv2d (stride 1, valid padding),
    `pool` for maxpool (stride = pool), `rate` for dropout."""

    kind: str
    units: int = 0
    filters: int = 0
    kernel: int = 0
    pool: int = 0
    rate: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in LAYER_KINDS:
            raise ValueError(f"unknown layer kind {self.kind!r}; choose from: {', '.join(LAYER_KINDS)}")

    @property
    def has_weights(self) -> bool:
        return self.kind in ("dense", "conv2d")


def dense(units: int) -> Layer:
    return Layer("dense", units=units)


def conv2d(filters: int, kernel: int) -> Layer:
    return Layer("conv2d", filters=filters, kernel=kernel)


def maxpool(pool: int) -> Layer:
    return Layer("maxpool", pool=pool)


def act(kind: str) -> Layer:
    return Layer(kind)


@dataclass(frozen=True)
class Optimizer:
    """Hyperparameters shared by every adapter. Adam uses the "epsilon-hat" form of Kingma & Ba
    (as TensorFlow and Keras do); eps is set explicitly so that no framework default leaks in."""

    name: str
    learning_rate: float
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-7

    def __post_init__(self) -> None:
        if self.name not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.name!r}; choose from: {', '.join(OPTIMIZERS)}")


@dataclass(frozen=True)
class WorkloadSpec:
    """A model, its training recipe and its data, once for all frameworks.

    Layout conventions (the adapters translate): images are NHWC float32 in [0, 1]; dense weights
    are (in, out); conv weights are (kh, kw, in, out); flatten flattens in (h, w, c) order. The
    last layer emits logits; `output` names the function that turns them into probabilities and
    the loss is computed from the logits.
    """

    name: str
    description: str
    dataset: str  # "xor" or "image" (the image workloads take the dataset as an axis)
    input_shape: tuple[int, ...]
    classes: int
    layers: tuple[Layer, ...]
    loss: str
    output: str  # "softmax" or "sigmoid"
    optimizer: Optimizer
    batch_size: int
    epochs: Mapping[str, int]
    target_accuracy: Mapping[str, float]  # per dataset
    train_samples: Mapping[str, int | None] = field(default_factory=dict)  # per profile; None = all
    test_samples: Mapping[str, int | None] = field(default_factory=dict)
    shuffle: bool = True
    eval_every_steps: int | None = None  # until the target is reached; None: evals_per_epoch
    evals_per_epoch: int = 1  # evaluation points per epoch (untimed), for time-to-accuracy
    latency_steps: int = 0  # after training, this many steps timed one by one (short steps only)
    datasets: tuple[str, ...] = ()
    # The width axis of a sweep (`--width`): which hidden layers it sizes ("dense": units,
    # "conv2d": filters; the output layer never) and what a width names, the size of the widest of
    # them (the others keep their proportion). None: the workload has one shape.
    width_layers: str | None = None
    # The batch-size axis (`--batch-size`): False where the batch is the whole dataset (XOR).
    batch_axis: bool = True

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; choose from: {', '.join(LOSSES)}")
        missing = [p for p in PROFILES if p not in self.epochs]
        if missing:
            raise ValueError(f"workload {self.name!r} has no epochs for profile(s) {missing}")

    # ---- sweep axes --------------------------------------------------------------------------
    @property
    def width(self) -> int | None:
        """The size the width axis names for this spec (None where it has no width axis)."""
        sizes = [self.layers[i].units or self.layers[i].filters for i in self._width_layer_indices()]
        return max(sizes) if sizes else None

    def _width_layer_indices(self) -> list[int]:
        """The layers the width axis sizes: those of kind `width_layers`, the output layer excepted."""
        if not self.width_layers:
            return []
        last_weighted = max(i for i, layer in enumerate(self.layers) if layer.has_weights)
        return [i for i, layer in enumerate(self.layers) if layer.kind == self.width_layers and i != last_weighted]

    def resized(self, width: int | None = None, batch_size: int | None = None) -> "WorkloadSpec":
        """This workload at another width and/or batch size (None keeps it): the same recipe, with
        the layer sizes, parameter counts, FLOPs and initial weights that follow from the new shape."""
        spec = self
        if batch_size is not None and batch_size != self.batch_size:
            if batch_size < 1 or not self.batch_axis:
                raise ValueError(f"workload {self.name!r} cannot take batch size {batch_size}"
                                 + ("" if self.batch_axis else ": its batch is the whole dataset"))
            spec = dataclasses.replace(spec, batch_size=batch_size)
        if width is not None and width != self.width:
            if not self.width_layers or width < 1:
                raise ValueError(f"workload {self.name!r} cannot take width {width}"
                                 + ("" if self.width_layers else ": it has no width axis"))
            base, layers = self.width, list(self.layers)
            for i in self._width_layer_indices():
                size = max(1, round((layers[i].units or layers[i].filters) * width / base))
                layers[i] = dataclasses.replace(layers[i], **{"units" if layers[i].kind == "dense" else "filters": size})
            spec = dataclasses.replace(spec, layers=tuple(layers))
        return spec

    # ---- shapes and sizes -------------------------------------------------------------------
    @property
    def has_dropout(self) -> bool:
        """Whether training draws random masks (frameworks without layer objects then need a
        random state and a training graph apart from prediction's)."""
        return any(layer.kind == "dropout" and layer.rate > 0 for layer in self.layers)

    def shapes(self) -> list[tuple[int, ...]]:
        """Activation shape (without batch) after each layer, starting with the input."""
        shape = tuple(self.input_shape)
        out = [shape]
        for layer in self.layers:
            if layer.kind == "dense":
                if len(shape) != 1:
                    raise ValueError(f"{self.name}: dense layer needs a flat input, got {shape}")
                shape = (layer.units,)
            elif layer.kind == "conv2d":
                h, w, _ = shape
                shape = (h - layer.kernel + 1, w - layer.kernel + 1, layer.filters)
            elif layer.kind == "maxpool":
                h, w, c = shape
                shape = (h // layer.pool, w // layer.pool, c)
            elif layer.kind == "flatten":
                shape = (math.prod(shape),)
            out.append(shape)
        return out

    def weight_shapes(self) -> list[tuple[int, ...]]:
        """Shapes of the parameter arrays, in layer order: (kernel, bias) per weighted layer."""
        result: list[tuple[int, ...]] = []
        for layer, shape_in in zip(self.layers, self.shapes()):
            if layer.kind == "dense":
                result += [(shape_in[0], layer.units), (layer.units,)]
            elif layer.kind == "conv2d":
                result += [(layer.kernel, layer.kernel, shape_in[-1], layer.filters), (layer.filters,)]
        return result

    def param_count(self) -> int:
        return sum(math.prod(s) for s in self.weight_shapes())

    def multiply_adds(self) -> list[int]:
        """Multiply-accumulates per sample of each dense/conv layer's forward pass, in order."""
        macs = []
        for layer, shape_in, shape_out in zip(self.layers, self.shapes(), self.shapes()[1:]):
            if layer.kind == "dense":
                macs.append(shape_in[0] * layer.units)
            elif layer.kind == "conv2d":
                macs.append(math.prod(shape_out) * layer.kernel * layer.kernel * shape_in[-1])
        return macs

    def forward_flops(self) -> int:
        """Forward FLOPs per sample: 2 per multiply-accumulate of dense and conv layers. Biases,
        activations, pooling and the loss are left out (a few percent at most here)."""
        return 2 * sum(self.multiply_adds())

    def train_flops(self) -> int:
        """FLOPs per training sample: forward, plus the weight gradients (as much again) and the
        input gradients (as much again, except for the first layer, whose input needs none)."""
        macs = self.multiply_adds()
        return 2 * (3 * sum(macs) - macs[0])

    def init_weights(self, seed: int) -> list[np.ndarray]:
        """Glorot-uniform kernels and zero biases, float32, made by NumPy from the seed."""
        rng = np.random.default_rng(seed)
        weights = []
        for shape in self.weight_shapes():
            if len(shape) == 1:
                weights.append(np.zeros(shape, dtype=np.float32))
                continue
            receptive = math.prod(shape[:-2])
            fan_in, fan_out = shape[-2] * receptive, shape[-1] * receptive
            limit = math.sqrt(6.0 / (fan_in + fan_out))
            weights.append(rng.uniform(-limit, limit, size=shape).astype(np.float32))
        return weights

    def target_for(self, dataset: str) -> float:
        try:
            return self.target_accuracy[dataset]
        except KeyError:
            raise ValueError(
                f"workload {self.name!r} has no target for dataset {dataset!r}; "
                f"choose from: {', '.join(self.target_accuracy)}"
            ) from None


def batch_order(seed: int, epoch: int, n: int, shuffle: bool = True) -> np.ndarray:
    """The sample order of one epoch, made by the harness and followed by every adapter."""
    if not shuffle:
        return np.arange(n)
    return np.random.default_rng([seed, epoch]).permutation(n)
