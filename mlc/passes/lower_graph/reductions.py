"""Lowerings of the reductions over axes: sum, mean, max/min, the softmax family and the norms."""

from __future__ import annotations

from math import prod

from xdsl.ir import SSAValue

from mlc.dialects import nn
from mlc.loops.compute_builders import int_tuple, pointwise, reduce, shape_of
from mlc.loops.scalars import add, div, exp, log, mul, neg, sqrt, sub
from mlc.graph.locations import fail, op_location
from mlc.passes.lower_graph.registry import StateUpdate, lowers, lowers_in_training, out_shape


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
    return batch_normalised(op)[0]


def batch_normalised(op: nn.BatchNormOp | nn.RunningBatchNormOp) -> tuple[SSAValue, SSAValue, SSAValue]:
    """y, μ and σ² (biased) of `lower_batchnorm`."""
    shape = shape_of(op.x)
    leading = range(len(shape) - 1)
    inv_m = 1.0 / prod(shape[:-1])
    eps = op.eps.value.data
    mu = reduce([op.x], leading, lambda v: v, scale=inv_m)
    xc = pointwise(shape, [op.x, mu], sub)
    var = reduce([xc], leading, lambda v: mul(v, v), scale=inv_m)
    y = pointwise(
        shape,
        [xc, var, op.gamma, op.beta],
        lambda xv, vv, g, b: add(mul(div(xv, sqrt(add(vv, eps))), g), b),
    )
    return y, mu, var


@lowers(nn.RunningBatchNormOp)
def lower_running_batchnorm(op: nn.RunningBatchNormOp) -> SSAValue:
    """Inference mode, with the running statistics M and V (one elementwise op):
        y[.., c] = (x[.., c] - M[c]) / sqrt(V[c] + eps) * γ[c] + β[c]
    """
    eps = op.eps.value.data
    return pointwise(
        shape_of(op.x),
        [op.x, op.mean, op.var, op.gamma, op.beta],
        lambda xv, m, v, g, b: add(mul(div(sub(xv, m), sqrt(add(v, eps))), g), b),
    )


@lowers_in_training(nn.RunningBatchNormOp)
def lower_running_batchnorm_training(op: nn.RunningBatchNormOp) -> tuple[SSAValue, list[StateUpdate]]:
    """Training mode: y, μ and σ² as `lower_batchnorm` (M elements per channel), and the states'
    updates in PyTorch's order of operations:
        M'[c] = momentum * μ[c] + (1 - momentum) * M[c]
        V'[c] = momentum * (σ²[c] * (M / (M - 1))) + (1 - momentum) * V[c]      unbiased variance
    """
    count = prod(shape_of(op.x)[:-1])
    if count < 2:
        fail(op_location(op), f"batchnorm: training mode needs more than 1 value per channel, got input {nn.fmt(op.x.type)}")
    y, mu, var = batch_normalised(op)
    rate, keep, unbias = op.momentum.value.data, 1.0 - op.momentum.value.data, count / (count - 1)
    new_mean = pointwise((shape_of(op.x)[-1],), [mu, op.mean], lambda b, m: add(mul(b, rate), mul(m, keep)))
    new_var = pointwise(
        (shape_of(op.x)[-1],), [var, op.var], lambda b, v: add(mul(mul(b, unbias), rate), mul(v, keep))
    )
    return y, [(op.mean, new_mean), (op.var, new_var)]


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
