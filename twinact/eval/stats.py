"""Intervals reported with every number: mean and 95% interval over independent replicates (t, or
bootstrap)."""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import t


def mean_ci95(values: list[float]) -> tuple[float, float]:
    """Mean and half-width of the 95% t-interval (0 for one value)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, 0.0
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return mean, float(t.ppf(0.975, n - 1) * std / math.sqrt(n))


def bootstrap_ci95(values: list[float], reps: int = 10_000, seed: int = 0) -> tuple[float, tuple[float, float]]:
    """Mean and the 95% percentile-bootstrap interval over independent replicates (``reps`` resamples of them,
    with replacement).

    For paired comparisons pass the per-replicate differences (method A minus method B on the same replicate):
    unlike a t-interval it does not assume the differences are normal, which bounded scores near 0 or 1 are not.
    """
    x = np.asarray(values, dtype=np.float64)
    if len(x) < 2:
        return float(x.mean()), (float(x.mean()), float(x.mean()))
    means = x[np.random.default_rng(seed).integers(0, len(x), size=(reps, len(x)))].mean(1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(x.mean()), (float(low), float(high))
