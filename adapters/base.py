"""The one interface every framework adapter implements. Imports no framework.

The harness drives an adapter like this (and times it, never the adapter itself):

    adapter = Adapter(variant, device, threads, numerics)
    adapter.setup()                      # import the framework, apply threads, device and numerics
    adapter.build(spec, weights)         # native model from the spec, loaded with `weights`
    for each epoch:
        adapter.unstage()                # untimed: drop the last epoch's batches
        adapter.stage(x, y)              # untimed: this epoch's batches, in the harness's order
        synchronize(); clock; for i in block: handle = adapter.train_step(i); synchronize(); clock
        adapter.loss_values(handles)     # untimed: losses as floats
        adapter.predict(x_test)          # untimed: logits for evaluation

and, for the inference scenario, instead of training:

    adapter.stage_inference(x)           # untimed: input batches on the device, model in inference mode
    synchronize(); clock; handles = adapter.infer_block(first, n); adapter.wait(handles); clock
    adapter.outputs(adapter.infer(i))    # one call at a time (latency), outputs copied to the host
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Sequence

import numpy as np

from adapters.numerics import Numerics
from workloads.spec import WorkloadSpec


class SkipTrial(Exception):
    """This framework cannot run this trial here (no GPU, unsupported combination)."""


class Adapter(ABC):
    framework: ClassVar[str]

    def __init__(self, variant: str, device: str, threads: int, numerics: Numerics = Numerics()) -> None:
        self.variant = variant
        self.device = device  # "cpu", "cuda" or "auto"; setup() resolves "auto"
        self.threads = threads
        self.numerics = numerics  # precision, TF32 and autotuning (adapters.numerics)
        self.precision = numerics.format
        self.n_batches = 0

    @abstractmethod
    def setup(self) -> dict[str, Any]:
        """Import the framework, apply thread settings, resolve the device (raise SkipTrial if it
        is not there), apply the numerics (raise SkipTrial for a precision the framework cannot do,
        with the reason). Return the settings that were applied, for the record, including
        `self.numerics.applied(...)`."""

    @abstractmethod
    def versions(self) -> dict[str, str]:
        """Versions of the framework packages in use (called after setup)."""

    @abstractmethod
    def build(self, spec: WorkloadSpec, weights: Sequence[np.ndarray]) -> dict[str, Any] | None:
        """Build the model and optimizer from the spec and load `weights` (spec layout). May
        return settings only known once built (a resolved jit mode), for the record."""

    @abstractmethod
    def param_count(self) -> int:
        """Trainable parameters as the framework counts them."""

    @abstractmethod
    def stage(self, x: np.ndarray, y: np.ndarray) -> None:
        """Place one epoch of samples, already in the harness's order, on the device as
        `self.n_batches` full batches (a trailing partial batch is dropped). Returns only when
        the copies are done: an asynchronous transfer would be paid by the first timed block."""

    def unstage(self) -> None:
        """Drop the staged batches (before the next epoch's are made, so two are never alive)."""
        self.batches: list = []
        self.n_batches = 0

    @abstractmethod
    def train_step(self, i: int) -> Any:
        """One optimizer step on staged batch `i`; returns a handle to the loss (not a float,
        so that no device sync is forced)."""

    @abstractmethod
    def synchronize(self) -> None:
        """Block until all queued device work is done (the harness calls it around the clock)."""

    @abstractmethod
    def loss_values(self, handles: Sequence[Any]) -> list[float]:
        """Loss handles from train_step as Python floats."""

    @abstractmethod
    def predict(self, x: np.ndarray) -> np.ndarray:
        """Logits (float32 NumPy) for a batch of inputs, in inference mode."""

    @abstractmethod
    def stage_inference(self, x: np.ndarray) -> dict[str, Any] | None:
        """Place inputs on the device as `self.n_batches` batches of the spec's batch size for
        `infer`, and put the model in the framework's inference path. Returns that path's settings
        for the record (e.g. {"inference": "eval() + torch.inference_mode"})."""

    @abstractmethod
    def infer(self, i: int) -> Any:
        """The model's outputs for staged inference batch `i`, on the framework's inference path,
        left where the framework leaves them (no host copy, no sync forced)."""

    def infer_block(self, first: int, n: int) -> list[Any]:
        """`n` calls on consecutive staged batches from `first` (wrapping around); a framework whose
        users predict many batches in one call overrides this with that call."""
        return [self.infer((first + k) % self.n_batches) for k in range(n)]

    def wait(self, handles: Sequence[Any]) -> None:
        """Block until these outputs of `infer` are computed."""
        self.synchronize()

    def outputs(self, handle: Any) -> np.ndarray:
        """An `infer` result as a float32 NumPy array on the host."""
        return np.asarray(handle, dtype=np.float32)

    def device_memory_peak(self) -> int | None:
        """Peak device memory in bytes where the framework tracks it (GPU), else None."""
        return None


def split_batches(x: np.ndarray, y: np.ndarray, batch_size: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Full batches of an epoch, in order; the trailing partial batch is dropped so that every
    step has the same shape (what compiled and traced paths need)."""
    n = len(x) // batch_size
    return [(x[i * batch_size:(i + 1) * batch_size], y[i * batch_size:(i + 1) * batch_size]) for i in range(n)]


def split_inputs(x: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Full batches of inputs (views), in order; a trailing partial batch is dropped (inference)."""
    return [x[i:i + batch_size] for i in range(0, len(x) - batch_size + 1, batch_size)]


def channels_first_weights(spec: WorkloadSpec, weights: Sequence[np.ndarray]) -> tuple[list[np.ndarray], bool]:
    """For adapters that keep images NCHW (MXNet, Theano): the spec's weights with the kernel of the dense layer
    that a flatten feeds (through elementwise layers only) reordered from the spec's (h, w, c) rows
    to (c, h, w), so that the adapter flattens its NCHW activations as they lie, as its users'
    models do, instead of transposing them in every step. The same arithmetic, done once at build.
    Returns (weights, whether the model should flatten NCHW directly); a model whose flatten feeds
    no dense layer (a prefix model of the equivalence probe) keeps the spec's order."""
    out, index, flat_shape = list(weights), 0, None
    for layer, shape_in in zip(spec.layers, spec.shapes()):
        if layer.kind == "flatten":
            flat_shape = shape_in
        elif layer.kind == "dense" and flat_shape is not None:
            h, w, c = flat_shape
            out[index] = np.ascontiguousarray(out[index].reshape(h, w, c, -1).transpose(2, 0, 1, 3).reshape(h * w * c, -1))
            return out, True
        elif layer.has_weights:
            flat_shape = None
        index += 2 if layer.has_weights else 0
    return out, False


def hwio_to_oihw(kernel: np.ndarray) -> np.ndarray:
    """Conv kernel from the spec's (kh, kw, in, out) layout to (out, in, kh, kw)."""
    return np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))


def cpuinfo_field(name: str) -> str | None:
    """The first `name : value` of /proc/cpuinfo ("model name", "flags"), or None where there is none."""
    try:
        with open("/proc/cpuinfo") as fh:
            return next((line.split(":", 1)[1].strip() for line in fh if line.split(":", 1)[0].strip() == name), None)
    except OSError:
        return None
