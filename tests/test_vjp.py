"""`Program.vjp` (mlc-autodiff{vjp=true}): Σ_o cot_o · d o / d argument against PyTorch's
`torch.autograd.grad(outputs, args, grad_outputs)`, in f64 on random cotangents."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mlc
from mlc.testing.torch_reference import TorchModel

TWO_OUTPUTS = """model m {
  input x: f64[3, 5]
  param w: f64[5, 4] = glorot
  param b: f64[4] = zeros
  h = tanh(dense(x, w, b))
  s = sum(h * h, axis=1)
  output h, s, x
}
"""

BATCHNORM = """model m {
  input x: f64[2, 5, 5, 3]
  param w: f64[3, 3, 3, 4] = glorot
  param g: f64[4] = ones
  param be: f64[4] = zeros
  state mean: f64[4] = zeros
  state var: f64[4] = ones
  y = maxpool2d(relu(batchnorm(conv2d(x, w, stride=2, padding=same), g, be, mean=mean, var=var)), size=2, stride=1)
  output y
}
"""


def _reference(source: str, params: dict[str, np.ndarray], inputs: dict[str, np.ndarray],
               cotangents: dict[str, np.ndarray], wrt: list[str]) -> dict[str, np.ndarray]:
    args = {k: torch.tensor(v, requires_grad=k in wrt) for k, v in {**params, **inputs}.items()}
    outs = TorchModel.from_source(source, training=True)(args)
    grads = torch.autograd.grad([outs[k] for k in cotangents], [args[k] for k in wrt],
                                [torch.tensor(cotangents[k]) for k in cotangents], allow_unused=True)
    return {k: np.zeros_like(args[k].detach().numpy()) if g is None else g.numpy() for k, g in zip(wrt, grads)}


@pytest.mark.parametrize("source,wrt", [(TWO_OUTPUTS, "all"), (BATCHNORM, "params"), (BATCHNORM, "all")])
def test_vjp_matches_pytorch(source: str, wrt: str) -> None:
    program = mlc.compile(source)
    rng = np.random.default_rng(0)
    params = program.init_params(1)
    params.update({k: rng.normal(size=v.shape) for k, v in params.items() if k in ("b", "be")})
    inputs = {k: rng.normal(size=shape) for k, (shape, _) in program.inputs.items()}
    forward = program.run({k: v.copy() for k, v in params.items()}, inputs, training=True)
    cotangents = {k: rng.normal(size=v.shape) for k, v in forward.items()}
    states = {k: params[k].copy() for k in program.states}
    outs, grads = program.vjp(params, inputs, cotangents, wrt=wrt)
    names = [k for k in program.params] + ([k for k in program.inputs] if wrt == "all" else [])
    want = _reference(source, {k: (states[k] if k in states else v) for k, v in params.items()}, inputs, cotangents, names)
    assert sorted(grads) == sorted(names)
    for k in names:
        np.testing.assert_allclose(grads[k], want[k], rtol=1e-9, atol=1e-9 * max(np.abs(want[k]).max(), 1.0), err_msg=k)
    for k, v in forward.items():
        np.testing.assert_allclose(outs[k], v, rtol=1e-12, atol=1e-12)


def test_an_output_that_is_an_input_passes_its_cotangent_through() -> None:
    program = mlc.compile(TWO_OUTPUTS)
    params = program.init_params(0)
    x = np.ones((3, 5))
    zero = {"h": np.zeros((3, 4)), "s": np.zeros(3)}
    cot_x = np.arange(15.0).reshape(3, 5)
    _, grads = program.vjp(params, {"x": x}, {**zero, "x": cot_x}, wrt="all")
    np.testing.assert_array_equal(grads["x"], cot_x)
    np.testing.assert_array_equal(grads["w"], 0.0)


def test_every_output_needs_its_cotangent() -> None:
    program = mlc.compile(TWO_OUTPUTS)
    with pytest.raises(ValueError, match="missing cotangent 's' \\(expected cotangents: h, s, x\\)"):
        program.vjp(program.init_params(0), {"x": np.ones((3, 5))}, {"h": np.zeros((3, 4))})


@pytest.mark.parametrize("source,wrt", [(TWO_OUTPUTS, "all"), (BATCHNORM, "params"), (BATCHNORM, "all")])
def test_split_vjp_gives_the_vjp(source: str, wrt: str) -> None:
    """The forward half then the backward half (mlc-split-vjp) give `vjp`'s outputs, state
    updates and gradients."""
    program = mlc.compile(source)
    forward, backward = program.split_vjp_programs(wrt)
    rng = np.random.default_rng(1)
    params = program.init_params(2)
    inputs = {k: rng.normal(size=shape) for k, (shape, _) in program.inputs.items()}
    cotangents = {o.name: rng.normal(size=o.shape) for o in program.signature.outputs}
    whole = {k: v.copy() for k, v in params.items()}
    want_outs, want_grads = program.vjp(whole, inputs, cotangents, wrt=wrt)

    halves = {k: v.copy() for k, v in params.items()}
    outs = forward.run(halves, inputs, training=True)
    assert {k for k in outs if not k.startswith("saved.")} == set(want_outs)
    available = {**halves, **inputs, **outs, **{f"cot.{k}": v for k, v in cotangents.items()}}
    assert all(a.name in available for a in backward.signature.args)
    backward_params = {a.name: available[a.name] for a in (*backward.signature.params, *backward.signature.states)}
    grads = backward.run(backward_params, {a.name: available[a.name] for a in backward.signature.inputs}, training=True)
    assert sorted(grads) == sorted(f"grad.{k}" for k in want_grads)
    for k, v in want_grads.items():
        np.testing.assert_allclose(grads[f"grad.{k}"], v, rtol=1e-12, atol=1e-12, err_msg=k)
    for k, v in want_outs.items():
        np.testing.assert_allclose(outs[k], v, rtol=1e-12, atol=1e-12, err_msg=k)
    for k in program.states:
        np.testing.assert_allclose(halves[k], whole[k], rtol=1e-12, err_msg=k)


def test_split_halves_lowered_apart_give_the_c_of_one_module() -> None:
    """`build_programs` lowers each half in a module of its own (one half's C compiles while the
    next is lowered): the C is what the whole pipeline gives both halves in one module."""
    from xdsl.dialects import func
    from xdsl.dialects.builtin import ModuleOp

    from mlc.backends.c.emitter import emit_c
    from mlc.backends.c.runtime import unit_count
    from mlc.passes.pipelines import gradient_pipeline, split_lowering
    from mlc.runtime.program import load_module, make_context, run_pipeline, split_vjp

    pipeline = gradient_pipeline("params", vjp=True, training=True, split=True)
    assert split_lowering(pipeline)[1]  # the lowering to loops is its tail
    ctx = make_context()
    module = load_module(BATCHNORM, ctx)
    run_pipeline(module, pipeline, ctx, keep=("m_grad_forward", "m_grad_backward"))
    whole = {op.sym_name.data: emit_c(ModuleOp([op.clone()]), units=unit_count(2))
             for op in module.ops if isinstance(op, func.FuncOp)}
    forward, backward = split_vjp(BATCHNORM, None)
    assert forward.c_source == whole["m_grad_forward"] and backward.c_source == whole["m_grad_backward"]
