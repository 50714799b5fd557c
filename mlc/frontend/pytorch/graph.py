"""The state of one FX graph's import: mlc values with their layouts, arguments, the text so far.

An imported value is an mlc tensor that holds a PyTorch tensor *in some dimension order*:
`mlc = transpose(torch, perm)`. Convolutions, pools and batch norm want NHWC (`perm = (0, 2, 3, 1)`
for an NCHW tensor), everything shaped by PyTorch's order (reshape, softmax over a dim, outputs)
wants the identity; `as_perm` emits a `transpose` only where the two differ, so a chain of
convolutions, activations and pools stays NHWC from the first to the last, and a `permute` costs
nothing (it only changes `perm`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.fx import Node

NHWC = (0, 2, 3, 1)
"""The perm that holds an NCHW tensor as NHWC."""


@dataclass(frozen=True)
class Value:
    """An mlc value holding a PyTorch tensor of `shape` (PyTorch's order) as `transpose(t, perm)`."""

    name: str
    shape: tuple[int, ...]
    perm: tuple[int, ...] | None = None

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def order(self) -> tuple[int, ...]:
        return self.perm or tuple(range(self.rank))


@dataclass(frozen=True)
class Argument:
    """One tensor argument of the mlc model: what the caller passes for it.

    `kind`: `param` (a tensor that requires grad: it gets a gradient), `state` (running statistics
    a training-mode batch norm updates in place), `input`; `source`: the FX placeholder's
    position, or -1 for what the call makes itself (a one-hot of an integer target, a random
    draw); `make`: how it is made from that placeholder (or drawn), when it is not passed as is."""

    name: str
    kind: str
    source: int
    shape: tuple[int, ...]
    make: tuple = ()


class Unsupported(Exception):
    """A node of the graph mlc cannot import; `node` names it for the diagnostic."""

    def __init__(self, node: torch.fx.Node, reason: str) -> None:
        super().__init__(reason)
        self.node = node
        self.reason = reason


@dataclass
class ImportState:
    """What the import has made so far."""

    dtype: str
    lines: list[str] = field(default_factory=list)
    arguments: list[Argument] = field(default_factory=list)
    custom_ops: dict[str, str] = field(default_factory=dict)
    effects: list[tuple[int, str, float]] = field(default_factory=list)
    """In-place updates of placeholders PyTorch does itself (a batch norm's counter): (position, method, operand)."""
    training: bool | None = None
    """Whether the program must run in training mode (batch norm with running statistics)."""
    _names: set[str] = field(default_factory=set)

    def fresh(self, hint: str) -> str:
        """A new mlc name from `hint`, an FX node name (`readable`)."""
        base = readable(hint)
        name, k = base, 1
        while name in self._names:
            name, k = f"{base}_{k}", k + 1
        self._names.add(name)
        return name

    def bind(self, hint: str, expr: str, shape: Sequence[int], perm: tuple[int, ...] | None = None) -> Value:
        """`name = expr` for a tensor of PyTorch shape `shape` held in order `perm`."""
        name = self.fresh(hint)
        self.lines.append(f"  {name} = {expr}")
        return Value(name, tuple(shape), None if perm == tuple(range(len(shape))) else perm)

    def as_perm(self, v: Value, perm: tuple[int, ...] | None) -> str:
        """The mlc expression of `v` held in order `perm` (None: PyTorch's own)."""
        want = perm or tuple(range(v.rank))
        if want == v.order:
            return v.name
        # mlc(v) = transpose(t, v.order); we want transpose(t, want) = transpose(mlc(v), q)
        # with v.order[q[d]] = want[d]
        q = tuple(v.order.index(w) for w in want)
        return f"transpose({v.name}, {tup(q)})"

    def torch_order(self, v: Value) -> str:
        return self.as_perm(v, None)


KEYWORDS = frozenset({"model", "op", "input", "param", "state", "output"})
"""The language's reserved words (grammar.lark)."""


def readable(fx_name: str) -> str:
    """An mlc name for an FX node: Dynamo's `l_self_modules_conv_parameters_weight_` is
    `conv_weight`, `l_x_` is `x`; a keyword gets a trailing `_`."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", fx_name)
    name = re.sub(r"^l_(self_)?", "", name, flags=re.IGNORECASE)
    name = re.sub(r"_+", "_", re.sub(r"(^|_)(modules|parameters|buffers)_", r"\1", name)).strip("_") or "v"
    name = name if not name[0].isdigit() else "v" + name
    return name + "_" if name in KEYWORDS else name


def tup(xs: Sequence[int]) -> str:
    """An mlc tuple literal."""
    return "(" + ", ".join(str(int(x)) for x in xs) + ")"


def number(x: float | int | bool) -> str:
    """An mlc number literal (finite)."""
    return repr(float(x)) if isinstance(x, float) else str(int(x))


def arguments(node: Node, args: tuple, kwargs: dict, names: Sequence[str], defaults: dict[str, Any]) -> dict[str, Any]:
    """PyTorch's signature `names` bound to the call's positional and keyword arguments."""
    bound = dict(defaults)
    for name, a in zip(names, args):
        bound[name] = a
    for name, a in kwargs.items():
        if name not in names:
            raise Unsupported(node, f"keyword '{name}'")
        bound[name] = a
    missing = [n for n in names if n not in bound]
    if missing:
        raise Unsupported(node, f"missing argument '{missing[0]}'")
    return bound


def pair(x: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(x, int):
        return (x, x)
    if len(x) == 1:
        return (int(x[0]), int(x[0]))
    return (int(x[0]), int(x[1]))


INTEGER_TENSOR = "an integer tensor (mlc computes in floating point; only class targets may be integers)"


def tensor(node: Node, v: Any, what: str = "operand") -> Value:
    if isinstance(v, Node):  # what resolve leaves of an integer placeholder
        raise Unsupported(node, f"its {what} is {INTEGER_TENSOR}")
    if not isinstance(v, Value):
        raise Unsupported(node, f"its {what} is not a tensor mlc computes ({type(v).__name__})")
    return v
