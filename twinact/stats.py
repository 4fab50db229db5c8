"""Intervals reported with every number: mean and 95% t-interval over independent units."""

from __future__ import annotations

import math

from scipy.stats import t


def mean_ci95(values: list[float]) -> tuple[float, float]:
    """Mean and half-width of the 95% t-interval (0 for one value)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, 0.0
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return mean, float(t.ppf(0.975, n - 1) * std / math.sqrt(n))
