"""Summaries of measured values: percentiles the way the reports read them."""

from __future__ import annotations

import math
import statistics


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100), linear between the closest ranks; NaN if empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary(values: list[float]) -> dict[str, float]:
    """Count, p50, p95, mean, min and max of ``values`` (NaN where there are none)."""
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "mean": statistics.fmean(values) if values else math.nan,
        "min": min(values) if values else math.nan,
        "max": max(values) if values else math.nan,
    }


def ratio(a: float, b: float) -> float:
    """``a / b``, NaN when either is missing or ``b`` is zero."""
    if math.isnan(a) or math.isnan(b) or b == 0:
        return math.nan
    return a / b
