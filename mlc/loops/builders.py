"""Loop building shared by the passes that produce loop-level IR (`scf`/`memref`/`arith`).

Everything here inserts through xDSL's `ImplicitBuilder`: call these helpers inside a
`with ImplicitBuilder(block):` and the ops land at the end of that block. Inside
`with function_scope(block):` (a function body, built at its end), constants instead go once
each to the start of `block` (a nest builds many loops with the same bounds and offsets), and the
pure ops built through `reused` (index arithmetic, broadcasts, masks) are built once where they
dominate, in the blocks of loops being built (`building`) too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

from xdsl.builder import ImplicitBuilder
from xdsl.dialects import arith, memref, scf
from xdsl.dialects.builtin import FloatAttr, IndexType, IntegerAttr, IntegerType, MemRefType, UnitAttr
from xdsl.ir import Attribute, Block, Operation, SSAValue
from xdsl.ir.affine import AffineBinaryOpExpr, AffineBinaryOpKind, AffineConstantExpr, AffineDimExpr, AffineExpr

from mlc.loops.affine import Interval, expr_bounds


class _Scope:
    """What `function_scope` shares while a function is built: its constants, the pure ops
    built so far (`reused`), and the blocks still being built (their ops dominate whatever is
    built next: the enclosing loops' bodies, each built before its loop op exists)."""

    def __init__(self, block: Block) -> None:
        self.block = block
        self.constants: dict[tuple[object, ...], SSAValue] = {}
        self.pure: dict[tuple[object, ...], SSAValue] = {}
        self.open: set[Block] = {block}


_SCOPE: ContextVar[_Scope | None] = ContextVar("_SCOPE", default=None)


@contextmanager
def function_scope(block: Block) -> Iterator[None]:
    """Ops go to the end of `block`, a function body; within, `index_const` and `element_const`
    put each distinct constant once at its start, and `reused` builds each pure op once where it
    dominates."""
    token = _SCOPE.set(_Scope(block))
    try:
        with ImplicitBuilder(block):
            yield
    finally:
        _SCOPE.reset(token)


@contextmanager
def building(block: Block) -> Iterator[None]:
    """Ops go to the end of `block`, a region's block built before the op that will hold it."""
    scope = _SCOPE.get()
    if scope is not None:
        scope.open.add(block)
    try:
        with ImplicitBuilder(block):
            yield
    finally:
        if scope is not None:
            scope.open.discard(block)


def reused(key: tuple[object, ...], build: Callable[[], SSAValue]) -> SSAValue:
    """`build()` of a pure op, or the value an equal call built earlier in a block that is still
    being built (so it dominates this point): the ops `cse` would merge are never made. A nest's
    index arithmetic, bounds checks and clamps repeat for every access, and a body's
    loop-invariant ops for every cell of a register tile (ResNet's Adam step built 8,500 ops of
    which `cse` erased 1,600). `key` is the op's class (or the body op cloned) and its operands."""
    scope = _SCOPE.get()
    if scope is None:
        return build()
    found = scope.pure.get(key)
    if found is not None and found.owner.parent in scope.open:  # pyright: ignore[reportAttributeAccessIssue]
        return found
    scope.pure[key] = value = build()
    return value


OpT = TypeVar("OpT", bound=Operation)


def made(op_type: type[OpT], operands: Sequence[SSAValue], result_type: Attribute | None = None) -> OpT:
    """`op_type` on `operands` (of `result_type`) at the builder's insertion point, the op its
    constructor makes, built by `Operation.create`: without irdl's checks of each argument, which
    are half the cost of the ops a nest repeats most (loads, stores, FMAs, broadcasts, index
    arithmetic: 3,100 of the 4,300 ops of LeNet-5's Adam step). The lowered module is verified."""
    return op_type.create(operands=operands, result_types=() if result_type is None else (result_type,))


def shape_type(buffer: SSAValue) -> MemRefType:
    """The memref type of `buffer`."""
    t = buffer.type
    assert isinstance(t, MemRefType)
    return t


def buffer_shape(buffer: SSAValue) -> tuple[int, ...]:
    return shape_type(buffer).get_shape()


def load_element(buffer: SSAValue, indices: Sequence[SSAValue]) -> SSAValue:
    """`memref.load` of `buffer[indices]`."""
    return made(memref.LoadOp, [buffer, *indices], shape_type(buffer).get_element_type()).results[0]


def store_element(value: SSAValue, buffer: SSAValue, indices: Sequence[SSAValue]) -> None:
    """`memref.store` of `value` at `buffer[indices]`."""
    made(memref.StoreOp, [value, buffer, *indices])


def _constant(key: tuple[object, ...], attr: Callable[[], Attribute]) -> SSAValue:
    scope = _SCOPE.get()
    if scope is None:
        return arith.ConstantOp(attr()).result
    block, found = scope.block, scope.constants
    if key not in found:
        value = attr()
        op = arith.ConstantOp.create(properties={"value": value}, result_types=[value.type])  # pyright: ignore[reportAttributeAccessIssue]
        if op.parent is not None:  # an implicit builder inserted it where it is used
            op.detach()
        if block.first_op is None:
            block.add_op(op)
        else:
            block.insert_op_before(op, block.first_op)
        found[key] = op.results[0]
    return found[key]


def index_const(value: int) -> SSAValue:
    return _constant(("index", value), lambda: IntegerAttr(value, IndexType()))


def element_const(value: float, typ: Attribute) -> SSAValue:
    """A constant of an element type: the float, or for an integer type the integer it is (a read's
    fill, a reduction's start; -inf becomes the least integer of the type)."""
    if isinstance(typ, IntegerType):
        least = -(1 << (typ.width.data - 1))
        number = least if value == float("-inf") else int(value)
        return _constant(("int", number, typ), lambda: IntegerAttr(number, typ))
    return _constant(("float", repr(value), typ), lambda: FloatAttr(value, typ))  # pyright: ignore[reportArgumentType]


LoopBody = Callable[[SSAValue, Sequence[SSAValue]], Sequence[SSAValue]]
"""Builds a loop body from the induction variable and the loop-carried values; returns the
values carried to the next iteration."""


PARALLEL = "mlc.parallel"
"""Unit attribute of an `scf.for` whose iterations are independent and may run on threads."""


def for_loop(lower: int, upper: int, body: LoopBody, carried: Sequence[SSAValue] = (),
             parallel: bool = False) -> Sequence[SSAValue]:
    """`for (i = lower; i < upper; ++i)` carrying `carried`; returns the final carried values.
    A `parallel` loop (which carries nothing) is marked `mlc.parallel`."""
    block = Block(arg_types=[IndexType(), *(v.type for v in carried)])
    with building(block):
        made(scf.YieldOp, body(block.args[0], block.args[1:]))
    loop = scf.ForOp(index_const(lower), index_const(upper), index_const(1), carried, block)
    if parallel:
        assert not carried, "a parallel loop carries no values"
        loop.attributes[PARALLEL] = UnitAttr()
    return loop.results


def loop_nest(extents: Sequence[int], body: Callable[[list[SSAValue], Sequence[SSAValue]], Sequence[SSAValue]],
              carried: Sequence[SSAValue] = ()) -> Sequence[SSAValue]:
    """Perfect nest over `extents` (outermost first), threading `carried` through every level."""

    def level(depth: int, ivs: list[SSAValue], values: Sequence[SSAValue]) -> Sequence[SSAValue]:
        if depth == len(extents):
            return body(ivs, values)
        return for_loop(0, extents[depth], lambda iv, vals: level(depth + 1, [*ivs, iv], vals), values)

    return level(0, [], carried)


def fill_buffer(buffer: SSAValue, value: SSAValue) -> None:
    """`buffer[...] = value` everywhere."""
    def fill(ivs: list[SSAValue], _: Sequence[SSAValue]) -> Sequence[SSAValue]:
        store_element(value, buffer, ivs)
        return []

    loop_nest(buffer_shape(buffer), fill)


def emit_index_expr(expr: AffineExpr, ivs: Sequence[SSAValue], ranges: Sequence[Interval]) -> SSAValue:
    """Integer code for a quasi-affine expression of the induction variables.

    `floordiv`/`mod` have floor semantics (Python's); when the numerator is provably
    non-negative the cheaper truncating C operations are the same thing and are used instead.
    """
    if isinstance(expr, AffineDimExpr):
        return ivs[expr.position]
    if isinstance(expr, AffineConstantExpr):
        return index_const(expr.value)
    assert isinstance(expr, AffineBinaryOpExpr)
    lhs = emit_index_expr(expr.lhs, ivs, ranges)
    rhs = emit_index_expr(expr.rhs, ivs, ranges)
    non_negative = expr_bounds(expr.lhs, ranges)[0] >= 0
    match expr.kind:
        case AffineBinaryOpKind.Add:
            return _binary(arith.AddiOp, lhs, rhs)
        case AffineBinaryOpKind.Mul:
            return _binary(arith.MuliOp, lhs, rhs)
        case AffineBinaryOpKind.FloorDiv:
            return _binary(arith.DivSIOp if non_negative else arith.FloorDivSIOp, lhs, rhs)
        case AffineBinaryOpKind.CeilDiv:
            return _binary(arith.CeilDivSIOp, lhs, rhs)
        case AffineBinaryOpKind.Mod:
            rem = _binary(arith.RemSIOp, lhs, rhs)
            if non_negative:
                return rem
            negative = _compare("slt", rem, index_const(0))
            wrapped = _binary(arith.AddiOp, rem, rhs)
            return reused((arith.SelectOp, negative, wrapped, rem), lambda: arith.SelectOp(negative, wrapped, rem).result)
    raise AssertionError(expr.kind)


def _binary(op: type[arith.SignlessIntegerBinaryOperation], lhs: SSAValue, rhs: SSAValue) -> SSAValue:
    return reused((op, lhs, rhs), lambda: made(op, [lhs, rhs], lhs.type).results[0])


def _compare(predicate: str, lhs: SSAValue, rhs: SSAValue) -> SSAValue:
    return reused((arith.CmpiOp, predicate, lhs, rhs), lambda: arith.CmpiOp(lhs, rhs, predicate).result)


def in_bounds(indices: Sequence[SSAValue], shape: Sequence[int], unsafe: Sequence[bool]) -> SSAValue | None:
    """`0 <= i < size` for every index flagged unsafe (None when none is), one unsigned compare
    each: a negative index is a huge unsigned number."""
    cond: SSAValue | None = None
    for idx, size, check in zip(indices, shape, unsafe, strict=True):
        if not check:
            continue
        inside = _compare("ult", idx, index_const(size))
        cond = inside if cond is None else _binary(arith.AndIOp, cond, inside)
    return cond


def guarded_accumulate(buffer: SSAValue, indices: Sequence[SSAValue], unsafe: Sequence[bool], value: SSAValue) -> None:
    """`buffer[indices] += value`, skipped when an index flagged `unsafe` is outside the buffer."""
    def accumulate() -> None:
        store_element(arith.AddfOp(load_element(buffer, indices), value).result, buffer, indices)

    cond = in_bounds(indices, buffer_shape(buffer), unsafe)
    if cond is None:
        accumulate()
        return
    block = Block()
    with building(block):
        accumulate()
        scf.YieldOp()
    scf.IfOp(cond, [], [block])


def clamped_index(index: SSAValue, size: int) -> SSAValue:
    """`index` clamped into [0, size)."""
    return _binary(arith.MaxSIOp, _binary(arith.MinSIOp, index, index_const(size - 1)), index_const(0))


def guarded_load(buffer: SSAValue, indices: Sequence[SSAValue], unsafe: Sequence[bool], fill: float) -> SSAValue:
    """`buffer[indices]`, or `fill` when an index flagged `unsafe` falls outside the buffer.

    Branch-free: the load reads at the index clamped into the buffer (always a valid address),
    then a select picks the fill outside. Inner loops stay straight-line code the C compiler can
    vectorise, and no conditional load is left for it to if-convert (GCC 12 at -O3 with AVX
    if-converts guarded loads of this shape wrongly).
    """
    elt = shape_type(buffer).get_element_type()
    shape = buffer_shape(buffer)
    cond = in_bounds(indices, shape, unsafe)
    if cond is None:
        return load_element(buffer, indices)
    clamped = [clamped_index(i, n) if check else i for i, n, check in zip(indices, shape, unsafe, strict=True)]
    value = load_element(buffer, clamped)
    return arith.SelectOp(cond, value, element_const(fill, elt)).result
