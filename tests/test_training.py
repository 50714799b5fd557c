"""Compiled training steps: updates equal torch.optim's, and training makes progress."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mlc
from mlc.testing.torch_reference import TorchModel

MODEL = """model m {
  input x: f32[8, 5]
  input y: f32[8, 3]
  param w1: f32[5, 6] = glorot
  param b1: f32[6] = uniform(-0.1, 0.1)
  param w2: f32[6, 3] = glorot
  h = tanh(dense(x, w1, b1))
  loss = softmax_cross_entropy(dense(h, w2), y) + mse(sigmoid(h), h * 0.5)
  output loss
}"""

OPTIMIZERS = [
    ("sgd", {"lr": 0.1}),
    ("sgd", {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.01, "dampening": 0.1}),
    ("sgd", {"lr": 0.05, "momentum": 0.8, "nesterov": True}),
    ("adam", {"lr": 0.01}),
    ("adam", {"lr": 0.02, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.01}),
]


@pytest.mark.parametrize("optimizer,hyper", OPTIMIZERS)
def test_updates_match_torch_optim_after_five_steps(optimizer, hyper):
    prog = mlc.compile(MODEL)
    trainer = prog.trainer(optimizer, **hyper)
    params = prog.init_params(seed=1)
    reference = TorchModel.from_source(MODEL)
    leaves = {k: torch.tensor(v.copy(), requires_grad=True) for k, v in params.items()}
    torch_opt = (torch.optim.Adam if optimizer == "adam" else torch.optim.SGD)(leaves.values(), **hyper)
    rng = np.random.default_rng(0)
    for _ in range(5):
        batch = {"x": rng.standard_normal((8, 5)).astype(np.float32),
                 "y": np.eye(3, dtype=np.float32)[rng.integers(0, 3, size=8)]}
        outs = trainer.step(params, batch)
        torch_opt.zero_grad()
        loss = reference({**leaves, **{k: torch.from_numpy(v) for k, v in batch.items()}})["loss"]
        loss.backward()
        torch_opt.step()
        np.testing.assert_allclose(outs["loss"], loss.item(), rtol=1e-5)
    for name, leaf in leaves.items():
        np.testing.assert_allclose(params[name], leaf.detach().numpy(), rtol=1e-5, atol=1e-5, err_msg=name)


def test_training_reduces_the_loss_on_a_fixed_problem():
    """A linearly separable problem: 60 Adam steps take the loss well below its start."""
    prog = mlc.compile(MODEL)
    trainer = prog.trainer("adam", lr=0.05)
    params = prog.init_params(seed=0)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((8, 5)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[np.argmax(x[:, :3], axis=1)]
    losses = [float(trainer.step(params, {"x": x, "y": y})["loss"]) for _ in range(60)]
    assert losses[-1] < 0.5 * losses[0], losses
    assert trainer.steps == 60


def test_trainer_rejects_bad_options():
    prog = mlc.compile(MODEL)
    with pytest.raises(ValueError, match="unknown sgd option 'betas'"):
        prog.trainer("sgd", lr=0.1, betas=(0.9, 0.99))
    with pytest.raises(ValueError, match="learning rate"):
        prog.trainer("sgd")
    with pytest.raises(ValueError, match="optimizer must be"):
        prog.trainer("rmsprop", lr=0.1)


def test_grad_rejects_a_bad_wrt():
    prog = mlc.compile(MODEL)
    with pytest.raises(ValueError, match="wrt must be"):
        prog.grad(prog.init_params(), {"x": np.zeros((8, 5), np.float32), "y": np.zeros((8, 3), np.float32)}, wrt="weights")


def test_state_and_hyper_parameter_names_never_collide_with_the_model():
    """A model whose input is called `eps` and whose parameter is called `lr` trains with Adam."""
    src = """model m {
  input eps: f32[4, 2]
  param lr: f32[2, 2]
  loss = mean(dense(eps, lr) * dense(eps, lr))
  output loss
}"""
    prog = mlc.compile(src)
    trainer = prog.trainer("adam", lr=0.1)
    params = prog.init_params(0)
    eps = np.random.default_rng(0).standard_normal((4, 2)).astype(np.float32)
    losses = [float(trainer.step(params, {"eps": eps})["loss"]) for _ in range(10)]
    assert losses[-1] < losses[0]
    assert set(trainer.state) == {"m.lr", "v.lr"}


def test_trainer_follows_the_arrays_it_is_given():
    """The trainer remembers the addresses of arrays passed again (parameters updated in place):
    a new parameter dict, new input arrays, a strided view or an array reshaped in place must
    each be seen, with the results of a trainer that is given fresh copies every step."""
    prog = mlc.compile(MODEL)
    rng = np.random.default_rng(4)
    batches = [{"x": rng.standard_normal((8, 5)).astype(np.float32),
                "y": np.eye(3, dtype=np.float32)[rng.integers(0, 3, size=8)]} for _ in range(6)]
    fresh, reused = prog.trainer("adam", lr=0.01), prog.trainer("adam", lr=0.01)
    params_fresh, params_reused = prog.init_params(seed=2), prog.init_params(seed=2)
    wide = np.zeros((8, 10), dtype=np.float32)
    for step, batch in enumerate(batches):
        if step == 3:  # the caller swaps in new parameter arrays with the same values
            params_reused = {k: v.copy() for k, v in params_reused.items()}
        given = dict(batch)
        if step == 4:  # a strided view: copied, never bound
            wide[:, ::2] = batch["x"]
            given["x"] = wide[:, ::2]
        loss_fresh = fresh.step(params_fresh, {k: v.copy() for k, v in batch.items()})["loss"]
        loss_reused = reused.step(params_reused, given)["loss"]
        assert loss_fresh == loss_reused, step
    for name in params_fresh:
        assert np.array_equal(params_fresh[name], params_reused[name]), name
    x = batches[0]["x"]
    reused.step(params_reused, {"x": x, "y": batches[0]["y"]})
    reused.step(params_reused, {"x": x, "y": batches[0]["y"]})
    x.shape = (5, 8)
    with pytest.raises(ValueError, match="shape"):
        reused.step(params_reused, {"x": x, "y": batches[0]["y"]})


def test_parameters_are_updated_in_place_even_through_a_strided_view():
    """The step writes each parameter into its own buffer; a caller's non-contiguous view gets
    the update copied back, a read-only one is refused, and the state lives in one buffer."""
    prog = mlc.compile(MODEL)
    rng = np.random.default_rng(5)
    batch = {"x": rng.standard_normal((8, 5)).astype(np.float32),
             "y": np.eye(3, dtype=np.float32)[rng.integers(0, 3, size=8)]}
    plain, strided = prog.trainer("adam", lr=0.01), prog.trainer("adam", lr=0.01)
    params = prog.init_params(seed=3)
    wide = np.zeros((5, 12), dtype=np.float32)
    wide[:, ::2] = params["w1"]
    views = {**{k: v.copy() for k, v in params.items()}, "w1": wide[:, ::2]}
    for _ in range(3):
        plain.step(params, batch)
        strided.step(views, batch)
    assert all(np.array_equal(params[k], views[k]) for k in params)
    assert not np.array_equal(params["w1"], prog.init_params(seed=3)["w1"])
    assert plain.program.signature.outputs[0].name == "loss"
    assert not any(s.name.startswith("new.") for s in plain.program.signature.outputs)
    assert all(plain.state[k] is plain._next_state[k] for k in plain.state)  # noqa: SLF001
    frozen = {k: v.copy() for k, v in params.items()}
    frozen["b1"].flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        plain.step(frozen, batch)
