"""Where the buffers of a function live in its one arena: best-fit placement of live intervals.

The memory planner (`mlc-plan-memory`) and the checkpointing predictor share this placement, so
the arena mlc-checkpoint predicts under a budget is exactly the arena the planner then makes.
"""

from __future__ import annotations

from collections.abc import Sequence

ALIGN = 64
"""Every offset in the arena is a multiple of this (so vector loads stay aligned)."""


def place(intervals: Sequence[tuple[int, int, int]]) -> tuple[list[int], int]:
    """Best-fit placement of `(size, start, end)` live intervals, largest first (ties: earliest
    start, then given order); returns each interval's offset and the arena size.

    `mlc-plan-memory` places a function's buffers with it; mlc-checkpoint predicts the arena of
    the function it rewrites with the same placement."""
    placed: list[tuple[int, int, int, int]] = []  # (offset, padded size, start, end)
    offsets = [0] * len(intervals)
    for k in sorted(range(len(intervals)), key=lambda k: (-intervals[k][0], intervals[k][1])):
        size, start, end = intervals[k]
        need = -(-size // ALIGN) * ALIGN
        busy = sorted((o, o + s) for o, s, b0, b1 in placed if b0 <= end and start <= b1)
        best, best_gap, cursor = None, None, 0
        for lo, hi in busy:
            gap = lo - cursor
            if gap >= need and (best_gap is None or gap < best_gap):
                best, best_gap = cursor, gap
            cursor = max(cursor, hi)
        offset = best if best is not None else cursor
        placed.append((offset, need, start, end))
        offsets[k] = offset
    return offsets, max((o + s for o, s, _, _ in placed), default=0)
