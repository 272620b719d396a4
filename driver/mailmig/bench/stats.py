"""Latency summaries: percentiles by the nearest-rank method, in milliseconds."""

from __future__ import annotations

import math
from typing import Iterable


def percentile(sorted_values: list[float], p: float) -> float | None:
    """The nearest-rank p-th percentile of already sorted values (None when empty)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def summarize(seconds: Iterable[float]) -> dict:
    """n, p50/p95/p99/max and mean of latencies given in seconds, reported in ms."""
    values = sorted(seconds)
    out = {"n": len(values)}
    for name, p in (("p50_ms", 50), ("p95_ms", 95), ("p99_ms", 99)):
        value = percentile(values, p)
        out[name] = None if value is None else round(value * 1000, 3)
    out["max_ms"] = round(values[-1] * 1000, 3) if values else None
    out["mean_ms"] = round(sum(values) / len(values) * 1000, 3) if values else None
    return out


def ratio(sqlite_value: float | None, postgres_value: float | None) -> float | None:
    """SQLite's figure over PostgreSQL's: above 1 means PostgreSQL's is smaller."""
    if sqlite_value is None or postgres_value is None or postgres_value == 0:
        return None
    return round(sqlite_value / postgres_value, 2)
