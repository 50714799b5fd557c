"""Lowerings of the losses, each a reduction of all elements to a scalar."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from math import prod

from xdsl.ir import SSAValue

from mlc.dialects import nn
from mlc.loops.compute_builders import pointwise, reduce, shape_of
from mlc.loops.scalars import add, cmpf, exp, log, maximum, mul, neg, select, sub
from mlc.passes.lower_graph.reductions import log_softmax
from mlc.passes.lower_graph.registry import lowers


def total(operands: Sequence[SSAValue], term: Callable[..., SSAValue], scale: float) -> SSAValue:
    """y[] = Σ_{all r} e[r] * scale, e[r] = term(a[r], b[r], ...): the losses' reduction to a
    scalar. The terms are an op of their own, so that the scheduler can compute them in vectors
    (logs and exps) when the sum, one value, runs in scalars; it inlines cheap ones."""
    shape = shape_of(operands[0])
    return reduce([pointwise(shape, operands, term)], range(len(shape)), lambda e: e, scale=scale)


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
