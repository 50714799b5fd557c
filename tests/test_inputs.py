"""The boundary between a caller's arrays and compiled code: a bad argument is one error that
names it (and what was expected and given), an unusual but valid one works as PyTorch would,
NaN and Inf propagate as in PyTorch, and nothing is written outside the caller's buffers."""

from __future__ import annotations

import numpy as np
import pytest

import mlc
from mlc.testing.torch_reference import TorchModel

MODEL = """model m {
  input x: f32[4, 6]
  input y: f32[4, 3]
  param w: f32[6, 3] = glorot
  param b: f32[3] = zeros
  loss = softmax_cross_entropy(dense(x, w, b), y)
  output loss
}"""

BATCHNORM = """model bn {
  input x: f32[4, 3]
  param w: f32[3, 2] = glorot
  state mean: f32[3] = zeros
  state var: f32[3] = ones
  loss = sum(dense(batchnorm(x, mean=mean, var=var), w))
  output loss
}"""


@pytest.fixture(scope="module")
def prog() -> mlc.Program:
    return mlc.compile(MODEL)


def _batch(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"x": rng.standard_normal((4, 6)).astype(np.float32),
            "y": np.eye(3, dtype=np.float32)[rng.integers(0, 3, size=4)]}


def _entry_points(prog: mlc.Program):
    """(name, call(params, inputs)) for the forward, gradient and training-step programs."""
    trainer = prog.trainer("sgd", lr=0.1)
    return [("run", prog.run), ("grad", prog.grad), ("step", trainer.step)]


BAD_ARGUMENTS = [
    # (what is changed, the change, the error it must give)
    ("input x as float64", lambda p, i: (p, {**i, "x": i["x"].astype(np.float64)}),
     r"input 'x' must have dtype float32, got float64"),
    ("input x as int64", lambda p, i: (p, {**i, "x": i["x"].astype(np.int64)}),
     r"input 'x' must have dtype float32, got int64"),
    ("param w transposed", lambda p, i: ({**p, "w": np.ascontiguousarray(p["w"].T)}, i),
     r"param 'w' must have shape \[6, 3\], got \[3, 6\]"),
    ("input y without its batch", lambda p, i: (p, {**i, "y": i["y"][0]}),
     r"input 'y' must have shape \[4, 3\], got \[3\]"),
    ("input x as a list", lambda p, i: (p, {**i, "x": i["x"].tolist()}),
     r"input 'x' must be a numpy array, got list"),
    ("missing input", lambda p, i: (p, {"x": i["x"]}), r"missing input 'y' \(expected inputs: x, y\)"),
    ("missing param", lambda p, i: ({"w": p["w"]}, i), r"missing parameter 'b' \(expected parameters: w, b\)"),
    ("extra input", lambda p, i: (p, {**i, "z": i["x"]}), r"unknown input 'z' \(expected inputs: x, y\)"),
    ("extra param", lambda p, i: ({**p, "c": p["b"]}, i), r"unknown parameter 'c' \(expected parameters: w, b\)"),
    ("misspelt input", lambda p, i: (p, {"x": i["x"], "Y": i["y"]}), r"missing input 'y'"),
]


@pytest.mark.parametrize("change", BAD_ARGUMENTS, ids=[c[0] for c in BAD_ARGUMENTS])
def test_a_bad_argument_is_an_error_naming_it_in_every_entry_point(prog, change):
    _, alter, message = change
    for name, call in _entry_points(prog):
        params, inputs = alter(prog.init_params(seed=0), _batch())
        before = {k: np.copy(v) for k, v in params.items() if isinstance(v, np.ndarray)}
        with pytest.raises(ValueError, match=message):
            call(params, inputs)
        assert all(np.array_equal(params[k], v) for k, v in before.items()), f"{name} changed a parameter"


def test_strided_and_read_only_arrays_work_where_they_are_only_read(prog):
    """Non-contiguous arrays are copied (as torch.from_numpy(...).contiguous() would); read-only
    ones are fine wherever the call only reads them: the results equal the plain call's."""
    params, batch = prog.init_params(seed=1), _batch(1)
    wide = np.zeros((6, 8), np.float32)
    wide[:, ::3] = params["w"]
    x_fortran = np.asfortranarray(batch["x"])
    frozen = {k: v.copy() for k, v in params.items()}
    for v in frozen.values():
        v.flags.writeable = False
    y_frozen = batch["y"].copy()
    y_frozen.flags.writeable = False
    odd = ({**frozen, "w": wide[:, ::3]}, {"x": x_fortran, "y": y_frozen})
    assert not odd[0]["w"].flags.c_contiguous and not x_fortran.flags.c_contiguous
    want, got = prog.run(params, batch), prog.run(*odd)
    assert np.array_equal(want["loss"], got["loss"])
    want_grads, got_grads = prog.grad(params, batch)[1], prog.grad(*odd)[1]
    assert all(np.array_equal(want_grads[k], got_grads[k]) for k in want_grads)
    trainer = prog.trainer("sgd", lr=0.1)
    with pytest.raises(ValueError, match=r"param 'w' is updated in place, but its array is read-only"):
        trainer.step({**params, "w": frozen["w"]}, batch)
    trainer.step({**params, "w": wide[:, ::3]}, {"x": x_fortran, "y": y_frozen})  # inputs may be read-only
    assert not np.array_equal(wide[:, ::3], frozen["w"]) and not wide[:, 1::3].any()


def test_a_read_only_state_is_refused_where_training_updates_it():
    prog = mlc.compile(BATCHNORM)
    params = prog.init_params(seed=0)
    params["var"].flags.writeable = False
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    prog.run(params, {"x": x})  # inference mode reads the running statistics only
    for call in (lambda: prog.run(params, {"x": x}, training=True), lambda: prog.trainer("sgd", lr=0.1).step(params, {"x": x})):
        with pytest.raises(ValueError, match=r"state 'var' is updated in place, but its array is read-only"):
            call()
    assert np.array_equal(params["var"], np.ones(3, np.float32))


def test_nothing_is_written_outside_the_callers_buffers(prog):
    """Every parameter, input and state a step takes is a view into a larger array whose other
    cells hold a canary; after forward, gradient and training calls the canaries are intact."""
    base = {**prog.init_params(seed=2), **_batch(2)}
    canary = np.float32(-12345.5)
    frames = {k: np.full((v.size + 64,), canary, np.float32) for k, v in base.items()}
    views = {}
    for k, v in base.items():
        frames[k][32:32 + v.size] = v.ravel()
        views[k] = frames[k][32:32 + v.size].reshape(v.shape)
    params, inputs = {k: views[k] for k in ("w", "b")}, {k: views[k] for k in ("x", "y")}
    for _, call in _entry_points(prog):
        for _ in range(3):
            call(params, inputs)
    assert all((f[:32] == canary).all() and (f[32 + base[k].size:] == canary).all() for k, f in frames.items())
    assert not np.array_equal(views["w"], base["w"])  # the steps did update the parameters in place


NAN_EXPRESSIONS = [
    "relu(x)", "leaky_relu(x, alpha=0.1)", "elu(x)", "hardtanh(x)", "clamp(x, lo=-0.5, hi=0.5)",
    "sigmoid(x)", "tanh(x)", "exp(x)", "gelu(x)", "maximum(x, 0.25)", "minimum(0.25, x)",
    "max(x, axis=3)", "min(x, axis=1)", "sum(x, axis=2)", "mean(x, axis=0)",
    "maxpool2d(x, size=2, stride=2)", "avgpool2d(x, size=2, stride=1)", "softmax(f)", "log_softmax(f)",
    "conv2d(x, w, stride=1, padding=same)", "dense(f, d)", "layernorm(f, g, b)",
    "bce(sigmoid(f), t)", "bce_logits(f, t)", "mse(f, t)", "softmax_cross_entropy(f, t)",
]
NAN_PROGRAM = """model m {
  input x: f32[2, 4, 4, 3]
  input t: f32[2, 48]
  param w: f32[3, 3, 3, 2] = glorot
  param d: f32[48, 5] = glorot
  param g: f32[48] = ones
  param b: f32[48] = zeros
  f = flatten(x)
""" + "".join(f"  o_{k} = {e}\n" for k, e in enumerate(NAN_EXPRESSIONS)) + \
    f"  output {', '.join(f'o_{k}' for k in range(len(NAN_EXPRESSIONS)))}\n}}"


def test_nan_and_inf_propagate_as_in_pytorch():
    """NaN, +Inf and -Inf in an input give the results PyTorch gives, element by element: max,
    min, relu and max pooling return a NaN they meet (as torch.amax and max_pool2d do), sums
    and softmaxes spread it, clamps keep it. (gelu is compared at the NaNs only: PyTorch's gelu
    gives NaN at +Inf, where mlc's gives +Inf, the limit.)"""
    prog, reference = mlc.compile(NAN_PROGRAM), TorchModel.from_source(NAN_PROGRAM)
    params = prog.init_params(seed=0)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 4, 4, 3)).astype(np.float32)
    x.flat[[0, 7, 20]] = np.nan
    x.flat[[3, 50]] = np.inf
    x.flat[[11, 60]] = -np.inf
    inputs = {"x": x, "t": rng.uniform(0, 1, (2, 48)).astype(np.float32)}
    got, want = prog.run(params, inputs), reference.run(params, inputs)
    for k, name in enumerate(got):
        g, w = got[name], want[name]
        if NAN_EXPRESSIONS[k] == "gelu(x)":
            g, w = g[~np.isinf(x)], w[~np.isinf(x)]
        what = NAN_EXPRESSIONS[k]
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6, equal_nan=True, err_msg=what)
        assert np.array_equal(np.isnan(g), np.isnan(w)) and np.array_equal(np.isinf(g), np.isinf(w)), what
    assert np.isnan(got["o_0"]).sum() == 3 and np.isnan(got["o_11"]).sum() == 3  # relu and max keep NaN
