"""Lowerings of the layers: convolutions (plain, binary, transposed), matmul and dense, pooling."""

from __future__ import annotations

from xdsl.ir import SSAValue

from mlc.dialects import ix, nn
from mlc.loops.compute_builders import (
    Access, Shape, Window, compute, conv, conv_transpose_scatter, int_tuple, pointwise, reduce, shape_of, window,
)
from mlc.loops.scalars import absf, add, addi, div, index, index_to_float, maxsi, minsi, mul, muli, sign, subi
from mlc.passes.lower_graph.registry import lowers, out_shape
from mlc.passes.scatter_to_gather import scatter_to_gather


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
        y[n,i,j,f]  = conv(x, sw)[n,i,j,f] * α[f]                          = conv(x, sw * α)
    xnor:
        sx[n,h,w,c] = sign(x[n,h,w,c])
        P           = conv(sx read as pad_value outside, sw)               an exact integer sum
        A[n,h,w,0]  = Σ_c |x[n,h,w,c]| * (1/C)                             mean_c |x|
        K[n,i,j,0]  = Σ_{a,b} A[n, i*sh + a*dh - pt, j*sw + b*dw - pl, 0] * (1/(KH*KW))  (0 outside)
        y[n,i,j,f]  = P[n,i,j,f] * K[n,i,j,0] * α[f]

    sign stays a compute op of its own (the unary `sign` lowering), so autodiff can give it the
    straight-through estimator; α and K are ordinary computations and are differentiated exactly.
    K keeps a size-1 channel dim so that it broadcasts over f like α broadcasts over n, i, j.
    Both modes scale after the sum: one product per output instead of one per tap, and taps
    that cancel (x - x, as overlapping pooling windows give) sum to exactly 0, whose sign a
    following binconv reads, where fma(x, -α, x * α) would leave x * α's rounding error.
    """
    x, w, win, shape, groups = op.x, op.w, Window.of(op), out_shape(op), op.group_count()
    kh, kw, c, _ = shape_of(w)
    sw = pointwise(shape_of(w), [w], sign)
    alpha = reduce([w], (0, 1, 2), absf, scale=1.0 / (kh * kw * c))
    if op.mode.data == "bwn":
        return pointwise(shape, [conv(x, sw, win, shape, groups=groups), alpha], mul)
    sx = pointwise(shape_of(x), [x], sign)
    p = conv(sx, sw, win, shape, fill=float(op.pad_value.value.data), groups=groups)
    a = reduce([x], (3,), absf, scale=1.0 / shape_of(x)[3], keepdims=True)
    k = window(a, win, (kh, kw), (*shape[:3], 1), lambda v: mul(v, 1.0 / (kh * kw)))
    return pointwise(shape, [p, k, alpha], lambda pv, kv, av: mul(mul(pv, kv), av))


@lowers(nn.Conv2DTransposeOp)
def lower_conv2d_transpose(op: nn.Conv2DTransposeOp) -> SSAValue:
    """The scatter, conv2d's read turned into a write (o the output channel, g = o floordiv Fg):

        y[n, i*sh + a*dh - pt, j*sw + b*dw - pl, o] += x[n,i,j,g*Cg + c] * w[a,b,o mod Fg,g*Cg + c]

    runs as the gather mlc-scatter-to-gather solves it into, each y element summing its own taps:

        y[n,p,q,o] = Σ_{a,b,c} x[n, (p + pt - a*dh) / sh, (q + pl - b*dw) / sw, g*Cg + c] * w[a,b,o mod Fg,g*Cg + c]

    over the taps where both divisions are exact. With strides that is one dense gather per
    phase (p mod sh, q mod sw), whose taps are exactly the valid ones (a ≡ a0 mod sh/gcd(sh, dh)),
    and an interleave of the phases; rows the division puts outside x read its zero fill, so no
    tap needs a range check. Autodiff then differentiates these gathers like any other."""
    scattered = conv_transpose_scatter(op.x, op.w, Window.of(op), out_shape(op), groups=op.group_count())
    scattered.name_hint = op.results[0].name_hint
    assert isinstance(scattered.owner, ix.ScatterOp)
    gathered = scatter_to_gather(scattered.owner)
    assert gathered is not None, "a transposed convolution's write map is affine"
    return gathered


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


@lowers(nn.BinDenseOp)
def lower_bindense(op: nn.BinDenseOp) -> SSAValue:
    """XNOR-Net's binary dense layer, with sign as in binconv2d and I the input features:

        sw[i,o] = sign(w[i,o]),   α[o] = Σ_i |w[i,o]| * (1/I)                mean |w| per output
    bwn:
        y[n,o]  = (Σ_i x[n,i] * sw[i,o]) * α[o]
    xnor:
        P[n,o]  = Σ_i sign(x[n,i]) * sw[i,o]                               an exact integer sum
        β[n,0]  = Σ_i |x[n,i]| * (1/I)                                     mean |x| per row
        y[n,o]  = P[n,o] * β[n,0] * α[o]

    binconv2d with a 1x1 image, K reduced to β: the same order of products, and P is the sum
    mlc-bitpack computes on packed words."""
    x, w, shape = op.x, op.w, out_shape(op)
    features = shape_of(w)[0]
    sw = pointwise(shape_of(w), [w], sign)
    alpha = reduce([w], (0,), absf, scale=1.0 / features)
    if op.mode.data == "bwn":
        return pointwise(shape, [matmul(x, sw, shape), alpha], mul)
    p = matmul(pointwise(shape_of(x), [x], sign), sw, shape)
    beta = reduce([x], (1,), absf, scale=1.0 / features, keepdims=True)
    return pointwise(shape, [p, beta, alpha], lambda pv, bv, av: mul(mul(pv, bv), av))


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
