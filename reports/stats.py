"""Statistics on raw samples: medians with bootstrap confidence intervals that respect how the
samples were taken.

Throughput samples are timed blocks in the order they ran, in one or more processes (repeats).
On a shared machine neighbouring blocks are alike (a slow spell lasts seconds) and whole processes
differ from each other, so resampling blocks one by one would give intervals far too narrow. The
bootstrap here is hierarchical: processes are drawn with replacement, then, within each, runs of
contiguous blocks (a circular block bootstrap). With a single process only the within-run spread
can be seen; `--repeats` makes the between-process spread part of the interval.

With a few processes the bootstrap sees too little of that spread (three processes make only ten
distinct draws), so with repeats the interval is widened to at least the Student-t interval of the
processes' medians, their spread pooled over all trials of the run (`Noise`): the model that
`reports.compare` tests with.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
from scipy.stats import t as student_t

BOOTSTRAP_RESAMPLES = 2000
PRIOR_DF = 4  # the most the pooled between-process spread weighs against a trial's own

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
    padded = np.full((len(drawn), resamples, max(d.shape[1] for d in drawn)), np.nan)
    for p, d in enumerate(drawn):
        padded[p, :, :d.shape[1]] = d
    rows = np.arange(resamples)
    return np.nanmedian(np.concatenate([padded[picks[:, j], rows] for j in range(len(drawn))], axis=1), axis=1)


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


@dataclass(frozen=True)
class Noise:
    """The between-process spread of a metric's log values, pooled over trials."""
    sd: float | None  # None when it cannot be seen (df 0)
    df: int
    groups: int  # trials (or trial-sides) with more than one process


def process_logs(processes: Sequence[Sequence[float]]) -> np.ndarray | None:
    """Log of each process's value (its median sample); None when a value is not positive."""
    values = np.array([np.median(p) for p in processes], float)
    return np.log(values) if values.size and np.all(values > 0) else None


def pooled_spread(groups: Iterable[np.ndarray | None]) -> Noise:
    """The spread of each group's log values around the group's mean, pooled over the groups that
    have two or more (None: a group with nothing to give)."""
    squares, df, count = 0.0, 0, 0
    for logs in groups:
        if logs is not None and logs.size > 1:
            squares += float(((logs - logs.mean()) ** 2).sum())
            df, count = df + logs.size - 1, count + 1
    return Noise(float(np.sqrt(squares / df)) if df else None, df, count)


def pooled_noise(groups: Sequence[Sequence[Sequence[float]]]) -> Noise:
    """The spread of process medians around their trial's mean, pooled over `groups` (one list of
    processes per trial)."""
    return pooled_spread(process_logs(processes) for processes in groups)


def paired_noise(pairs: Iterable[tuple[np.ndarray | None, np.ndarray | None]]) -> Noise:
    """The spread of per-repeat log ratios (current minus base log values of processes that ran side
    by side) around their trial's mean, pooled over trials."""
    return pooled_spread(lc - lb if lb is not None and lc is not None and lb.size == lc.size else None
                         for lb, lc in pairs)


def moderated_sd(own_squares: float, own_df: int, noise: Noise) -> tuple[float, int] | None:
    """A trial's between-process spread moderated by the pooled one (weighted by degrees of
    freedom, the pooled one counting as at most PRIOR_DF): a trial noisier than the rest is judged
    by its own noise, one without repeats by everyone's. (sd, df), or None when nothing is seen."""
    prior_df = min(PRIOR_DF, noise.df)
    df = prior_df + own_df
    if not df:
        return None
    return float(np.sqrt((prior_df * (noise.sd or 0.0) ** 2 + own_squares) / df)), df


def process_interval(processes: Sequence[Sequence[float]], noise: Noise,
                     confidence: float = 0.95) -> tuple[float, float] | None:
    """Student-t interval of the geometric mean of the processes' medians, with the moderated
    spread; None without any between-process spread to go on."""
    logs = process_logs(processes)
    if logs is None:
        return None
    spread = moderated_sd(float(((logs - logs.mean()) ** 2).sum()), logs.size - 1, noise)
    if spread is None:
        return None
    sd, df = spread
    half = float(student_t.ppf(0.5 + confidence / 2, df)) * sd / math.sqrt(logs.size)
    return float(np.exp(logs.mean() - half)), float(np.exp(logs.mean() + half))
