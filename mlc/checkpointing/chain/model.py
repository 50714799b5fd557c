"""The chain model (Rotor's): `Chain`, a chain of stages with their costs and sizes, as plain numbers.

The chain
---------
`L >= 1` stages. Stage `i` (numbered `1..L`) computes the activation `a_i = F_i(a_{i-1})`;
`a_0` is the chain input and `a_L` the loss (its gradient `δ_L` is the seed). Per stage:

    f_i      forward cost (multiply-adds)                      Chain.f[i-1]
    b_i      backward cost                                      Chain.b[i-1]
    x_i      bytes of a_i, for i = 0..L (x_0: the input)        Chain.x[i]
    x̄_i      bytes of the *tape* T_i of stage i: everything     Chain.xbar[i-1]
             B_i reads besides a_{i-1} and δ_i. T_i contains
             a_i (so x̄_i >= x_i) and the stage's internals.
    g_i      bytes of δ_i = ∂loss/∂a_i, i = 0..L (default x_i)  Chain.g[i]
    ftmp_i   workspace alive only while F_i runs                Chain.ftmp[i-1]
    btmp_i   workspace alive only while B_i runs                Chain.btmp[i-1]

(This is the model of Herrmann et al., "Optimal checkpointing for heterogeneous chains", 2019 --
"Rotor" -- where x̄ is the tape, not the gradient: a gradient always has the shape of its value,
so its size `g` defaults to `x`.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

INF = math.inf


# ---------------------------------------------------------------------------------------------
# The chain


def _tuple(values: Sequence[float] | None, n: int, default: float | Sequence[float], what: str) -> tuple:
    if values is None:
        values = [default] * n if isinstance(default, (int, float)) else list(default)
    values = tuple(values)
    if len(values) != n:
        raise ValueError(f"{what}: expected {n} entries, got {len(values)}")
    for v in values:
        if not (v >= 0 and math.isfinite(v)):
            raise ValueError(f"{what}: entries must be finite and >= 0, got {v!r}")
    return values


@dataclass(frozen=True)
class Chain:
    """A chain of L stages; see the module docstring for the meaning of each field.

    Per-stage sequences (`f, b, xbar, ftmp, btmp`) have L entries, entry `i-1` for stage `i`;
    per-value sequences (`x, g`) have L + 1 entries, entry `i` for `a_i` (`x[0]`: the input).
    """

    f: tuple[float, ...]
    b: tuple[float, ...]
    x: tuple[float, ...]
    xbar: tuple[float, ...]
    g: tuple[float, ...] | None = None
    ftmp: tuple[float, ...] | None = None
    btmp: tuple[float, ...] | None = None
    names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        n = len(self.f)
        if n < 1:
            raise ValueError("a chain has at least one stage")
        put = lambda name, value: object.__setattr__(self, name, value)
        put("f", _tuple(self.f, n, 0, "f"))
        put("b", _tuple(self.b, n, 0, "b"))
        put("x", _tuple(self.x, n + 1, 0, "x"))
        put("xbar", _tuple(self.xbar, n, 0, "xbar"))
        put("g", _tuple(self.g, n + 1, self.x, "g"))
        put("ftmp", _tuple(self.ftmp, n, 0, "ftmp"))
        put("btmp", _tuple(self.btmp, n, 0, "btmp"))
        for i in range(1, n + 1):
            if self.xbar[i - 1] < self.x[i]:
                raise ValueError(f"stage {i}: the tape contains a_{i}, so xbar >= x ({self.xbar[i-1]} < {self.x[i]})")
        if self.names is not None:
            put("names", tuple(self.names))
            if len(self.names) != n:
                raise ValueError(f"names: expected {n} entries")

    @property
    def length(self) -> int:
        return len(self.f)

    def prefix(self, length: int) -> Chain:
        """Stages 1..length (the loss seed then sits on a_length, with size g[length])."""
        l = length
        return Chain(self.f[:l], self.b[:l], self.x[: l + 1], self.xbar[:l], self.g[: l + 1],
                     self.ftmp[:l], self.btmp[:l], None if self.names is None else self.names[:l])

    def stage_name(self, i: int) -> str:
        return f"stage {i}" if self.names is None else f"stage {i} ({self.names[i - 1]})"


class Arrays(NamedTuple):
    """The chain as 1-based float arrays (index 0 of per-stage arrays is 0), as in the maths."""

    L: int
    f: np.ndarray
    b: np.ndarray
    x: np.ndarray
    xbar: np.ndarray
    g: np.ndarray
    ftmp: np.ndarray
    btmp: np.ndarray


def arrays(chain: Chain, sizes: dict[str, np.ndarray] | None = None) -> Arrays:
    stage = lambda v: np.concatenate(([0.0], np.asarray(v, dtype=float)))
    arr = Arrays(chain.length, stage(chain.f), stage(chain.b), np.asarray(chain.x, dtype=float),
                  stage(chain.xbar), np.asarray(chain.g, dtype=float), stage(chain.ftmp), stage(chain.btmp))
    return arr._replace(**sizes) if sizes else arr


def homogeneous_chain(length: int, *, tape: float = 1, f: float = 1, b: float = 0, x: float = 1,
                      g: float = 0) -> Chain:
    """`length` identical stages (the Revolve setting when `tape = K > snapshots`, see `revolve_extra_forwards`)."""
    return Chain(f=[f] * length, b=[b] * length, x=[x] * (length + 1), xbar=[tape] * length,
                 g=[g] * (length + 1))
