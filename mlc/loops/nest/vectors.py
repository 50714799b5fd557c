"""Vectors: the vectors a vectorised loop runs (full ones, then one partial vector, then a scalar),
the IR helpers for lanes, masks and ops on vectors, and the buffer and element types they use."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from functools import cache

from xdsl.dialects import arith, vector
from xdsl.dialects.builtin import Float32Type, VectorType, i1
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.ir.affine import AffineExpr

from mlc.dialects import vx
from mlc.loops.affine import coefficient, substitute
from mlc.loops.builders import element_const, index_const, made, reused
from mlc.loops.nest.space import Space


MIN_LANES = 4
"""The narrowest vectors a short vectorized loop uses (SSE's and NEON's width in f32)."""


def narrowest_lanes(lanes: int, extent: int) -> int:
    """The target's lanes, halved while more than `extent` (down to `MIN_LANES`)."""
    while lanes > MIN_LANES and lanes > extent:
        lanes //= 2
    return lanes


def vector_runs(lanes: int, extent: int) -> list[tuple[int, int]]:
    """The vectors a vectorised loop of `extent` iterations runs, as (width, active lanes): full
    ones of `lanes`, then for two or more remaining iterations one partial vector, the narrowest
    power of two (at least `MIN_LANES`) that holds them; a last single iteration is a scalar."""
    runs = [(lanes, lanes)] * (extent // lanes)
    rest = extent % lanes
    if rest >= 2:
        width = MIN_LANES
        while width < rest:
            width *= 2
        runs.append((min(width, lanes), rest))
    return runs


def vector_cells(lanes: int, extent: int) -> int:
    """Values (vectors and scalars) a vectorised loop of `extent` iterations computes."""
    runs = vector_runs(lanes, extent)
    return len(runs) + extent - sum(active for _, active in runs)


def per_lane(index: Sequence[AffineExpr], space: Space) -> list[tuple[list[AffineExpr], Space]]:
    """For each lane of a vector space: `index` at that lane, and the scalar space to read it in."""
    assert space.lane is not None
    lo = space.ranges[space.lane][0]
    scalar = replace(space, lane=None, width=1)
    found = []
    for lane in range(space.active):
        at = [AffineExpr.constant(lo + lane) if k == space.lane else AffineExpr.dimension(k) for k in range(len(space.values))]
        found.append(([substitute(e, at) for e in index], scalar))
    return found


def from_lanes(values: Sequence[SSAValue], width: int) -> SSAValue:
    """A vector of `width` lanes, lane k being `values[k]` (the lanes beyond, `values[0]`)."""
    result = broadcast(values[0], width)
    for lane, value in enumerate(values[1:], 1):
        result = vector.InsertOp(value, result, [lane]).result
    return result


def prefix_mask(active: int, width: int) -> SSAValue:
    """The mask of a partial vector: its first `active` of `width` lanes."""
    return reused((vector.CreateMaskOp, active, width),
                  lambda: vector.CreateMaskOp([index_const(active)], vector_type(i1, width)).results[0])


def vector_load(buffer: SSAValue, indices: Sequence[SSAValue], typ: VectorType, active: int) -> SSAValue:
    """A contiguous load of a vector's active lanes (the others 0)."""
    width = typ.get_shape()[0]
    if active == width:
        return made(vector.LoadOp, [buffer, *indices], typ).results[0]
    zeros = broadcast(element_const(0.0, typ.get_element_type()), width)
    return vector.MaskedLoadOp(buffer, indices, prefix_mask(active, width), zeros, typ).result


def lane_axis(shape: Sequence[int]) -> int:
    """The dim a vector walks in a buffer of `shape`: the last one longer than 1 (the dims after
    it, of one element, do not move the address: a one-channel NHWC image is contiguous along
    its width), or 0 when every dim has one element (or there is none)."""
    k = max(len(shape) - 1, 0)
    while k > 0 and shape[k] == 1:
        k -= 1
    return k


def lane_contiguous(index: Sequence[AffineExpr], space: Space, shape: Sequence[int]) -> bool:
    """The index of the lane axis (`lane_axis`) moves one element per lane and the others not at
    all: the lanes are consecutive elements of the buffer's memory."""
    if not index:
        return False
    axis = lane_axis(shape)
    if any(space.uses_lanes(e) for k, e in enumerate(index) if k != axis):
        return False
    assert space.lane is not None
    return coefficient(index[axis], space.lane) == 1


def vector_op(op: Operation, operands: Sequence[SSAValue]) -> Operation:
    """`op` on vectors: scalar operands broadcast, results vectors of the operands' width."""
    width = next(v.type.get_shape()[0] for v in operands if isinstance(v.type, VectorType))  # pyright: ignore[reportAttributeAccessIssue]
    if isinstance(op, arith.CmpfOp):
        a, b = (widened(v, width) for v in operands)
        return vx.CmpfOp(arith.CMPF_COMPARISON_OPERATIONS[op.predicate.value.data], a, b)
    if isinstance(op, arith.CmpiOp):
        a, b = (widened(v, width) for v in operands)
        return vx.CmpiOp(arith.CMPI_COMPARISON_OPERATIONS[op.predicate.value.data], a, b)
    if isinstance(op, arith.SIToFPOp):
        return vx.SIToFPOp(operands[0], vector_type(op.result.type, width))
    if isinstance(op, arith.SelectOp) and isinstance(operands[0].type, VectorType):
        return vx.SelectOp(*(widened(v, width) for v in operands))
    if isinstance(op, arith.SelectOp):
        operands = [operands[0], *(widened(v, width) for v in operands[1:])]
    else:
        operands = [widened(v, width) for v in operands]
    results = [vector_type(r.type, width) for r in op.results]
    return type(op).create(operands=operands, result_types=results, properties=dict(op.properties),
                           attributes=dict(op.attributes))


def widened(value: SSAValue, width: int) -> SSAValue:
    if width == 1 or isinstance(value.type, VectorType):
        return value
    return broadcast(value, width)


def broadcast(value: SSAValue, width: int) -> SSAValue:
    """`value` in every lane of a vector (built once where it dominates: `reused`)."""
    return reused((vector.BroadcastOp, value, width),
                  lambda: made(vector.BroadcastOp, [value], vector_type(value.type, width)).results[0])


@cache
def vector_type(element: Attribute, width: int) -> VectorType:
    """The type of a vector of `width` elements (made once: building a type verifies it)."""
    return VectorType(element, [width])


def element_bytes(elt: Attribute) -> int:
    return 4 if isinstance(elt, Float32Type) else getattr(elt, "bitwidth", 64) // 8
