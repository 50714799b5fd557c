"""Baseline schedules: keep-all, recompute-all and Chen et al.'s sqrt segmentation."""

from __future__ import annotations

import math

from .model import Chain
from .simulator import Op, OpKind, Schedule


# ---------------------------------------------------------------------------------------------
# Baselines


def keep_all(chain: Chain) -> Schedule:
    """Record every tape in one forward, then back-propagate: no recompute, the most memory."""
    L = chain.length
    return Schedule([Op(OpKind.FALL, i) for i in range(1, L + 1)] + [Op(OpKind.B, i) for i in range(L, 0, -1)])


def recompute_all(chain: Chain) -> Schedule:
    """Keep only the input: before each B_k sweep from a_0 to a_{k-1}, record T_k.

    Recomputed cost: Σ_i f_i (L - i) (stage i reruns once for each later backward)."""
    L = chain.length
    ops = Schedule()
    for k in range(L, 0, -1):
        if k > 1:
            ops.append(Op(OpKind.FCK, 1))
            ops.extend(Op(OpKind.F, i) for i in range(2, k))
        ops += [Op(OpKind.FALL, k), Op(OpKind.B, k)]
    return ops


def sqrt_schedule(chain: Chain, segments: int | None = None) -> Schedule:
    """Chen et al. 2016: keep the segment boundaries, recompute each segment once (tapes on).

    `segments` defaults to round(sqrt(L)); segment lengths differ by at most one. The last
    segment is taped during the first forward, so the recomputed cost is the sum of f over all
    other segments (one extra forward pass, less the last segment)."""
    L = chain.length
    n = max(1, min(L, segments if segments is not None else round(math.sqrt(L))))
    bounds = [round(k * L / n) for k in range(n + 1)]  # segment k is stages bounds[k]+1..bounds[k+1]
    ops = Schedule()
    for k in range(n - 1):  # first forward: sweep, keeping each segment's input
        lo, hi = bounds[k] + 1, bounds[k + 1]
        ops.append(Op(OpKind.FCK, lo))
        ops.extend(Op(OpKind.F, i) for i in range(lo + 1, hi + 1))
    for k in range(n - 1, -1, -1):  # (re)compute segment k with tapes, then its backward
        lo, hi = bounds[k] + 1, bounds[k + 1]
        ops.extend(Op(OpKind.FALL, i) for i in range(lo, hi + 1))
        ops.extend(Op(OpKind.B, i) for i in range(hi, lo - 1, -1))
    return ops
