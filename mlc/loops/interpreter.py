"""A NumPy reference evaluator for functions of `ix.compute` ops: the oracle for later lowerings.

Each compute op is evaluated for its whole iteration space at once:
  1. `np.indices` gives the value of every iteration variable (output dims, then reduction vars)
     at every point of the space;
  2. each read's quasi-affine map is evaluated on that grid (floordiv/mod with Python's floor
     semantics) and the operand gathered there, the read's fill value where out of bounds;
  3. the body runs once, on arrays, one NumPy function per scalar op;
  4. `sum` or `max` (the first maximum, as `argmax` picks it) folds the reduction axes.
Everything is computed in the tensors' own dtype (float32, float64, or the signed integer of an
integer type, which wraps as the C backend's does).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy.special import erf
from xdsl.dialects import arith, func, math
from xdsl.dialects.builtin import Float32Type, Float64Type, FloatAttr, IndexType, IntegerAttr, IntegerType, TensorType
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.ir.affine import AffineBinaryOpExpr, AffineBinaryOpKind, AffineConstantExpr, AffineDimExpr, AffineExpr

from mlc.dialects import ix

Array = np.ndarray

DTYPES: dict[type[Attribute], type[np.number]] = {Float32Type: np.float32, Float64Type: np.float64, IndexType: np.int64}
INTEGERS = {8: np.int8, 16: np.int16, 32: np.int32, 64: np.int64}


def dtype_of(t: Attribute) -> type[np.number]:
    elt = t.get_element_type() if isinstance(t, TensorType) else t
    if isinstance(elt, IntegerType):
        return INTEGERS[elt.width.data]
    return DTYPES[type(elt)]


def evaluate(func_op: func.FuncOp, args: Sequence[Array]) -> list[Array]:
    """Run `func_op` (compute ops and a `func.return`) on NumPy arrays."""
    env: dict[SSAValue, Array] = {}
    for block_arg, value in zip(func_op.body.block.args, args, strict=True):
        env[block_arg] = np.asarray(value, dtype=dtype_of(block_arg.type))
    for op in func_op.body.block.ops:
        if isinstance(op, ix.ComputeOp):
            env[op.result] = evaluate_compute(op, [env[v] for v in op.inputs])
        elif isinstance(op, ix.ScatterOp):
            env[op.result] = evaluate_scatter(op, [env[v] for v in op.inputs])
        elif isinstance(op, func.ReturnOp):
            return [env[v] for v in op.arguments]
        else:
            raise NotImplementedError(f"interpreter: unsupported op {op.name}")
    raise ValueError("function has no func.return")


def evaluate_body(op: ix.IndexNotationOp, inputs: Sequence[Array]) -> tuple[Array, list[Array]]:
    """The body's value at every point of the iteration space, and the index grid."""
    space = op.iteration_extents
    grid = list(np.indices(space, dtype=np.int64))
    env: dict[SSAValue, Array] = {}
    for arg, read, x in zip(op.body.block.args, op.reads, inputs, strict=True):
        env[arg] = gather(x, [affine(e, grid, space) for e in read.map.results], read.fill, space)
    with np.errstate(all="ignore"):  # IEEE semantics: log(0) = -inf, 0/0 = nan, ... are values
        for body_op in op.body.block.ops:
            if isinstance(body_op, ix.IndexOp):
                env[body_op.result] = grid[body_op.dim.value.data]
            elif not isinstance(body_op, ix.YieldOp):
                env[body_op.results[0]] = scalar_op(body_op, [env[v] for v in body_op.operands])
    return np.broadcast_to(env[op.yield_op.value], space), grid


def evaluate_scatter(op: ix.ScatterOp, inputs: Sequence[Array]) -> Array:
    """out[write(v)] += body(v) over the box; writes outside `out` are dropped."""
    values, grid = evaluate_body(op, inputs)
    space = op.iteration_extents
    out = np.zeros(op.result_type.get_shape(), dtype=dtype_of(op.result_type))
    index = [affine(e, grid, space) for e in op.write_map.results]
    inside = np.ones(space, dtype=bool)
    for i, n in zip(index, out.shape):
        inside &= (i >= 0) & (i < n)
    np.add.at(out, tuple(i[inside] for i in index), values[inside])
    return out


def evaluate_compute(op: ix.ComputeOp, inputs: Sequence[Array]) -> Array:
    values, _ = evaluate_body(op, inputs)
    space = op.iteration_extents
    dtype = dtype_of(op.result_type)
    if op.reduction.data == "sum":
        return np.sum(values, axis=tuple(range(op.rank, len(space))), dtype=dtype)
    if op.reduction.data == "max":  # the first maximum in row-major order of the reduction vars
        flat = values.reshape(*values.shape[: op.rank], -1)
        first = flat.argmax(axis=-1)[..., None]
        return np.take_along_axis(flat, first, axis=-1)[..., 0].astype(dtype)
    return np.array(values, dtype=dtype)


def affine(expr: AffineExpr, grid: Sequence[Array], space: Sequence[int]) -> Array:
    """An index expression evaluated at every point of the iteration space."""
    if isinstance(expr, AffineDimExpr):
        return grid[expr.position]
    if isinstance(expr, AffineConstantExpr):
        return np.full(space, expr.value, dtype=np.int64)
    assert isinstance(expr, AffineBinaryOpExpr), expr
    lhs, rhs = affine(expr.lhs, grid, space), affine(expr.rhs, grid, space)
    match expr.kind:
        case AffineBinaryOpKind.Add:
            return lhs + rhs
        case AffineBinaryOpKind.Mul:
            return lhs * rhs
        case AffineBinaryOpKind.FloorDiv:
            return lhs // rhs
        case AffineBinaryOpKind.CeilDiv:
            return -(-lhs // rhs)
        case AffineBinaryOpKind.Mod:
            return lhs % rhs
    raise AssertionError(expr.kind)


def gather(x: Array, index: Sequence[Array], fill: float, space: Sequence[int]) -> Array:
    """x[index] where every coordinate is in bounds, `fill` elsewhere."""
    inside = np.ones(space, dtype=bool)
    for i, n in zip(index, x.shape, strict=True):
        inside &= (i >= 0) & (i < n)
    clipped = tuple(np.clip(i, 0, max(n - 1, 0)) for i, n in zip(index, x.shape))
    return np.where(inside, x[clipped], x.dtype.type(fill))


# -- scalar ops -----------------------------------------------------------------------------------
ORDERED_COMPARE: dict[int, Callable[[Array, Array], Array]] = {
    1: np.equal, 2: np.greater, 3: np.greater_equal, 4: np.less, 5: np.less_equal, 6: np.not_equal,
}
"""arith.cmpf oeq..one by number; ueq..une are the same plus 7."""


def cmpf(predicate: int, a: Array, b: Array) -> Array:
    """`o<p>`: both operands ordered (not NaN) and `p` holds; `u<p>`: unordered or `p` holds."""
    ordered = ~(np.isnan(a) | np.isnan(b))
    if predicate in (0, 15):  # false, true
        return np.full(ordered.shape, predicate == 15)
    if predicate in (7, 14):  # ord, uno
        return ordered if predicate == 7 else ~ordered
    if predicate < 7:
        return ORDERED_COMPARE[predicate](a, b) & ordered
    return ORDERED_COMPARE[predicate - 7](a, b) | ~ordered


CMPI: dict[int, Callable[[Array, Array], Array]] = {
    0: np.equal, 1: np.not_equal, 2: np.less, 3: np.less_equal, 4: np.greater, 5: np.greater_equal,
}

SCALAR_OPS: dict[type[Operation], Callable[..., Array]] = {
    arith.AddfOp: np.add, arith.SubfOp: np.subtract, arith.MulfOp: np.multiply, arith.DivfOp: np.divide,
    arith.NegfOp: np.negative, arith.MaximumfOp: np.maximum, arith.MinimumfOp: np.minimum,
    arith.AddiOp: np.add, arith.SubiOp: np.subtract, arith.MuliOp: np.multiply,
    arith.FloorDivSIOp: np.floor_divide, arith.RemSIOp: np.fmod, arith.MaxSIOp: np.maximum, arith.MinSIOp: np.minimum,
    arith.SelectOp: np.where, arith.XOrIOp: np.bitwise_xor, arith.ShLIOp: np.left_shift,
    math.ExpOp: np.exp, math.LogOp: np.log, math.SqrtOp: np.sqrt, math.AbsFOp: np.abs, math.TanhOp: np.tanh, math.PowFOp: np.power,
    math.ErfOp: erf,
}


def scalar_op(op: Operation, operands: list[Array]) -> Array:
    if isinstance(op, arith.ConstantOp):
        value = op.value
        if isinstance(value, FloatAttr):
            return np.asarray(value.value.data, dtype=dtype_of(value.type))
        assert isinstance(value, IntegerAttr)
        return np.asarray(value.value.data, dtype=dtype_of(value.type))
    if isinstance(op, arith.CmpfOp):
        return cmpf(op.predicate.value.data, *operands)
    if isinstance(op, arith.CmpiOp):
        return CMPI[op.predicate.value.data](*operands)
    if isinstance(op, arith.IndexCastOp):
        return operands[0].astype(dtype_of(op.result.type))
    if isinstance(op, arith.SIToFPOp):
        return operands[0].astype(dtype_of(op.result.type))
    if isinstance(op, math.CtPopOp):  # NumPy counts the bits of |x|; the op those of its two's complement
        return np.bitwise_count(operands[0].view(f"u{operands[0].dtype.itemsize}")).astype(operands[0].dtype)
    fn = SCALAR_OPS.get(type(op))
    if fn is None:
        raise NotImplementedError(f"interpreter: unsupported scalar op {op.name}")
    return fn(*operands)
