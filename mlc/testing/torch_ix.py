"""`ix.compute` evaluated in PyTorch over its whole iteration space: a gather per read, the scalar
body as tensor code, then the fold of the reduction axes. A test/demo dependency only."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from xdsl.dialects import arith, math
from xdsl.dialects.builtin import FloatAttr, IntegerAttr
from xdsl.ir import Operation, SSAValue
from xdsl.ir.affine import (
    AffineBinaryOpExpr,
    AffineBinaryOpKind,
    AffineConstantExpr,
    AffineDimExpr,
    AffineExpr,
)

from mlc.dialects import ix
from mlc.testing.torch_nn import Kernel, Tensor, dtype_of, shape_of


# ---------------------------------------------------------------------------------------------
# ix.compute: the whole iteration space at once
# ---------------------------------------------------------------------------------------------
def compute_kernel(op: ix.ComputeOp) -> Kernel:
    """Evaluate a compute op vectorised over its iteration space (output dims, then reduction
    variables): gather every read through its quasi-affine map (fill out of bounds), run the
    scalar body once on those tensors, then fold the reduction axes."""
    space = tuple(op.iteration_extents)
    grid = [torch.arange(n).reshape([n if k == j else 1 for j in range(len(space))]) for k, n in enumerate(space)]
    gathers = [gather_plan(read, grid) for read in op.reads]
    body = body_kernel(op, grid)
    fold = REDUCTIONS[op.reduction.data](op.rank, space)

    def run(*inputs: Tensor) -> Tensor:
        return fold(body(*(g(x) for g, x in zip(gathers, inputs, strict=True))))

    return run


def affine(expr: AffineExpr, grid: Sequence[Tensor]) -> Tensor | int:
    """An index expression at every point of the space (floor semantics for `floordiv`/`mod`)."""
    if isinstance(expr, AffineDimExpr):
        return grid[expr.position]
    if isinstance(expr, AffineConstantExpr):
        return expr.value
    assert isinstance(expr, AffineBinaryOpExpr), expr
    lhs, rhs = affine(expr.lhs, grid), affine(expr.rhs, grid)
    if expr.kind == AffineBinaryOpKind.Add:
        return lhs + rhs
    if expr.kind == AffineBinaryOpKind.Mul:
        return lhs * rhs
    lhs_t = torch.as_tensor(lhs)
    if expr.kind == AffineBinaryOpKind.FloorDiv:
        return torch.div(lhs_t, rhs, rounding_mode="floor")
    if expr.kind == AffineBinaryOpKind.CeilDiv:
        return -torch.div(-lhs_t, rhs, rounding_mode="floor")
    assert expr.kind == AffineBinaryOpKind.Mod, expr.kind
    return torch.remainder(lhs_t, rhs)


def gather_plan(read: ix.Read, grid: Sequence[Tensor]) -> Callable[[Tensor], Tensor]:
    """x[map(point)] at every point, `fill` where the map leaves x; indices computed once.

    Out-of-bounds points read a clamped (valid) index and are then masked, so the gradient of
    a masked point is 0 and repeated reads of one element accumulate (advanced indexing)."""
    shape = shape_of(read.value)
    coords = [torch.as_tensor(affine(e, grid), dtype=torch.int64) for e in read.map.results]
    inside = torch.ones((), dtype=torch.bool)
    for c, n in zip(coords, shape, strict=True):
        inside = inside & (c >= 0) & (c < n)
    clamped = tuple(c.clamp(0, n - 1) for c, n in zip(coords, shape))
    if bool(inside.all()):
        return lambda x: x[clamped]
    fill = read.fill

    def gather(x: Tensor) -> Tensor:
        return torch.where(inside, x[clamped], torch.tensor(fill, dtype=x.dtype))

    return gather


def _fold_none(rank: int, space: tuple[int, ...]) -> Callable[[Tensor], Tensor]:
    return lambda v: v.broadcast_to(space)


def _fold_sum(rank: int, space: tuple[int, ...]) -> Callable[[Tensor], Tensor]:
    axes = tuple(range(rank, len(space)))
    return lambda v: v.broadcast_to(space).sum(dim=axes)


def _fold_max(rank: int, space: tuple[int, ...]) -> Callable[[Tensor], Tensor]:
    """The first maximum in row-major order of the reduction variables, picked by `argmax` and
    gathered, so its gradient goes to that element alone (`amax` would split ties)."""

    def fold(v: Tensor) -> Tensor:
        flat = v.broadcast_to(space).reshape(*space[:rank], -1)
        first = flat.argmax(dim=-1, keepdim=True)
        return torch.take_along_dim(flat, first, dim=-1).squeeze(-1)

    return fold


REDUCTIONS: dict[str, Callable[[int, tuple[int, ...]], Callable[[Tensor], Tensor]]] = {
    "none": _fold_none, "sum": _fold_sum, "max": _fold_max,
}  # fmt: skip


# -- scalar bodies ----------------------------------------------------------------------------
def body_kernel(op: ix.ComputeOp, grid: Sequence[Tensor]) -> Kernel:
    """The body as straight-line tensor code: read scalars in (as block arguments), yield out."""
    block = op.body.block
    slots: dict[SSAValue, int] = {arg: k for k, arg in enumerate(block.args)}
    steps: list[tuple[Kernel, tuple[int, ...]]] = []
    for body_op in block.ops:
        if isinstance(body_op, ix.YieldOp):
            break
        steps.append((scalar_kernel(body_op, grid), tuple(slots[v] for v in body_op.operands)))
        slots[body_op.results[0]] = len(slots)
    result = slots[op.yield_op.value]

    def body(*reads: Tensor) -> Tensor:
        env = list(reads)
        for fn, operands in steps:
            env.append(fn(*(env[k] for k in operands)))
        return env[result]

    return body


def _first_max(a: Tensor, b: Tensor) -> Tensor:
    """arith.maximumf (NaN propagates); a tie goes to `a`, the first maximum."""
    return torch.where((a >= b) | torch.isnan(a), a, b)


def _first_min(a: Tensor, b: Tensor) -> Tensor:
    """arith.minimumf (NaN propagates); a tie goes to `a`."""
    return torch.where((a <= b) | torch.isnan(a), a, b)


def _ordered(cmp: Callable[[Tensor, Tensor], Tensor]) -> Callable[[Tensor, Tensor], Tensor]:
    return lambda a, b: cmp(a, b) & ~(torch.isnan(a) | torch.isnan(b))


def _unordered(cmp: Callable[[Tensor, Tensor], Tensor]) -> Callable[[Tensor, Tensor], Tensor]:
    return lambda a, b: cmp(a, b) | torch.isnan(a) | torch.isnan(b)


_COMPARISONS = (torch.eq, torch.gt, torch.ge, torch.lt, torch.le, torch.ne)
CMPF: dict[int, Callable[[Tensor, Tensor], Tensor]] = {
    0: lambda a, b: torch.zeros(torch.broadcast_shapes(a.shape, b.shape), dtype=torch.bool),
    **{1 + k: _ordered(c) for k, c in enumerate(_COMPARISONS)},  # oeq ogt oge olt ole one
    7: lambda a, b: ~(torch.isnan(a) | torch.isnan(b)),
    **{8 + k: _unordered(c) for k, c in enumerate(_COMPARISONS)},  # ueq ugt uge ult ule une
    14: lambda a, b: torch.isnan(a) | torch.isnan(b),
    15: lambda a, b: torch.ones(torch.broadcast_shapes(a.shape, b.shape), dtype=torch.bool),
}
"""arith.cmpf by predicate number (xDSL's order: false oeq ogt oge olt ole one ord ueq .. uno true)."""
CMPI: dict[int, Callable[[Tensor, Tensor], Tensor]] = {0: torch.eq, 1: torch.ne, 2: torch.lt, 3: torch.le, 4: torch.gt, 5: torch.ge}
"""arith.cmpi by predicate number (eq ne slt sle sgt sge; indices are never negative here)."""

SCALAR_OPS: dict[type[Operation], Kernel] = {
    arith.AddfOp: torch.add, arith.SubfOp: torch.sub, arith.MulfOp: torch.mul, arith.DivfOp: torch.div,
    arith.NegfOp: torch.neg, arith.MaximumfOp: _first_max, arith.MinimumfOp: _first_min,
    arith.SelectOp: torch.where,
    arith.AddiOp: torch.add, arith.SubiOp: torch.sub, arith.MuliOp: torch.mul,
    arith.FloorDivSIOp: lambda a, b: torch.div(a, b, rounding_mode="floor"), arith.RemSIOp: torch.fmod,
    arith.MaxSIOp: torch.maximum, arith.MinSIOp: torch.minimum,
    arith.IndexCastOp: lambda i: i,  # indices are int64 tensors throughout
    math.ExpOp: torch.exp, math.LogOp: torch.log, math.SqrtOp: torch.sqrt, math.AbsFOp: torch.abs,
    math.TanhOp: torch.tanh, math.PowFOp: torch.pow, math.ErfOp: torch.erf,
}  # fmt: skip
"""Scalar ops whose kernel needs nothing from the op but its operands."""


def scalar_kernel(op: Operation, grid: Sequence[Tensor]) -> Kernel:
    """The tensor kernel of one scalar body op."""
    if isinstance(op, ix.IndexOp):
        value = grid[op.dim.value.data]
        return lambda: value
    if isinstance(op, arith.ConstantOp):
        attr = op.value
        if isinstance(attr, FloatAttr):
            c = torch.tensor(attr.value.data, dtype=dtype_of(attr.type))
        else:
            assert isinstance(attr, IntegerAttr), attr
            c = torch.tensor(attr.value.data, dtype=torch.int64)
        return lambda: c
    if isinstance(op, arith.CmpfOp):
        return CMPF[op.predicate.value.data]
    if isinstance(op, arith.CmpiOp):
        return CMPI[op.predicate.value.data]
    if isinstance(op, arith.SIToFPOp):
        dtype = dtype_of(op.result.type)
        return lambda i: i.to(dtype)
    fn = SCALAR_OPS.get(type(op))
    if fn is None:
        raise NotImplementedError(f"torch reference: unsupported scalar op {op.name}")
    return fn
