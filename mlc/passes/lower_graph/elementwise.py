"""Lowerings of the elementwise ops: unary functions, activations with options, binary ops, constants."""

from __future__ import annotations

from collections.abc import Callable

from xdsl.ir import Operation, SSAValue

from mlc.dialects import nn
from mlc.loops.compute_builders import compute, pointwise
from mlc.loops.scalars import FUNCTIONS, add, clamp_between, const, div, gelu, gelu_tanh, maximum, minimum, mul, powf, sub
from mlc.passes.lower_graph.registry import lowers, out_shape


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


@lowers(nn.GeluOp)
def lower_gelu(op: nn.GeluOp) -> SSAValue:
    """y[i] = x[i] (1 + erf(x[i] / sqrt 2)) / 2, or its tanh form (`mlc.loops.scalars.gelu*`)"""
    return pointwise(out_shape(op), [op.x], gelu_tanh if op.approximation() == "tanh" else gelu)


@lowers(nn.ClampTensorOp)
def lower_clamp_tensor(op: nn.ClampTensorOp) -> SSAValue:
    """y[i] = min(max(x[bcast_x(i)], lo[bcast_lo(i)]), hi[bcast_hi(i)]), with torch.clamp's
    gradients (`mlc.loops.scalars.clamp_between`)"""
    return pointwise(out_shape(op), [op.x, op.lo, op.hi], clamp_between)


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
