"""`mlc-autodiff`: reverse-mode differentiation of index-level model functions.

For a model function `@m` (after `mlc-lower-graph`) this adds `@m_grad`, taking the same
arguments and returning `@m`'s outputs followed by the gradient of the loss with respect to each
chosen argument, named `grad.<argument>` (a dot never occurs in a source name, so these names
cannot collide with the model's; `wrt=params|inputs|all`; the loss is the first output unless
`loss=NAME`).

With `vjp=true` there is no loss: `@m_grad` takes, after `@m`'s arguments, one more input per
output, its cotangent `cot.<output>` (of the output's shape), and returns the vector-Jacobian
product Σ_o cot.o · d o / d argument as `grad.<argument>`: what a framework's backward pass
(PyTorch's autograd.Function, JAX's vjp) asks of a compiled forward. Outputs may then have any
shape. The state updates of a training-mode function (`new.<state>`) get no cotangent.

The adjoint of a compute op `y[d] = R_r body(x_0[m_0(d, r)], ..., x_n[m_n(d, r)])` with respect to
its read `k` follows from the chain rule, one iteration point at a time:

    dx_k[m_k(d, r)] += dy[d] * d body / d a_k (d, r)          (R = none or sum)
    dx_k[m_k(d, r)] += dy[d] * [r = argmax(d)] * d body / d a_k   (R = max: first maximum)

It is a *scatter* over the forward's iteration space: an `ix.scatter` with the forward read map as
its write map. `mlc-scatter-to-gather` later turns it into a gather where the maps allow. The
partial derivative `d body / d a_k` is a forward-mode sweep over the scalar body with the rules
of `mlc.scalars` (so `sign` gets its straight-through estimator). The body is recomputed inside
the adjoint from the same reads rather than stored: what to keep is checkpointing's business.
The adjoint of a value read several times is the sum of the contributions.

Every compute op of `@m_grad` carries a discardable `mlc.phase`: `"forward"` on the clone of
`@m`'s ops, `"backward"` on everything the adjoint adds (the seed, the scatters, argmax and sum
ops). Nothing here reads it; it tells later passes (memory planning, checkpointing) which values
the backward keeps alive. Every backward op made while differentiating a forward op also carries
`mlc.adjoint_of`, the position of that forward op among the compute ops of `@m_grad` (the seed
belongs to the loss's op; the final sums over several uses of an argument carry none):
mlc-checkpoint groups the backward by it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from math import prod

from xdsl.builder import ImplicitBuilder
from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import ArrayAttr, IntegerAttr, ModuleOp, StringAttr, TensorType, i64
from xdsl.ir import Block, BlockArgument, Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.utils.exceptions import PassFailedException

from mlc.loops import scalars
from mlc.loops.affine import make_map, dims
from mlc.dialects import ix, nn
from mlc.graph.locations import fail, output_location
from mlc.graph.signature import ModelSignature, TensorSpec, is_model

WRT = ("params", "inputs", "all")

ADJOINT_OF = "mlc.adjoint_of"
"""The discardable attribute naming (by position) the forward op a backward op differentiates."""

PHASE = "mlc.phase"
"""The discardable attribute saying which part of a training function a compute op belongs to:
`forward`, `backward` (set here) or `update` (set by mlc-optimizer)."""


@dataclass(frozen=True)
class AutodiffPass(ModulePass):
    """Add `@<model>_grad`: the model's outputs and the loss gradients (reverse mode, scatter form)."""

    name = "mlc-autodiff"

    loss: str = ""
    """The output to differentiate; the first output when empty."""
    wrt: str = "params"
    """Which arguments get gradients: params, inputs or all."""
    vjp: bool = False
    """Take every output's cotangent as an input and return the vector-Jacobian product."""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if self.wrt not in WRT:
            raise PassFailedException(f"mlc-autodiff: wrt must be one of {', '.join(WRT)}, got '{self.wrt}'")
        if self.vjp and self.loss:
            raise PassFailedException("mlc-autodiff: vjp=true differentiates every output; it takes no loss")
        for f in [o for o in op.ops if isinstance(o, func.FuncOp) and is_model(o) and "mlc.grad_of" not in o.attributes]:
            grad = differentiate(f, self.loss, self.wrt, self.vjp)
            op.body.block.insert_op_after(grad, f)


def differentiate(f: func.FuncOp, loss: str, wrt: str, vjp: bool = False) -> func.FuncOp:
    """Build `@<f>_grad` (see the module docstring)."""
    sig = ModelSignature.of(f)
    outputs = [o.name for o in sig.outputs]
    loss = loss or outputs[0]
    if loss not in outputs:
        raise PassFailedException(f"mlc-autodiff: @{sig.name} has no output '{loss}' (outputs: {', '.join(outputs)})")
    chosen = [k for k, a in enumerate(sig.args) if a.kind == wrt.rstrip("s") or (wrt == "all" and a.kind in ("param", "input"))]
    states = {s.name for s in sig.states}
    seeded = [k for k, o in enumerate(outputs) if not (o.startswith("new.") and o.removeprefix("new.") in states)]

    grad = f.clone()
    grad.sym_name = StringAttr(f"{sig.name}_grad")
    block = grad.body.block
    ret = block.last_op
    assert isinstance(ret, func.ReturnOp)
    for op in block.ops:
        if not isinstance(op, ix.ComputeOp | func.ReturnOp):
            raise PassFailedException(f"mlc-autodiff: '{op.name}' in @{sig.name} is not index-level; run mlc-lower-graph first")
        if isinstance(op, ix.ComputeOp):
            op.attributes[PHASE] = StringAttr("forward")
    cotangents = [block.insert_arg(ret.arguments[k].type, len(block.args)) for k in seeded] if vjp else []
    for k, cotangent in zip(seeded, cotangents):
        cotangent.name_hint = f"cot_{outputs[k]}"
    if not vjp:
        loss_value = ret.arguments[outputs.index(loss)]
        loss_type = loss_value.type
        assert isinstance(loss_type, TensorType)
        if loss_type.get_num_dims() != 0:
            which = f"the first output '{loss}' is the loss and" if loss == outputs[0] else f"the loss '{loss}'"
            fail(output_location(f, outputs.index(loss)),
                 f"{which} must be a scalar when the model is differentiated, got {nn.fmt(loss_type)}")

    targets = [block.args[k] for k in chosen]
    active = _active(block, targets)
    builder_block = Block()
    with ImplicitBuilder(builder_block):
        if vjp:
            seeds: dict[SSAValue, list[SSAValue]] = {}
            for k, cotangent in zip(seeded, cotangents, strict=True):
                seeds.setdefault(ret.arguments[k], []).append(cotangent)
        else:
            seeds = {loss_value: [_ones_like(loss_value)]}
        adjoints = _backward(block, seeds, active, builder_block)
        grads = [total_adjoint(adjoints.get(arg, []), arg) for arg in targets]
    ret.detach()
    for op in list(builder_block.ops):
        op.detach()
        if isinstance(op, ix.IndexNotationOp):
            op.attributes[PHASE] = StringAttr("backward")
        block.add_op(op)
    block.add_op(func.ReturnOp(*ret.arguments, *grads))
    ret.erase()
    grad.function_type = func.FunctionType.from_lists([a.type for a in block.args], [v.type for v in (*ret.arguments, *grads)])

    grad_specs = tuple(TensorSpec(f"grad.{sig.args[k].name}", sig.args[k].shape, sig.args[k].dtype, "output") for k in chosen)
    cot_specs = tuple(TensorSpec(f"cot.{outputs[k]}", sig.outputs[k].shape, sig.outputs[k].dtype, "input") for k in seeded) if vjp else ()
    ModelSignature(grad.sym_name.data, (*sig.args, *cot_specs), (*sig.outputs, *grad_specs)).attach(grad)
    grad.attributes["mlc.grad_of"] = _names([sig.args[k].name for k in chosen])
    grad.attributes["mlc.loss"] = _names([] if vjp else [loss])
    return grad


def _names(items: list[str]) -> ArrayAttr[StringAttr]:
    return ArrayAttr([StringAttr(s) for s in items])


def _active(block: Block, targets: Sequence[SSAValue]) -> set[SSAValue]:
    """Values that depend on a differentiated argument (only they need adjoints)."""
    active = set(targets)
    for op in block.ops:
        if isinstance(op, ix.ComputeOp) and any(v in active for v in op.inputs):
            active.add(op.result)
    return active


def _backward(block: Block, seeds: dict[SSAValue, list[SSAValue]], active: set[SSAValue],
              tape: Block) -> dict[SSAValue, list[SSAValue]]:
    """Propagate adjoints from the `seeds` (the loss's ones, or the outputs' cotangents) through
    the compute ops in reverse order (the new ops go to `tape`, each tagged with `mlc.adjoint_of`)."""
    position = {op: k for k, op in enumerate(o for o in block.ops if isinstance(o, ix.ComputeOp))}
    adjoints = {value: list(parts) for value, parts in seeds.items()}
    if tape.first_op is not None and isinstance(owner := next(iter(seeds)).owner, ix.ComputeOp):
        _tag_since(tape, None, position[owner])  # the loss's seed (its ones) belongs to the loss's op
    for op in reversed(list(block.ops)):
        if not isinstance(op, ix.ComputeOp) or op.result not in adjoints:
            continue
        last = tape.last_op
        dy = total_adjoint(adjoints[op.result], op.result)
        argmax = first_argmax(op) if op.reduction.data == "max" else None
        for k, read in enumerate(op.reads):
            if read.value not in active:
                continue
            contribution = adjoint_of_read(op, k, dy, argmax)
            if contribution is not None:
                adjoints.setdefault(read.value, []).append(contribution)
        _tag_since(tape, last, position[op])
    return adjoints


def _tag_since(tape: Block, last: Operation | None, forward_position: int) -> None:
    """Mark the ops of `tape` after `last` (all of them when None) as adjoints of one forward op."""
    op = tape.first_op if last is None else last.next_op
    while op is not None:
        op.attributes[ADJOINT_OF] = IntegerAttr(forward_position, i64)
        op = op.next_op


def _ones_like(v: SSAValue) -> SSAValue:
    t = v.type
    assert isinstance(t, TensorType)
    return ix.ComputeOp.build(t, [], lambda _: scalars.const(1.0, t.get_element_type())).result


def total_adjoint(parts: list[SSAValue], like: SSAValue) -> SSAValue:
    """The sum of the contributions to one adjoint (zeros when there are none)."""
    t = like.type
    assert isinstance(t, TensorType)
    if len(parts) == 1:
        return parts[0]
    identity = make_map(t.get_num_dims(), dims(t.get_num_dims()))
    reads = [ix.Read(p, identity) for p in parts]

    def body(xs: Sequence[SSAValue]) -> SSAValue:
        if not xs:
            return scalars.const(0.0, t.get_element_type())
        total = xs[0]
        for x in xs[1:]:
            total = scalars.add(total, x)
        return total

    return ix.ComputeOp.build(t, reads, body).result


def _position(op: ix.ComputeOp) -> SSAValue:
    """lin(r) = sum_j r_j * stride_j: the row-major position of the reduction point, as a float."""
    rank, extents = op.rank, op.reduction_extents
    elt = op.result_type.get_element_type()
    lin = scalars.const(0.0, elt)
    for j in range(len(extents)):
        r_j = scalars.index_to_float(scalars.index(rank + j), elt)
        lin = scalars.add(lin, scalars.mul(r_j, float(prod(extents[j + 1 :]))))
    return lin


def first_argmax(op: ix.ComputeOp) -> SSAValue:
    """am[d] = -min{ lin(r) : body(d, r) == y[d] }, the row-major position of the first maximum.

    Built as a max reduction of `-lin(r)` where the body reaches the maximum (and -inf elsewhere);
    the position is exact in floating point for any reduction space this compiler will see.
    """
    rank, extents = op.rank, op.reduction_extents
    out_map = make_map(rank + len(extents), dims(rank))
    reads = [*op.reads, ix.Read(op.result, out_map)]

    def body(xs: Sequence[SSAValue]) -> SSAValue:
        hit = scalars.cmpf("oeq", op.inline_body(xs[:-1]), xs[-1])
        return scalars.select(hit, scalars.neg(_position(op)), float("-inf"))

    return ix.ComputeOp.build(op.result_type, reads, body, "max", extents).result


def adjoint_of_read(op: ix.ComputeOp, k: int, dy: SSAValue, argmax: SSAValue | None) -> SSAValue | None:
    """The scatter `dx_k[m_k(v)] += dy[d] * [argmax] * d body / d a_k (v)`, or None if that is 0."""
    rank, extents = op.rank, op.reduction_extents
    space = (*op.result_type.get_shape(), *extents)
    out_map = make_map(len(space), dims(rank))
    extra = [ix.Read(dy, out_map)] + ([ix.Read(argmax, out_map)] if argmax is not None else [])
    # Without a reduction the body's value at a point is the op's own result there: a derivative
    # written in terms of it (tanh' = 1 - y^2, exp' = y) reads the result, bitwise equal to the
    # body recomputed, so the backward keeps what PyTorch keeps (the output, not the input).
    own = [ix.Read(op.result, out_map)] if op.reduction.data == "none" else []
    reads = [*op.reads, *extra, *own]
    target = op.reads[k].value.type
    assert isinstance(target, TensorType)
    elt = target.get_element_type()
    zero_contribution = False

    def body(xs: Sequence[SSAValue]) -> SSAValue:
        nonlocal zero_contribution
        derivative = _inline_tangent(op, xs[: len(op.reads)], k, xs[-1] if own else None)
        if derivative is None:
            zero_contribution = True
            return scalars.const(0.0, elt)
        value = scalars.times(xs[len(op.reads)], derivative)
        if argmax is not None:
            first = scalars.cmpf("oeq", scalars.neg(_position(op)), xs[len(op.reads) + 1])
            value = scalars.select(first, value, 0.0)
        return value

    scatter = ix.ScatterOp.build(target, space, op.reads[k].map, reads, body)
    if zero_contribution:
        scatter.detach()
        scatter.erase()
        return None
    return scatter.result


def _inline_tangent(op: ix.ComputeOp, args: Sequence[SSAValue], k: int, result: SSAValue | None = None) -> SSAValue | None:
    """d body / d a_k at the current point: the body recomputed, each op followed by its tangent;
    with `result` (the op's value at the point), the tangents use it for the body's value."""
    tangents: dict[SSAValue, SSAValue | None] = {args[k]: scalars.const(1.0, args[k].type)}

    def derive(clone: Operation) -> None:
        operands = list(clone.operands)
        if clone.results:
            tangents[clone.results[0]] = scalars.tangent(clone, operands, [tangents.get(v) for v in operands], tangents.get)

    value = op.inline_body(args, on_clone=derive)
    tangent = tangents.get(value)
    if result is not None and not isinstance(value, BlockArgument):
        value.replace_all_uses_with(result)
        tangent = result if tangent is value else tangent
    return tangent
