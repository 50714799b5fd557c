"""`state` declarations and `batchnorm` with running statistics, against `torch.nn.BatchNorm`.

Training mode (gradient and training-step programs, `Program.run(..., training=True)`) normalises
with the batch's statistics and updates the states in the caller's dict in place with PyTorch's
rule (momentum, unbiased variance); inference mode (a forward run by default) normalises with the
running statistics. The references are PyTorch modules trained side by side in float64.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

import mlc
from oracle import assert_close, compile_error, nchw, nhwc, oihw

CONV_BN = """
model net {{
  input x: f64[{n}, 6, 5, 3]
  input t: f64[{n}, 4, 3, 4]
  param w: f64[3, 3, 3, 4]
  param g: f64[4] = ones
  param b: f64[4]
  state m: f64[4]
  state v: f64[4] = ones
  h = relu(batchnorm(conv2d(x, w), g, b, mean=m, var=v{momentum}))
  loss = mse(h, t)
  output loss, h
}}
"""


def _torch_conv_bn(params: dict[str, np.ndarray], momentum: float) -> tuple[torch.nn.Module, torch.nn.BatchNorm2d]:
    conv = torch.nn.Conv2d(3, 4, 3, bias=False, dtype=torch.float64)
    bn = torch.nn.BatchNorm2d(4, momentum=momentum, dtype=torch.float64)
    with torch.no_grad():
        conv.weight.copy_(oihw(params["w"]))
        bn.weight.copy_(torch.from_numpy(params["g"]))
        bn.bias.copy_(torch.from_numpy(params["b"]))
    return torch.nn.Sequential(conv, bn, torch.nn.ReLU()), bn


@pytest.mark.parametrize("momentum", [0.1, 0.3])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_training_keeps_running_statistics_equal_to_torch(momentum: float, optimizer: str) -> None:
    """Five training steps (forward, backward, update, running statistics) in mlc and in PyTorch;
    then the inference-mode forward equals PyTorch's `eval()` output."""
    rng = np.random.default_rng(7)
    option = "" if momentum == 0.1 else f", momentum={momentum}"
    prog = mlc.compile(CONV_BN.format(n=5, momentum=option))
    params = prog.init_params(3)
    params["b"][:] = rng.normal(size=4)
    net, bn = _torch_conv_bn(params, momentum)
    hyper = {"lr": 0.05} if optimizer == "sgd" else {"lr": 0.01}
    trainer = prog.trainer(optimizer, **hyper)
    reference = (torch.optim.SGD if optimizer == "sgd" else torch.optim.Adam)(net.parameters(), **hyper)
    mean_array = params["m"]
    for _ in range(5):
        x, t = rng.normal(size=(5, 6, 5, 3)), rng.uniform(size=(5, 4, 3, 4))
        outs = trainer.step(params, {"x": x, "t": t})
        net.train()
        reference.zero_grad()
        h = nhwc(net(nchw(x)))
        loss = ((h - torch.from_numpy(t)) ** 2).mean()
        loss.backward()
        reference.step()
        assert_close(outs["h"], h)
        assert_close(params["m"], bn.running_mean)
        assert_close(params["v"], bn.running_var)
        assert_close(params["g"], bn.weight)
    assert params["m"] is mean_array  # updated in place, as PyTorch updates its buffers
    assert sorted(outs) == ["h", "loss"]
    x = rng.normal(size=(5, 6, 5, 3))
    net.eval()
    assert_close(prog.run(params, {"x": x, "t": np.zeros((5, 4, 3, 4))})["h"], nhwc(net(nchw(x))))


def test_forward_modes_and_gradients_match_torch() -> None:
    """`run` is inference mode by default and leaves the states alone; `run(training=True)` and
    `grad` use the batch's statistics and update the states; gradients equal autograd's."""
    rng = np.random.default_rng(11)
    prog = mlc.compile(CONV_BN.format(n=2, momentum=", momentum=0.25"))
    params = prog.init_params(0)
    params["m"][:], params["v"][:] = rng.normal(size=4), rng.uniform(0.5, 2.0, size=4)
    net, bn = _torch_conv_bn(params, 0.25)
    with torch.no_grad():
        bn.running_mean.copy_(torch.from_numpy(params["m"]))
        bn.running_var.copy_(torch.from_numpy(params["v"]))
    x, t = rng.normal(size=(2, 6, 5, 3)), rng.uniform(size=(2, 4, 3, 4))
    before = {k: v.copy() for k, v in params.items()}
    net.eval()
    assert_close(prog.run(params, {"x": x, "t": t})["h"], nhwc(net(nchw(x))))
    assert all(np.array_equal(params[k], before[k]) for k in params)
    assert not prog.training

    net.train()
    assert_close(prog.run(params, {"x": x, "t": t}, training=True)["h"], nhwc(net(nchw(x))))
    assert_close(params["m"], bn.running_mean)
    assert_close(params["v"], bn.running_var)

    outs, grads = prog.grad(params, {"x": x, "t": t})
    h = nhwc(net(nchw(x)))
    ((h - torch.from_numpy(t)) ** 2).mean().backward()
    assert sorted(grads) == ["b", "g", "w"]  # states get no gradient
    assert_close(grads["w"], net[0].weight.grad.permute(2, 3, 1, 0))
    assert_close(grads["g"], bn.weight.grad)
    assert_close(grads["b"], bn.bias.grad)
    assert_close(params["m"], bn.running_mean)
    assert_close(params["v"], bn.running_var)


@pytest.mark.parametrize("running", [False, True])
def test_batchnorm1d_without_affine_parameters(running: bool) -> None:
    """`batchnorm(x)` on [N, C]: no gamma/beta (PyTorch's affine=False), with or without
    running statistics (track_running_stats)."""
    rng = np.random.default_rng(5)
    stats = ", mean=m, var=v" if running else ""
    prog = mlc.compile(f"""
model bn1 {{
  input x: f64[7, 5]
  state m: f64[5]
  state v: f64[5] = ones
  y = batchnorm(x{stats}, eps=0.001)
  output y
}}
""")
    bn = torch.nn.BatchNorm1d(5, eps=0.001, affine=False, track_running_stats=running, dtype=torch.float64)
    states = prog.init_params()
    for _ in range(3):
        x = rng.normal(size=(7, 5)) * 3 + 1
        assert_close(prog.run(states, {"x": x}, training=True)["y"], bn.train()(torch.from_numpy(x)))
    if running:
        assert_close(states["m"], bn.running_mean)
        assert_close(states["v"], bn.running_var)
        x = rng.normal(size=(7, 5))
        assert_close(prog.run(states, {"x": x})["y"], bn.eval()(torch.from_numpy(x)))


def test_states_are_caller_owned_like_params() -> None:
    prog = mlc.compile(CONV_BN.format(n=2, momentum=""))
    assert list(prog.params) == ["w", "g", "b"]
    assert list(prog.states) == ["m", "v"]
    assert prog.outputs == ["loss", "h"]
    params = prog.init_params(1)
    assert sorted(params) == ["b", "g", "m", "v", "w"]
    assert np.array_equal(params["m"], np.zeros(4)) and np.array_equal(params["v"], np.ones(4))
    inputs = {"x": np.zeros((2, 6, 5, 3)), "t": np.zeros((2, 4, 3, 4))}
    with pytest.raises(ValueError, match="missing parameter 'v'"):
        prog.run({k: a for k, a in params.items() if k != "v"}, inputs)
    params["m"].flags.writeable = False
    prog.run(params, inputs)  # inference mode only reads the states
    with pytest.raises(ValueError, match="state 'm' is updated in place, but its array is read-only"):
        prog.run(params, inputs, training=True)


def test_a_model_without_states_runs_the_same_program_in_both_modes() -> None:
    prog = mlc.compile("model d {\n  input x: f64[3, 2]\n  y = batchnorm(x)\n  output y\n}\n")
    x = np.random.default_rng(0).normal(size=(3, 2))
    assert np.array_equal(prog.run({}, {"x": x})["y"], prog.run({}, {"x": x}, training=True)["y"])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("y = batchnorm(x, g, b, mean=m)", "8:31: error: batchnorm: mean= and var= go together"),
        ("y = batchnorm(x, g, b, momentum=0.2)", "momentum= needs the running statistics"),
        ("y = batchnorm(x, g, mean=m, var=v)", "gamma and beta go together"),
        ("y = batchnorm(x, g, b, mean=g, var=v)", "batchnorm: mean= must name a state of the model"),
        ("y = batchnorm(x, g, b, mean=(1, 2), var=v)", "mean= must name a state"),
        ("m = x\n  y = batchnorm(x, g, b, mean=m, var=v)", "'m' is re-bound here"),
        ("y = batchnorm(x, g, b, mean=m, var=v)\n  z = batchnorm(y, g, b, mean=m, var=v)",
         "state 'm' is already updated by the op at line 8"),
        ("y = batchnorm(x, g, b, mean=m, var=v, momentum=1.5)", "momentum must be a number between 0 and 1"),
        ("y = batchnorm(x, g, b, mean=w, var=v)", "mean must be [3] for input f32[2, 4, 3], got f32[4]"),
    ],
)
def test_batchnorm_diagnostics(body: str, message: str) -> None:
    source = f"""model bad {{
  state m: f32[3]
  state v: f32[3]
  state w: f32[4]
  input x: f32[2, 4, 3]
  param g: f32[3]
  param b: f32[3]
  {body}
  output y
}}
"""
    error = compile_error(source)
    assert message in error, error


def test_training_mode_needs_more_than_one_value_per_channel(tmp_path) -> None:
    """Inference with one value per channel is fine; training mode (a gradient) is PyTorch's
    error, located at the call, from the API and from mlc-opt."""
    path = tmp_path / "one.mlc"
    path.write_text("""model one {
  input x: f64[1, 3]
  param g: f64[3] = ones
  param b: f64[3]
  state m: f64[3]
  state v: f64[3] = ones
  y = batchnorm(x, g, b, mean=m, var=v)
  loss = sum(y)
  output loss
}
""")
    prog = mlc.compile(path)
    prog.run(prog.init_params(), {"x": np.ones((1, 3))})
    with pytest.raises(mlc.CompileError, match=r"one.mlc:7:7: error: batchnorm: training mode needs more than 1 value per channel"):
        prog.grad(prog.init_params(), {"x": np.ones((1, 3))})
    cli = subprocess.run([sys.executable, "-m", "mlc.cli", str(path), "-p", "mlc-lower-graph{training=true}"],
                         capture_output=True, text=True)
    assert cli.returncode == 1 and "one.mlc:7:7: error: batchnorm: training mode" in cli.stderr
    assert "Traceback" not in cli.stderr


def test_state_is_a_keyword() -> None:
    assert "2:9: error: expected a name but found 'state'" in compile_error("model k {\n  input state: f32[2]\n  output state\n}\n")
