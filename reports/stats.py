"""Statistics on raw samples: medians with bootstrap confidence intervals that respect how the
samples were taken.

Throughput samples are timed blocks in the order they ran, in one or more processes (repeats).
On a shared machine neighbouring blocks are alike (a slow spell lasts seconds) and whole processes
differ from each other, so resampling blocks one by one would give intervals far too narrow. The
bootstrap here is hierarchical: processes are drawn with replacement, then, within each, runs of
contiguous blocks (a circular block bootstrap). With a single process only the within-run spread
can be seen; `--repeats` makes the between-process spread part of the interval.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

BOOTSTRAP_RESAMPLES = 2000

Sequences = Sequence[Sequence[float]]  # per process, its samples in time order


def block_length(n: int) -> int:
    """How many neighbouring samples are resampled together: about sqrt(n), longer than the usual
    n^(1/3) because slow spells on a shared machine span many 0.2 s blocks."""
    return max(1, math.ceil(math.sqrt(n)))


def _as_sequences(samples: np.ndarray | Sequences) -> list[np.ndarray]:
    """A flat array is one process's samples; a list of sequences is one per process."""
    if isinstance(samples, np.ndarray) and samples.ndim == 1:
        parts = [samples]
    elif len(samples) and np.isscalar(samples[0]):
        parts = [np.asarray(samples)]
    else:
        parts = [np.asarray(s) for s in samples]
    return [p.astype(float) for p in parts if p.size]


def _block_resamples(values: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(resamples, n) circular block-bootstrap resamples of one time-ordered sequence."""
    n = values.size
    length = block_length(n)
    starts = rng.integers(0, n, size=(resamples, math.ceil(n / length)))
    index = (starts[:, :, None] + np.arange(length)) % n
    return values[index.reshape(resamples, -1)[:, :n]]


def bootstrap_medians(samples: np.ndarray | Sequences, resamples: int = BOOTSTRAP_RESAMPLES,
                      seed: int = 0) -> np.ndarray:
    """Medians of hierarchical bootstrap resamples (see the module's docstring)."""
    parts = _as_sequences(samples)
    rng = np.random.default_rng(seed)
    drawn = [_block_resamples(p, resamples, rng) for p in parts]
    if len(drawn) == 1:
        return np.median(drawn[0], axis=1)
    picks = rng.integers(0, len(drawn), size=(resamples, len(drawn)))
    return np.array([np.median(np.concatenate([drawn[p][r] for p in picks[r]])) for r in range(resamples)])


def median_ci(samples: np.ndarray | Sequences, confidence: float = 0.95, resamples: int = BOOTSTRAP_RESAMPLES,
              seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of the median (seeded, so reports are stable)."""
    parts = _as_sequences(samples)
    total = sum(p.size for p in parts)
    if total == 0:
        return (float("nan"), float("nan"))
    if total == 1:
        return (float(parts[0][0]),) * 2
    alpha = (1 - confidence) / 2
    low, high = np.quantile(bootstrap_medians(parts, resamples, seed), [alpha, 1 - alpha])
    return float(low), float(high)


def segment_means(samples: np.ndarray | Sequences) -> np.ndarray:
    """Each process's samples cut into runs of `block_length` neighbours, one mean per run: values
    close enough to independent for a rank test (batch means)."""
    out = []
    for part in _as_sequences(samples):
        length = block_length(part.size)
        out += [float(part[i:i + length].mean()) for i in range(0, part.size, length)]
    return np.array(out)
