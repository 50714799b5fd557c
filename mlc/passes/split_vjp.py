"""`mlc-split-vjp`: a vector-Jacobian function as a forward half that keeps what the backward
reads, and a backward half that starts from it.

`mlc-autodiff{vjp=true}` makes one function, `@m_grad(args, cot.*) -> (outputs, grad.*)`, that
computes the forward again before its backward. A framework whose autograd runs the forward
when the model is called and the backward later (PyTorch's `autograd.Function`) would so run
every forward op twice. This pass replaces `@m_grad` by

    @m_grad_forward(model args)                    -> (outputs, new.<state>, saved.0, saved.1, ...)
    @m_grad_backward(args it reads, saved, cot.*)  -> (grad.*)

The forward half is every op the outputs (and state updates) depend on: the model itself. The
backward half is every other op the gradients depend on. The *saved* values are those the
forward half computes and the backward half reads (the tape): each is one more forward output
`saved.<k>`, and one backward argument of the same name, unless it already is an output, whose
name the backward argument then takes. So a caller passes the backward each forward output it
names. The backward takes only the model arguments and cotangents it reads.

A forward value that only rearranges model arguments (a copy through an index map: a
transposed weight, a reshaped or padded input, and copies of those) is not saved: the backward
computes it again from the arguments, as PyTorch's partitioner recomputes views. Saving it
would make the forward write it out (LeNet-5's dense layers' transposed weights: 59k floats a
call) where the forward would otherwise read the argument through the map, and the backward
reads as many bytes either way. Such a clone is marked `mlc.phase = "recompute"`.

Run it after `mlc-scatter-to-gather` and before scheduling. `mlc-checkpoint` keeps its meaning
(what to keep and what to recompute under a budget) only in the unsplit function, whose whole
tape it sees: with a split, every saved value lives from the forward call to the backward call.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import ArrayAttr, ModuleOp
from xdsl.ir import OpResult, Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.utils.exceptions import PassFailedException

from mlc.dialects import ix
from mlc.graph.locations import OUTPUT_LOCS
from mlc.graph.signature import IN_PLACE, ModelSignature, is_model
from mlc.passes.function_split import ancestors, function_of, replace_by, returned, spec_of

SAVED = "saved."
COTANGENT = "cot."


@dataclass(frozen=True)
class SplitVjpPass(ModulePass):
    name = "mlc-split-vjp"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        vjps = [f for f in op.ops if isinstance(f, func.FuncOp) and is_vjp(f)]
        if not vjps:
            raise PassFailedException("mlc-split-vjp: no vector-Jacobian function to split; run mlc-autodiff{vjp=true} first")
        for f in vjps:
            replace_by(op, f, split(f))


def is_vjp(f: func.FuncOp) -> bool:
    """`@m_grad` made by `mlc-autodiff{vjp=true}` (seeded by cotangents, not by a loss)."""
    loss = f.attributes.get("mlc.loss")
    return is_model(f) and "mlc.grad_of" in f.attributes and isinstance(loss, ArrayAttr) and not loss.data


def split(f: func.FuncOp) -> tuple[func.FuncOp, func.FuncOp]:
    """`@<f>_forward` and `@<f>_backward` (see the module docstring)."""
    sig = ModelSignature.of(f)
    block = f.body.block
    ret = returned(f, SplitVjpPass.name)
    n_grads = len(f.attributes["mlc.grad_of"].data)  # pyright: ignore[reportAttributeAccessIssue]
    results = list(ret.arguments)
    kept, grads = results[: len(results) - n_grads], results[len(results) - n_grads :]
    forward_ops = ancestors(kept)
    backward_ops = ancestors(grads) - forward_ops
    model_args = [k for k, a in enumerate(sig.args) if not a.name.startswith(COTANGENT)]
    recomputed = _rearrangements_read(backward_ops, grads, [block.args[k] for k in model_args])
    backward_ops |= recomputed

    saved: dict[SSAValue, str] = {}  # forward value -> its name as a forward output
    extra: list[SSAValue] = []  # the saved values that are no output: `saved.<k>`
    read_by_backward = {v for op in backward_ops for v in op.operands} | set(grads)
    for op in [o for o in block.ops if o in forward_ops and o not in recomputed]:
        for v in op.results:
            if v in read_by_backward:
                if v in kept:
                    saved[v] = sig.outputs[kept.index(v)].name
                else:
                    saved[v] = f"{SAVED}{len(extra)}"
                    extra.append(v)

    forward_name = f"{sig.name}_forward"
    forward = function_of(f, forward_name, [block.args[k] for k in model_args], [op for op in block.ops if op in forward_ops],
                        [*kept, *extra], ModelSignature(forward_name, tuple(sig.args[k] for k in model_args),
                                                        (*sig.outputs[: len(kept)], *(spec_of(saved[v], v, "input") for v in extra))))
    for attribute in ("mlc.grad_of", "mlc.loss"):
        del forward.attributes[attribute]

    read = [(a, v) for a, v in zip(sig.args, block.args, strict=True) if v in read_by_backward]
    inputs = [(a, v) for a, v in read if not a.name.startswith(COTANGENT)]
    cotangents = [(a, v) for a, v in read if a.name.startswith(COTANGENT)]
    backward_name = f"{sig.name}_backward"
    backward = function_of(f, backward_name, [v for _, v in inputs] + list(saved) + [v for _, v in cotangents],
                         [op for op in block.ops if op in backward_ops], grads,
                         ModelSignature(backward_name, (*(a for a, _ in inputs), *(spec_of(n, v, "input") for v, n in saved.items()),
                                                        *(a for a, _ in cotangents)), sig.outputs[len(kept) :]),
                         recomputed)
    for attribute in (OUTPUT_LOCS, IN_PLACE):
        backward.attributes.pop(attribute, None)
    return forward, backward


def _rearrangements_read(backward_ops: set[Operation], grads: list[SSAValue], arguments: list[SSAValue]
                         ) -> set[Operation]:
    """The forward ops the backward computes again instead of reading their results saved:
    the chains of copies (`_rearranges`) from a model argument to a value the backward
    (`backward_ops`, the gradients `grads`) reads."""
    recomputed: set[Operation] = set()
    for v in [v for op in backward_ops for v in op.operands] + grads:
        chain: list[Operation] = []
        while isinstance(v, OpResult) and v.op not in backward_ops and _rearranges(v.op):
            chain.append(v.op)
            v = v.op.operands[0]
        if chain and v in arguments:
            recomputed.update(chain)
    return recomputed


def _rearranges(op: Operation) -> bool:
    """A compute op that copies its one operand through an index map: no reduction, and a
    body that yields the element it reads."""
    if not isinstance(op, ix.ComputeOp) or op.reduction_extents or len(op.operands) != 1:
        return False
    body = list(op.body.block.ops)
    return len(body) == 1 and isinstance(body[0], ix.YieldOp) and body[0].operands[0] is op.body.block.args[0]

