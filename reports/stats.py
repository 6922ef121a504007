"""Statistics on raw samples: medians with their spread and bootstrap confidence intervals."""
from __future__ import annotations

import numpy as np

BOOTSTRAP_RESAMPLES = 2000


def median_ci(samples: np.ndarray, confidence: float = 0.95, resamples: int = BOOTSTRAP_RESAMPLES,
              seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of the median (seeded, so reports are stable)."""
    samples = np.asarray(samples, dtype=float)
    if samples.size == 0:
        return (float("nan"), float("nan"))
    if samples.size == 1:
        return (float(samples[0]), float(samples[0]))
    rng = np.random.default_rng(seed)
    medians = np.median(rng.choice(samples, size=(resamples, samples.size), replace=True), axis=1)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(medians, [alpha, 1 - alpha])
    return float(low), float(high)
