"""Revolve's closed form, and the dynamic programme read off on Revolve's chain (the homogeneous reference).

Revolve
-------
Homogeneous chain, unit costs and sizes, `f = 1, b = 0, x = 1, g = ftmp = btmp = 0` and tape
`x̄ = K`. With `D(n, m)` the least number of *extra* forwards (cost - n) of a length-n segment:
`D(1, m) = 0` iff `m >= K`; the tape branch needs `m >= 2K`; a sweep needs 2 <= K. So for
`m = K + σ < 2K` the recurrence is exactly Griewank's
`T(n, σ) = min_j [ j + T(n-j, σ-1) + T(j, σ) ]`, `T(1, σ) = 0` iff σ >= 0, whose closed form is
Revolve's `t(l, s) = r·l - β(s+1, r-1)`, `β(s, r) = C(s+r, s)`, r the least with β(s, r) >= l.
`revolve_extra_forwards` runs the DP once on such a chain and reads every (l, s) off the table.
"""

from __future__ import annotations

import numpy as np

from .dp import solve_table
from .model import homogeneous_chain


# ---------------------------------------------------------------------------------------------
# Revolve


def revolve_forward_count(steps: int, snaps: int) -> int:
    """Griewank-Walther: least number of forward steps to reverse `steps` steps with `snaps` snapshots.

    t(l, s) = r·l - β(s+1, r-1), β(s, r) = C(s+r, s), r the least with β(s, r) >= l
    (`β(s+1, r-1) = β(s, r)·r/(s+1)`, so one loop finds both)."""
    if steps < 1 or snaps < 1:
        raise ValueError("steps >= 1 and snaps >= 1")
    reps, beta = 0, 1
    while beta < steps:
        reps += 1
        beta = beta * (reps + snaps) // reps
    return reps * steps - beta * reps // (snaps + 1)


def revolve_extra_forwards(max_steps: int, max_snaps: int) -> np.ndarray:
    """E[l, s] = extra forwards (cost - l) of the DP optimum on the homogeneous chain of length l
    with s snapshot slots, for 1 <= l <= max_steps, 1 <= s <= max_snaps, from ONE table.

    The chain is `homogeneous_chain(max_steps, tape=K)` with K = max_snaps + 1 (so a kept tape
    never fits and the model is Revolve's, see the module docstring); s snapshots mean the budget
    x_0 + K + s, i.e. m = K + s slots, and the prefix problems C(1, l, K + s) give every l."""
    K = max_snaps + 1
    chain = homogeneous_chain(max_steps, tape=K)
    table = solve_table(chain, chain.x[0] + K + max_snaps, slots=None)
    assert table is not None and table.disc.exact and table.disc.unit == 1
    E = np.full((max_steps + 1, max_snaps + 1), -1, dtype=np.int64)
    for l in range(1, max_steps + 1):
        for s in range(1, max_snaps + 1):
            E[l, s] = round(table.cost(1, l, K + s)) - l
    return E
