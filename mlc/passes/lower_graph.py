"""`mlc-lower-graph`: every `nn` op becomes one or more `ix.compute` ops (tensors in, tensors out).

Each lowering below states what its compute ops compute in index notation, then builds them.
Notation: `y[i]` is the output element at iteration point `i`; `Σ_r` / `max_r` range over the
reduction variables; `x[...]` outside `x` reads 0 unless a fill is given.

The lowerings run inside an `ImplicitBuilder` placed just before the `nn` op, so every op they
create (the compute ops, and inside each body the scalar ops) lands there in program order.
The builders of `mlc.loops.compute_builders` (`compute`, `pointwise`, `reduce`, `window`,
`conv`) carry the boilerplate.
Bodies use only the scalar ops the backends support, through the scalar body builders below.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from math import prod
from typing import Any, TypeVar

from xdsl.builder import Builder, ImplicitBuilder
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

from mlc.dialects import nn
from mlc.loops.affine import reshape_map
from mlc.loops.compute_builders import (
    Access, Index, Shape, Window, compute, conv, int_tuple, pointwise, reduce, shape_of, window,
)
from mlc.loops.scalars import (
    FUNCTIONS, absf, add, addi, cmpf, cmpi, const, div, exp, index, index_to_float, log, maxsi,
    maximum, minimum, minsi, mul, muli, neg, powf, select, sign, sqrt, sub, subi,
)

# ---------------------------------------------------------------------------------------------
# Lowerings, one per nn op or family
# ---------------------------------------------------------------------------------------------
Lowering = Callable[[Any], SSAValue]
"""Builds the compute ops of one nn op (at the implicit insertion point); returns its value."""
LOWERINGS: dict[type[Operation], Lowering] = {}
"""nn op class -> its lowering."""

L = TypeVar("L", bound=Lowering)


def lowers(*classes: type[Operation]) -> Callable[[L], L]:
    """Register the decorated function as the lowering of `classes`."""

    def register(fn: L) -> L:
        for cls in classes:
            LOWERINGS[cls] = fn
        return fn

    return register


def out_shape(op: Operation) -> Shape:
    return shape_of(op.results[0])


@lowers(nn.Conv2DOp)
def lower_conv2d(op: nn.Conv2DOp) -> SSAValue:
    """y[n,i,j,f] = Σ_{a,b,c} x[n, i*sh + a*dh - pt, j*sw + b*dw - pl, c] * w[a,b,c,f]  (0 outside x)"""
    return conv(op.x, op.w, Window.of(op), out_shape(op), groups=op.group_count())


@lowers(nn.BinConv2DOp)
def lower_binconv2d(op: nn.BinConv2DOp) -> SSAValue:
    """XNOR-Net, with sign(v) = v >= 0 ? 1 : -1 and M = KH*KW*C:

        sw[a,b,c,f] = sign(w[a,b,c,f])
        α[f]        = Σ_{a,b,c} |w[a,b,c,f]| * (1/M)                      mean |w| per filter
    bwn:
        wb[a,b,c,f] = sw[a,b,c,f] * α[f]
        y           = conv(x, wb)
    xnor:
        sx[n,h,w,c] = sign(x[n,h,w,c])
        P           = conv(sx read as pad_value outside, sw)               an exact integer sum
        A[n,h,w,0]  = Σ_c |x[n,h,w,c]| * (1/C)                             mean_c |x|
        K[n,i,j,0]  = Σ_{a,b} A[n, i*sh + a*dh - pt, j*sw + b*dw - pl, 0] * (1/(KH*KW))  (0 outside)
        y[n,i,j,f]  = P[n,i,j,f] * K[n,i,j,0] * α[f]

    sign stays a compute op of its own (the unary `sign` lowering), so autodiff can give it the
    straight-through estimator; α and K are ordinary computations and are differentiated exactly.
    K keeps a size-1 channel dim so that it broadcasts over f like α broadcasts over n, i, j.
    """
    x, w, win, shape, groups = op.x, op.w, Window.of(op), out_shape(op), op.group_count()
    kh, kw, c, _ = shape_of(w)
    sw = pointwise(shape_of(w), [w], sign)
    alpha = reduce([w], (0, 1, 2), absf, scale=1.0 / (kh * kw * c))
    if op.mode.data == "bwn":
        return conv(x, pointwise(shape_of(w), [sw, alpha], mul), win, shape, groups=groups)
    sx = pointwise(shape_of(x), [x], sign)
    p = conv(sx, sw, win, shape, fill=float(op.pad_value.value.data), groups=groups)
    a = reduce([x], (3,), absf, scale=1.0 / shape_of(x)[3], keepdims=True)
    k = window(a, win, (kh, kw), (*shape[:3], 1), lambda v: mul(v, 1.0 / (kh * kw)))
    return pointwise(shape, [p, k, alpha], lambda pv, kv, av: mul(mul(pv, kv), av))


@lowers(nn.MatmulOp)
def lower_matmul(op: nn.MatmulOp) -> SSAValue:
    """y[m,n] = Σ_k a[m,k] * b[k,n]"""
    return matmul(op.lhs, op.rhs, out_shape(op))


def matmul(a: SSAValue, b: SSAValue, shape: Shape) -> SSAValue:
    return compute(
        shape,
        [Access(a, lambda m, n, k: [m, k]), Access(b, lambda m, n, k: [k, n])],
        mul,
        reduction="sum",
        extents=(shape_of(a)[1],),
    )


@lowers(nn.DenseOp)
def lower_dense(op: nn.DenseOp) -> SSAValue:
    """y[n,o] = Σ_i x[n,i] * w[i,o];  then y[n,o] + b[o] when there is a bias"""
    y = matmul(op.x, op.w, out_shape(op))
    return y if op.b is None else pointwise(out_shape(op), [y, op.b], add)


@lowers(nn.MaxPool2DOp)
def lower_maxpool2d(op: nn.MaxPool2DOp) -> SSAValue:
    """y[n,i,j,c] = max_{a,b} x[n, i*sh + a*dh - pt, j*sw + b*dw - pl, c], padded cells read as -inf
    (so they never win: every window holds at least one real cell), and so do the cells of a
    ceil_mode window beyond the padding"""
    return window(op.x, Window.of(op), int_tuple(op.size), out_shape(op), lambda v: v, kind="max", fill=float("-inf"))


@lowers(nn.AvgPool2DOp)
def lower_avgpool2d(op: nn.AvgPool2DOp) -> SSAValue:
    """y[n,i,j,c] = Σ_{a,b} x[n, i*sh + a - pt, j*sw + b - pl, c] / count(i, j), padded cells 0,
    count(i, j) = rows(i) * cols(j) the in-bounds cells of the window (TensorFlow), where
    rows(i) = min(i*sh - pt + KH, H) - max(i*sh - pt, 0), and likewise cols(j).
    Without padding every window is inside, so count = KH*KW.
    With count_pad (PyTorch's count_include_pad) the padding counts and only the cells of a
    ceil_mode window beyond it do not: rows(i) = min(i*sh - pt + KH, H + pb) - (i*sh - pt)."""
    (kh, kw), (sh, sw) = int_tuple(op.size), int_tuple(op.stride)
    pt, pb, pl, pr = int_tuple(op.padding)
    _, h, w, _ = shape_of(op.x)
    ho, wo = out_shape(op)[1:3]
    elt = op.element_type()
    count_pad = op.count_pad is not None
    if count_pad:  # the window's cells inside [-pt, H + pb): the padded input's bounds
        low, (high_h, high_w) = (-pt, -pl), (h + pb, w + pr)
    else:  # its cells inside the input
        low, (high_h, high_w) = (0, 0), (h, w)
    beyond = (ho - 1) * sh - pt + kh > high_h or (wo - 1) * sw - pl + kw > high_w  # a ceil_mode window
    constant = not beyond and (count_pad or not any(int_tuple(op.padding)))

    def inside(dim: int, stride: int, pad: int, k: int, lo: int, hi: int) -> SSAValue:
        start = index(dim)
        start = start if stride == 1 else muli(start, stride)
        start = start if pad == 0 else subi(start, pad)
        return subi(minsi(addi(start, k), hi), maxsi(start, lo))

    def body(v: SSAValue) -> SSAValue:
        if constant:
            return mul(v, 1.0 / (kh * kw))
        cells = muli(inside(1, sh, pt, kh, low[0], high_h), inside(2, sw, pl, kw, low[1], high_w))
        return div(v, index_to_float(cells, elt))

    return window(op.x, Window.of(op), (kh, kw), out_shape(op), body)


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


UNARY_BODIES: dict[type[Operation], Callable[[SSAValue], SSAValue]] = {
    cls: FUNCTIONS[name] for name, cls in nn.UNARY.items()
}
"""Each unary nn op's body is the scalar function of the same name."""

BINARY_BODIES: dict[type[Operation], Callable[[SSAValue, SSAValue], SSAValue]] = {
    nn.AddOp: add,
    nn.SubOp: sub,
    nn.MulOp: mul,
    nn.DivOp: div,
    nn.MaximumOp: maximum,
    nn.MinimumOp: minimum,
    nn.PowOp: powf,
}


@lowers(*UNARY_BODIES)
def lower_unary(op: nn.UnaryOp) -> SSAValue:
    """y[i] = f(x[i])"""
    return pointwise(out_shape(op), [op.x], UNARY_BODIES[type(op)])


@lowers(*nn.ACTIVATIONS.values())
def lower_activation(op: nn.ActivationOp) -> SSAValue:
    """y[i] = f(x[i], *options) with the scalar function of the op's name"""
    function, options = FUNCTIONS[op.name.split(".")[1]], op.options()
    return pointwise(out_shape(op), [op.x], lambda v: function(v, *options))


@lowers(*BINARY_BODIES)
def lower_binary(op: nn.BinaryOp) -> SSAValue:
    """y[i] = a[bcast_a(i)] ∘ b[bcast_b(i)] (NumPy broadcasting in the read maps)"""
    return pointwise(out_shape(op), [op.lhs, op.rhs], BINARY_BODIES[type(op)])


@lowers(nn.ConstantOp)
def lower_constant(op: nn.ConstantOp) -> SSAValue:
    """y[] = value  (rank 0, no reads)"""
    elt = op.element_type()
    return compute((), [], lambda: const(op.value.value.data, elt), element_type=elt)


@lowers(nn.SumOp)
def lower_sum(op: nn.SumOp) -> SSAValue:
    """y[kept] = Σ_{axes} x[...]"""
    return reduce([op.x], int_tuple(op.axes), lambda v: v)


@lowers(nn.MeanOp)
def lower_mean(op: nn.MeanOp) -> SSAValue:
    """y[kept] = Σ_{axes} x[...] * (1/M), M = the number of reduced elements"""
    axes = int_tuple(op.axes)
    return reduce([op.x], axes, lambda v: v, scale=1.0 / prod(shape_of(op.x)[k] for k in axes))


@lowers(nn.MaxOp, nn.MinOp)
def lower_max_min(op: nn.MaxOp | nn.MinOp) -> SSAValue:
    """max: y[kept] = max_{axes} x[...];  min: y[kept] = -max_{axes} (-x[...]) (negation is exact,
    and the first maximal -x is the first minimal x, where the gradient goes)"""
    axes = int_tuple(op.axes)
    if isinstance(op, nn.MaxOp):
        return reduce([op.x], axes, lambda v: v, kind="max")
    largest = reduce([op.x], axes, neg, kind="max")
    return pointwise(out_shape(op), [largest], neg)


def shifted_logits(x: SSAValue) -> tuple[SSAValue, SSAValue]:
    """Over the last axis (r), for the numerically stable softmax family:
        m[.., 0] = max_r x[.., r]
        z[.., k] = x[.., k] - m[.., 0]
        s[.., 0] = Σ_r exp(z[.., r])
    m and s keep the last axis with size 1, so they broadcast against x."""
    last = len(shape_of(x)) - 1
    m = reduce([x], (last,), lambda v: v, kind="max", keepdims=True)
    z = pointwise(shape_of(x), [x, m], sub)
    s = reduce([z], (last,), exp, keepdims=True)
    return z, s


@lowers(nn.SoftmaxOp)
def lower_softmax(op: nn.SoftmaxOp) -> SSAValue:
    """y[.., k] = exp(z[.., k]) / s[.., 0]  (see `shifted_logits`)"""
    z, s = shifted_logits(op.x)
    return pointwise(out_shape(op), [z, s], lambda zv, sv: div(exp(zv), sv))


def log_softmax(x: SSAValue) -> SSAValue:
    """y[.., k] = z[.., k] - log(s[.., 0])  (see `shifted_logits`)"""
    z, s = shifted_logits(x)
    return pointwise(shape_of(x), [z, s], lambda zv, sv: sub(zv, log(sv)))


@lowers(nn.LogSoftmaxOp)
def lower_log_softmax(op: nn.LogSoftmaxOp) -> SSAValue:
    return log_softmax(op.x)


@lowers(nn.BatchNormOp)
def lower_batchnorm(op: nn.BatchNormOp) -> SSAValue:
    """Statistics over all axes but the last (channel c), M elements per channel, two passes:
        μ[c]      = Σ_{r..} x[r.., c] * (1/M)
        xc[.., c] = x[.., c] - μ[c]
        σ²[c]     = Σ_{r..} xc[r.., c]² * (1/M)                     biased
        y[.., c]  = xc[.., c] / sqrt(σ²[c] + eps) * γ[c] + β[c]
    """
    shape = shape_of(op.x)
    leading = range(len(shape) - 1)
    inv_m = 1.0 / prod(shape[:-1])
    eps = op.eps.value.data
    mu = reduce([op.x], leading, lambda v: v, scale=inv_m)
    xc = pointwise(shape, [op.x, mu], sub)
    var = reduce([xc], leading, lambda v: mul(v, v), scale=inv_m)
    return pointwise(
        shape,
        [xc, var, op.gamma, op.beta],
        lambda xv, vv, g, b: add(mul(div(xv, sqrt(add(vv, eps))), g), b),
    )


@lowers(nn.LayerNormOp)
def lower_layernorm(op: nn.LayerNormOp) -> SSAValue:
    """Statistics over the last `axes` dims (M elements per row), kept as size-1 dims:
        μ[n.., 1..]  = Σ_{r..} x[n.., r..] * (1/M)
        xc           = x - μ
        σ²[n.., 1..] = Σ_{r..} xc[n.., r..]² * (1/M)                   biased
        y            = xc / sqrt(σ² + eps) * γ + β                     γ, β broadcast over n..
    """
    shape = shape_of(op.x)
    trailing = range(len(shape) - op.axes.value.data, len(shape))
    inv_m = 1.0 / prod(shape[k] for k in trailing)
    eps = op.eps.value.data
    mu = reduce([op.x], trailing, lambda v: v, scale=inv_m, keepdims=True)
    xc = pointwise(shape, [op.x, mu], sub)
    var = reduce([xc], trailing, lambda v: mul(v, v), scale=inv_m, keepdims=True)
    return pointwise(
        shape,
        [xc, var, op.gamma, op.beta],
        lambda xv, vv, g, b: add(mul(div(xv, sqrt(add(vv, eps))), g), b),
    )


def total(operands: Sequence[SSAValue], term: Callable[..., SSAValue], scale: float) -> SSAValue:
    """y[] = Σ_{all r} term(a[r], b[r], ...) * scale: the losses' reduction to a scalar."""
    return reduce(operands, range(len(shape_of(operands[0]))), term, scale=scale)


@lowers(nn.MSEOp)
def lower_mse(op: nn.MSEOp) -> SSAValue:
    """y[] = Σ_r (t[r] - p[r])² * (1/numel)"""

    def term(p: SSAValue, t: SSAValue) -> SSAValue:
        d = sub(t, p)
        return mul(d, d)

    return total([op.lhs, op.rhs], term, 1.0 / prod(shape_of(op.lhs)))


@lowers(nn.BCEOp)
def lower_bce(op: nn.BCEOp) -> SSAValue:
    """y[] = Σ_r (t·max(log p, -100) + (1 - t)·max(log(1 - p), -100)) * (-1/N), N = first dim"""

    def term(p: SSAValue, t: SSAValue) -> SSAValue:
        log_p = maximum(log(p), -100.0)
        log_q = maximum(log(sub(1.0, p)), -100.0)
        return add(mul(t, log_p), mul(sub(1.0, t), log_q))

    return total([op.lhs, op.rhs], term, -1.0 / shape_of(op.lhs)[0])


@lowers(nn.BCELogitsOp)
def lower_bce_logits(op: nn.BCELogitsOp) -> SSAValue:
    """y[] = Σ_r (max(z, 0) + log(1 + exp(-|z|)) - z·t) * (1/N), N = first dim, with the first two
    terms as z > 0 ? z + log(1 + exp(-z)) : log(1 + exp(z)): the same numbers, and each branch
    smooth, so the gradient is sigmoid(z) - t at z = 0 too (a kink of max or |z| would give 1 or 0)"""

    def term(z: SSAValue, t: SSAValue) -> SSAValue:
        softplus = select(cmpf("ogt", z, 0.0), add(z, log(add(1.0, exp(neg(z))))), log(add(1.0, exp(z))))
        return sub(softplus, mul(z, t))

    return total([op.lhs, op.rhs], term, 1.0 / shape_of(op.lhs)[0])


@lowers(nn.SoftmaxCrossEntropyOp)
def lower_softmax_cross_entropy(op: nn.SoftmaxCrossEntropyOp) -> SSAValue:
    """y[] = Σ_{n,k} t[n,k] * log_softmax(logits)[n,k] * (-1/N)"""
    return total([log_softmax(op.lhs), op.rhs], lambda ls, t: mul(t, ls), -1.0 / shape_of(op.lhs)[0])


@lowers(nn.KLNormalOp)
def lower_kl_normal(op: nn.KLNormalOp) -> SSAValue:
    """y[] = Σ_{n,j} (μ² + exp(logvar) - logvar - 1) * (0.5/N)"""

    def term(mu: SSAValue, logvar: SSAValue) -> SSAValue:
        return sub(sub(add(mul(mu, mu), exp(logvar)), logvar), 1.0)

    return total([op.lhs, op.rhs], term, 0.5 / shape_of(op.lhs)[0])


# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LowerGraphPass(ModulePass):
    """Replace every `nn` op by the compute ops of its lowering; everything else is left alone."""

    name = "mlc-lower-graph"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for graph_op in [o for o in op.walk() if isinstance(o, nn.GraphOp)]:
            lower = LOWERINGS.get(type(graph_op))
            if lower is None:
                raise NotImplementedError(f"mlc-lower-graph: no lowering for {graph_op.name}")
            with ImplicitBuilder(Builder(InsertPoint.before(graph_op))):
                value = lower(graph_op)
            Rewriter.replace_op(graph_op, [], [value])
