"""Lowerings of the ops that move elements: reshape, concat, transpose, slice, upsample, pad."""

from __future__ import annotations

from xdsl.ir import SSAValue

from mlc.dialects import nn
from mlc.loops.affine import reshape_map
from mlc.loops.compute_builders import Access, Index, compute, int_tuple, shape_of
from mlc.loops.scalars import cmpi, index, select
from mlc.passes.lower_graph.registry import lowers, out_shape


@lowers(nn.ReshapeOp)
def lower_reshape(op: nn.ReshapeOp) -> SSAValue:
    """y[i] = x[delinearise_x(linearise_y(i))] (row-major), as one quasi-affine map"""
    shape = out_shape(op)
    return compute(shape, [Access(op.x, reshape_map(shape_of(op.x), shape))], lambda v: v)


@lowers(nn.ConcatOp)
def lower_concat(op: nn.ConcatOp) -> SSAValue:
    """With o_k the offset of input k along the axis and i the axis index:
        y[.., i, ..] = i < o_1 ? x_0[.., i, ..] : i < o_2 ? x_1[.., i - o_1, ..] : ... x_m[.., i - o_m, ..]
    Each read is shifted by its offset; out of range it reads 0, so every read is safe and the
    select picks the one in range."""
    axis = op.axis.value.data
    offsets = [0]
    for v in op.inputs:
        offsets.append(offsets[-1] + shape_of(v)[axis])

    def shifted(off: int) -> Index:
        return lambda *d: [*d[:axis], d[axis] - off, *d[axis + 1 :]]

    def body(*xs: SSAValue) -> SSAValue:
        i = index(axis)
        y = xs[-1]
        for x, end in zip(reversed(xs[:-1]), reversed(offsets[1:-1])):
            y = select(cmpi("slt", i, end), x, y)
        return y

    return compute(out_shape(op), [Access(v, shifted(o)) for v, o in zip(op.inputs, offsets)], body)


@lowers(nn.TransposeOp)
def lower_transpose(op: nn.TransposeOp) -> SSAValue:
    """y[i] = x[j] with j[perm[d]] = i[d]"""
    perm = int_tuple(op.perm)
    return compute(out_shape(op), [Access(op.x, lambda *d: [d[perm.index(e)] for e in range(len(perm))])], lambda v: v)


@lowers(nn.SliceOp)
def lower_slice(op: nn.SliceOp) -> SSAValue:
    """y[.., k, ..] = x[.., start + k * step, ..] (always inside x)"""
    axis, start, step = op.axis.value.data, op.start.value.data, op.step.value.data
    return compute(out_shape(op), [Access(op.x, lambda *d: [*d[:axis], start + d[axis] * step, *d[axis + 1:]])],
                   lambda v: v)


@lowers(nn.UpsampleOp)
def lower_upsample(op: nn.UpsampleOp) -> SSAValue:
    """y[n, i, j, c] = x[n, i floordiv sh, j floordiv sw, c] (nearest)"""
    sh, sw = int_tuple(op.scale)
    return compute(out_shape(op), [Access(op.x, lambda n, i, j, c: [n, i // sh, j // sw, c])], lambda v: v)


@lowers(nn.PadOp)
def lower_pad(op: nn.PadOp) -> SSAValue:
    """y[i] = x[i - before], reading `value` outside x (the read's fill)"""
    before = op.before()
    shifted = Access(op.x, lambda *d: [v - b for v, b in zip(d, before)], op.value.value.data)
    return compute(out_shape(op), [shifted], lambda v: v)
