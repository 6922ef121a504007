"""The NumPy reference of a workload's model: forward pass and loss, straight from the spec's
layouts (NHWC, dense (in, out), conv (kh, kw, in, out)), in float64 so that it is the exact side
of every float32 comparison. Also the fixed batch the equivalence checks use.

NumPy only (runs in every environment); slow and plain on purpose: it is read, not timed.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from workloads.spec import Layer, WorkloadSpec

# How far a framework's forward output may be from this reference: relative to the largest
# reference value (at least 1); float32 rounding of these models stays far below it.
FORWARD_TOLERANCE = 1e-4
XOR_POINTS = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
XOR_LABELS = np.array([0, 1, 1, 0], dtype=np.float32)


def probe_batches(spec: WorkloadSpec, seed: int, count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """`count` fixed training batches: the four XOR points, or uniform [0, 1) images with random labels."""
    if spec.dataset == "xor":
        return [(XOR_POINTS, XOR_LABELS)] * count
    rng = np.random.default_rng([seed, 7])
    n = spec.batch_size
    return [(rng.random((n, *spec.input_shape), dtype=np.float32),
             rng.integers(0, spec.classes, n).astype(np.int64)) for _ in range(count)]


def forward_batch(spec: WorkloadSpec, seed: int) -> np.ndarray:
    """A fixed batch of inputs for forward comparisons, other than the training ones."""
    if spec.dataset == "xor":
        return XOR_POINTS
    return np.random.default_rng([seed, 11]).random((spec.batch_size, *spec.input_shape), dtype=np.float32)


def _conv2d(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Valid, stride-1 cross-correlation of NHWC input with an HWIO kernel."""
    kh, kw = kernel.shape[:2]
    n, h, w, _ = x.shape
    out = np.zeros((n, h - kh + 1, w - kw + 1, kernel.shape[3]))
    for i in range(kh):
        for j in range(kw):
            out += x[:, i:i + out.shape[1], j:j + out.shape[2], :] @ kernel[i, j]
    return out + bias


def _maxpool(x: np.ndarray, pool: int) -> np.ndarray:
    n, h, w, c = x.shape
    h, w = h // pool * pool, w // pool * pool
    return x[:, :h, :w].reshape(n, h // pool, pool, w // pool, pool, c).max(axis=(2, 4))


def apply_layer(layer: Layer, x: np.ndarray, params: list[np.ndarray]) -> np.ndarray:
    if layer.kind == "dense":
        return x @ params[0] + params[1]
    if layer.kind == "conv2d":
        return _conv2d(x, params[0], params[1])
    if layer.kind == "maxpool":
        return _maxpool(x, layer.pool)
    if layer.kind == "flatten":
        return x.reshape(len(x), -1)  # NHWC: (h, w, c) order
    if layer.kind == "relu":
        return np.maximum(x, 0)
    if layer.kind == "tanh":
        return np.tanh(x)
    if layer.kind == "sigmoid":
        return 1 / (1 + np.exp(-x))
    if layer.kind == "dropout":
        return x  # inference
    raise ValueError(f"no reference for layer kind {layer.kind!r}")


def activations(spec: WorkloadSpec, weights: Sequence[np.ndarray], x: np.ndarray) -> list[np.ndarray]:
    """The output of every layer (float64), in order; the last one is the logits."""
    out, it, h = [], iter(weights), np.asarray(x, dtype=np.float64)
    for layer in spec.layers:
        params = [np.asarray(next(it), np.float64) for _ in range(2)] if layer.has_weights else []
        h = apply_layer(layer, h, params)
        out.append(h)
    return out


def forward(spec: WorkloadSpec, weights: Sequence[np.ndarray], x: np.ndarray) -> np.ndarray:
    return activations(spec, weights, x)[-1]


def relative_error(expected: np.ndarray, got: np.ndarray) -> float:
    """A framework's outputs `got` against this reference's `expected`: the largest difference,
    relative to the largest reference value (at least 1); compare with FORWARD_TOLERANCE."""
    return float(np.max(np.abs(np.asarray(got, np.float64) - expected)) / max(1.0, float(np.max(np.abs(expected)))))


def loss(spec: WorkloadSpec, logits: np.ndarray, y: np.ndarray) -> float:
    """Mean loss from logits, in the stable forms every adapter uses."""
    if spec.loss == "softmax_cross_entropy":
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        return float(-log_probs[np.arange(len(y)), y.astype(int)].mean())
    z = logits[:, 0]
    return float((np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))).mean())


def prefix(spec: WorkloadSpec, layers: int) -> WorkloadSpec:
    """The spec cut after its first `layers` layers, with a flatten appended when the cut ends on
    an image, so that every adapter returns that layer's output flat, in (h, w, c) order."""
    import dataclasses

    kept = spec.layers[:layers]
    shape = spec.shapes()[layers]
    if len(shape) > 1:
        kept += (Layer("flatten"),)
    return dataclasses.replace(spec, name=f"{spec.name}[:{layers}]", layers=kept)


def weights_for(spec: WorkloadSpec, weights: Sequence[np.ndarray], layers: int) -> list[np.ndarray]:
    """The arrays of the first `layers` layers."""
    count = 2 * sum(layer.has_weights for layer in spec.layers[:layers])
    return list(weights[:count])
