"""Timing shared by the benchmark scripts: medians, because the machines are shared and noisy."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_seconds(fn: Callable[[], object], repeats: int, calls: int = 1, warmup: bool = True) -> float:
    """Median over `repeats` of the time per call of `calls` back-to-back calls of `fn`."""
    if warmup:
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - t0) / calls)
    return statistics.median(times)
