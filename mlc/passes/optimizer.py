"""`mlc-optimizer`: turn a gradient function into one training step (forward, backward, update).

From `@m_grad` (made by mlc-autodiff: the model's outputs, then `grad.<p>` for each parameter)
this adds `@m_step`, whose arguments are `@m_grad`'s, then the optimizer state of each parameter,
then the hyper-parameters as scalars (so a learning-rate schedule needs no recompilation), and
whose results are the model's outputs, then each updated parameter and updated state tensor;
forward, backward and update run as one generated function. Each update result is *tied* to the
argument it replaces (`mlc.in_place`): mlc-lower-loops writes it into that argument's buffer
when that is safe (the update is the argument's last reader and reads it elementwise), so the
step updates parameters and state in place, and only the updates it could not tie stay results
for the caller to copy back.
The names it adds all contain a dot, which no source name can, so they never collide with the
model's: state `m.<p>`, `v.<p>`, `buf.<p>`; hyper-parameters `hyper.<h>`; results `new.<p>` and
`new.<state>`.

The updates are PyTorch's (`torch.optim.SGD` and `torch.optim.Adam`, without `maximize`/`amsgrad`),
with `g = grad + weight_decay * p`:

    sgd:   buf' = momentum * buf + g_scale * g          (g_scale = 1 on the first step, else
                                                         1 - dampening: torch starts buf at g)
           d = g + momentum * buf'  (nesterov)  or  d = buf'
           p' = p - lr * d
    adam:  m' = m + (1 - beta1) * (g - m)               (torch's lerp)
           v' = beta2 * v + (1 - beta2) * g * g
           p' = p - step_size * m' / (sqrt(v') / bc2_sqrt + eps)
                                                         (step_size = lr / (1 - beta1^t),
                                                          bc2_sqrt = sqrt(1 - beta2^t))

The scalars depending on the step count t are computed by the caller. The update ops carry
`mlc.phase = "update"` (the ops cloned from `@m_grad` keep their `forward`/`backward`). Per
parameter, the state updates come first and the parameter's last, reading the new state: each
op is then the last reader of what it replaces, and every update reads only what it uses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from xdsl.builder import ImplicitBuilder
from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import ArrayAttr, ModuleOp, StringAttr, TensorType
from xdsl.ir import Block, SSAValue
from xdsl.passes import ModulePass
from xdsl.utils.exceptions import PassFailedException

from mlc.loops import scalars
from mlc.loops.affine import dims, make_map
from mlc.dialects import ix
from mlc.passes.autodiff import PHASE
from mlc.graph.signature import ModelSignature, TensorSpec, tie_results

HYPER = {
    "sgd": ("lr", "momentum", "g_scale", "weight_decay"),
    "adam": ("step_size", "beta1", "beta2", "eps", "bc2_sqrt", "weight_decay"),
}
"""The scalar hyper-parameters each optimizer's step function takes, in order."""

STATE = {"sgd": ("buf",), "adam": ("m", "v")}
"""The per-parameter state tensors of each optimizer."""

@dataclass(frozen=True)
class OptimizerPass(ModulePass):
    """Add `@<model>_step`: forward, backward and an SGD or Adam update in one function."""

    name = "mlc-optimizer"

    kind: str = "sgd"
    """sgd or adam."""
    nesterov: bool = False
    """Nesterov momentum (sgd only)."""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if self.kind not in HYPER:
            raise PassFailedException(f"mlc-optimizer: kind must be one of {', '.join(HYPER)}, got '{self.kind}'")
        grads = [o for o in op.ops if isinstance(o, func.FuncOp) and "mlc.grad_of" in o.attributes]
        if not grads:
            raise PassFailedException("mlc-optimizer: no gradient function; run mlc-autodiff first")
        for g in grads:
            op.body.block.insert_op_after(self.training_step(g), g)

    def training_step(self, g: func.FuncOp) -> func.FuncOp:
        sig = ModelSignature.of(g)
        grad_of = [s.data for s in g.attributes["mlc.grad_of"].data]  # pyright: ignore[reportAttributeAccessIssue]
        by_name = {a.name: a for a in sig.args}
        if any(by_name[n].kind != "param" for n in grad_of):
            raise PassFailedException("mlc-optimizer: the gradient function must be taken with respect to the parameters")
        n_model_outputs = len(sig.outputs) - len(grad_of)

        step = g.clone()
        step.sym_name = StringAttr(sig.name.removesuffix("_grad") + "_step")
        block = step.body.block
        ret = block.last_op
        assert isinstance(ret, func.ReturnOp)
        results = list(ret.arguments)
        model_outputs, grads = results[:n_model_outputs], results[n_model_outputs:]
        params = [block.args[[a.name for a in sig.args].index(n)] for n in grad_of]

        state_specs = [
            TensorSpec(f"{s}.{n}", by_name[n].shape, by_name[n].dtype, "optimizer_state") for n in grad_of for s in STATE[self.kind]
        ]
        elt = params[0].type.get_element_type() if params else None  # pyright: ignore[reportAttributeAccessIssue]
        dtype = sig.args[0].dtype
        hyper_specs = [TensorSpec(f"hyper.{h}", (), dtype, "hyper") for h in HYPER[self.kind]]
        state_args = [block.insert_arg(TensorType(elt, s.shape), len(block.args)) for s in state_specs]
        hyper_args = [block.insert_arg(TensorType(elt, []), len(block.args)) for _ in hyper_specs]
        for arg, spec in zip([*state_args, *hyper_args], [*state_specs, *hyper_specs]):
            arg.name_hint = spec.name
        hyper = dict(zip(HYPER[self.kind], hyper_args))

        ret.detach()
        n_state = len(STATE[self.kind])
        new_params, new_states = [], []
        for k, (p, grad) in enumerate(zip(params, grads)):
            states = state_args[k * n_state : (k + 1) * n_state]
            updated = self._update(block, p, grad, states, hyper)
            new_params.append(updated[0])
            new_states.extend(updated[1:])
        block.add_op(func.ReturnOp(*model_outputs, *new_params, *new_states))
        ret.erase()
        step.function_type = func.FunctionType.from_lists(
            [a.type for a in block.args], [v.type for v in (*model_outputs, *new_params, *new_states)]
        )
        outputs = (
            *sig.outputs[:n_model_outputs],
            *(TensorSpec(f"new.{n}", by_name[n].shape, by_name[n].dtype, "output") for n in grad_of),
            *(TensorSpec(f"new.{s.name}", s.shape, s.dtype, "output") for s in state_specs),
        )
        ModelSignature(step.sym_name.data, (*sig.args, *state_specs, *hyper_specs), outputs).attach(step)
        tie_results(step, {f"new.{a}": a for a in (*grad_of, *(s.name for s in state_specs))})  # beside the model's own
        step.attributes["mlc.optimizer"] = StringAttr(self.kind)
        step.attributes["mlc.grad_of"] = ArrayAttr([StringAttr(n) for n in grad_of])
        del step.attributes["mlc.loss"]
        return step

    def _update(self, block: Block, p: SSAValue, grad: SSAValue, states: Sequence[SSAValue],
                hyper: dict[str, SSAValue]) -> list[SSAValue]:
        """The updated parameter and states (in that order), built as elementwise ops at the end
        of `block`: the states first, then the parameter from the new states."""
        s, h = scalars, hyper
        if self.kind == "sgd":
            (buf,) = states

            def g(v: dict[str, SSAValue]) -> SSAValue:
                return s.add(v["grad"], s.mul(v["weight_decay"], v["p"]))

            new_buf = _emit(block, {"p": p, "grad": grad, "buf": buf, **_pick(h, "momentum", "g_scale", "weight_decay")},
                            lambda v: s.add(s.mul(v["momentum"], v["buf"]), s.mul(v["g_scale"], g(v))))
            if self.nesterov:
                new_p = _emit(block, {"p": p, "grad": grad, "buf": new_buf, **_pick(h, "lr", "momentum", "weight_decay")},
                              lambda v: s.sub(v["p"], s.mul(v["lr"], s.add(g(v), s.mul(v["momentum"], v["buf"])))))
            else:
                new_p = _emit(block, {"p": p, "buf": new_buf, "lr": h["lr"]}, lambda v: s.sub(v["p"], s.mul(v["lr"], v["buf"])))
            return [new_p, new_buf]
        m, v2 = states

        def g_adam(v: dict[str, SSAValue]) -> SSAValue:
            return s.add(v["grad"], s.mul(v["weight_decay"], v["p"]))

        def new_v(v: dict[str, SSAValue]) -> SSAValue:
            gv = g_adam(v)
            return s.add(s.mul(v["beta2"], v["v"]), s.mul(s.sub(1.0, v["beta2"]), s.mul(gv, gv)))

        new_m = _emit(block, {"p": p, "grad": grad, "m": m, **_pick(h, "beta1", "weight_decay")},
                      lambda v: s.add(v["m"], s.mul(s.sub(1.0, v["beta1"]), s.sub(g_adam(v), v["m"]))))
        new_v2 = _emit(block, {"p": p, "grad": grad, "v": v2, **_pick(h, "beta2", "weight_decay")}, new_v)

        def new_p(v: dict[str, SSAValue]) -> SSAValue:
            denom = s.add(s.div(s.sqrt(v["v"]), v["bc2_sqrt"]), v["eps"])
            return s.sub(v["p"], s.div(s.mul(v["step_size"], v["m"]), denom))

        return [_emit(block, {"p": p, "m": new_m, "v": new_v2, **_pick(h, "step_size", "bc2_sqrt", "eps")}, new_p),
                new_m, new_v2]


def _pick(hyper: dict[str, SSAValue], *names: str) -> dict[str, SSAValue]:
    return {n: hyper[n] for n in names}


def _emit(block: Block, inputs: dict[str, SSAValue], body: Callable[[dict[str, SSAValue]], SSAValue]) -> SSAValue:
    """`y[i] = body(inputs at i)` at the end of `block` (rank-0 inputs read as scalars, the shape
    the first input's), marked `mlc.phase = "update"`."""
    t = next(iter(inputs.values())).type
    assert isinstance(t, TensorType)
    rank = t.get_num_dims()
    names = list(inputs)
    reads = []
    for name in names:
        vt = inputs[name].type
        assert isinstance(vt, TensorType)
        reads.append(ix.Read(inputs[name], make_map(rank, dims(rank) if vt.get_num_dims() else [])))
    with ImplicitBuilder(block):
        op = ix.ComputeOp.build(t, reads, lambda xs: body(dict(zip(names, xs))))
    op.attributes[PHASE] = StringAttr("update")
    return op.result
