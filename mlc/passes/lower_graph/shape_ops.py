"""Lowerings of the ops that move elements: reshape, concat, transpose, broadcast, slice,
upsample, pad."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from xdsl.ir import Attribute, SSAValue
from xdsl.ir.affine import AffineExpr

from mlc.dialects import nn
from mlc.loops.affine import reshape_map
from mlc.loops.compute_builders import Access, Index, compute, element_type_of, int_tuple, shape_of
from mlc.loops.scalars import add, addi, cmpi, const, index, mul, remsi, select, sub
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


@lowers(nn.BroadcastToOp)
def lower_broadcast_to(op: nn.BroadcastToOp) -> SSAValue:
    """y[i_0, ..., i_k] = x[j] with j[d] = i[lead + d], or 0 where x's dim d is 1 (lead: the
    dims y has in front of x's)"""
    source, shape = shape_of(op.x), out_shape(op)
    lead = len(shape) - len(source)
    return compute(shape, [Access(op.x, lambda *i: [0 if n == 1 else i[lead + d] for d, n in enumerate(source)])],
                   lambda v: v)


@lowers(nn.SliceOp)
def lower_slice(op: nn.SliceOp) -> SSAValue:
    """y[.., k, ..] = x[.., start + k * step, ..] (always inside x)"""
    axis, start, step = op.axis.value.data, op.start.value.data, op.step.value.data
    return compute(out_shape(op), [Access(op.x, lambda *d: [*d[:axis], start + d[axis] * step, *d[axis + 1:]])],
                   lambda v: v)


@lowers(nn.UpsampleOp)
def lower_upsample(op: nn.UpsampleOp) -> SSAValue:
    """y[n, i, j, c] = x[n, i floordiv sh, j floordiv sw, c] (nearest); bilinear below"""
    if op.interpolation() == "bilinear":
        return lower_upsample_bilinear(op)
    sh, sw = int_tuple(op.scale)
    return compute(out_shape(op), [Access(op.x, lambda n, i, j, c: [n, i // sh, j // sw, c])], lambda v: v)


@dataclass(frozen=True)
class LinearTaps:
    """Linear interpolation along one axis of `size` cells upsampled by `scale` (PyTorch's
    `align_corners=False`); the maths is in `lower_upsample_bilinear`."""

    scale: int
    size: int

    @property
    def shift(self) -> int:
        return self.scale // 2

    @property
    def count(self) -> int:
        """How many cells each output cell reads."""
        return 1 if self.scale == 1 else 2

    def reads(self, i: AffineExpr) -> list[AffineExpr]:
        """The source cells of output cell i: i itself at scale 1, else i0 and i0 + 1."""
        s, k = self.scale, self.shift
        return [i] if s == 1 else [(i - k) // s, (i - k + s) // s]

    def weights(self, i: SSAValue, elt: Attribute) -> list[SSAValue] | None:
        """The weights of the reads at output cell i (None at scale 1: one read, weight 1)."""
        s, k = self.scale, self.shift
        if s == 1:
            return None
        rho = remsi(addi(i, s - k), s)
        upper = const((2 * (s - 1) + 2 * k + 1 - s) / (2 * s), elt)
        for r in reversed(range(s - 1)):
            upper = select(cmpi("eq", rho, r), const((2 * r + 2 * k + 1 - s) / (2 * s), elt), upper)
        upper = select(cmpi("slt", i, k), const(1.0, elt), upper)
        upper = select(cmpi("sge", i, s * (self.size - 1) + k), const(0.0, elt), upper)
        return [sub(1.0, upper), upper]


def lower_upsample_bilinear(op: nn.UpsampleOp) -> SSAValue:
    """PyTorch's bilinear upsampling (align_corners=False) as one gather of four cells with
    weights that are a periodic pattern in the output index.

    Along an axis of H cells scaled by s, output cell i samples the source coordinate
    src = (i + 1/2) / s - 1/2, clamped at 0, between i0 = floor(src) and i0 + 1 (clamped to
    H - 1), with weights 1 - λ and λ, λ = src - i0. With k = s floordiv 2 and i - k = s i0 + ρ,
    0 <= ρ < s (so i0 = (i - k) floordiv s, quasi-affine):

        λ(ρ) = (2ρ + 2k + 1 - s) / (2s)     (a constant per phase ρ = (i + s - k) mod s)

    At the edges the clamps become weights: src < 0 exactly where i < k (then i0 = -1), and
    all the weight goes to i0 + 1 = 0 (λ = 1); i0 + 1 = H exactly where i >= s (H - 1) + k, and
    all of it goes to i0 = H - 1 (λ = 0). The read outside x gives 0 with weight 0. So

        y[n, i, j, c] = Σ_{a, b in {0, 1}} h_a(i) w_b(j) x[n, i0(i) + a, j0(j) + b, c]

    summed as PyTorch does, h_0 (w_0 x00 + w_1 x01) + h_1 (w_0 x10 + w_1 x11); an axis of scale 1
    reads x at i with weight 1. The body is linear in the reads with weights that are selects of
    constants, so its adjoints are exact and mlc-scatter-to-gather turns them into gathers; the
    weights depend on i and j only, so the lanes along c share them."""
    sh, sw = int_tuple(op.scale)
    _, h, w, _ = shape_of(op.x)
    rows, cols = LinearTaps(sh, h), LinearTaps(sw, w)
    elt = element_type_of(op.x)
    reads = [Access(op.x, lambda n, i, j, c, a=a, b=b: [n, rows.reads(i)[a], cols.reads(j)[b], c])
             for a in range(rows.count) for b in range(cols.count)]

    def body(*cells: SSAValue) -> SSAValue:
        row_weights, col_weights = rows.weights(index(1), elt), cols.weights(index(2), elt)
        per_row = [cells[a * cols.count : (a + 1) * cols.count] for a in range(rows.count)]
        return weighted(row_weights, [weighted(col_weights, row) for row in per_row])

    return compute(out_shape(op), reads, body)


def weighted(weights: Sequence[SSAValue] | None, values: Sequence[SSAValue]) -> SSAValue:
    """w_0 v_0 + w_1 v_1 + ..., or the one value when there are no weights."""
    if weights is None:
        (value,) = values
        return value
    total = mul(weights[0], values[0])
    for weight, value in zip(weights[1:], values[1:]):
        total = add(total, mul(weight, value))
    return total


@lowers(nn.PadOp)
def lower_pad(op: nn.PadOp) -> SSAValue:
    """y[i] = x[i - before], reading `value` outside x (the read's fill)"""
    before = op.before()
    shifted = Access(op.x, lambda *d: [v - b for v, b in zip(d, before)], op.value.value.data)
    return compute(out_shape(op), [shifted], lambda v: v)
