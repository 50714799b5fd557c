"""Random valid models (`random_programs.py`) compiled by mlc and run, against the PyTorch reference.

Each model is compiled to C, run on `init_params(seed)` and uniform(-1, 1) inputs, and every output
is compared with `mlc.testing.torch_reference.TorchModel` evaluating the same graph-level IR:
f64 to 1e-9 and f32 to 1e-4, relative to the reference's magnitude (at least 1, so a loss that
cancels to ~0 is compared absolutely). Output shapes are checked against the generator's own
shape tracking.

`MLC_RANDOM_PROGRAMS=N` runs N f64 models (and N/5 f32 ones) instead of the default 150, for a
longer search; the default set compiles in well under a minute (programs are kept small).

A gradient comparison plugs in as one more function next to `check_forward`: `prepare` gives
the compiled program, the reference, the parameters and the inputs, and `reference_gradients`
PyTorch's gradients of the loss with respect to every parameter.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from random_programs import GeneratedModel, generate

import mlc
from mlc.signature import init_tensor
from mlc.testing.torch_reference import TorchModel

TOL = {"f64": 1e-9, "f32": 1e-4}
COUNT = int(os.environ.get("MLC_RANDOM_PROGRAMS", "150"))
CASES = [(seed, "f64") for seed in range(COUNT)] + [(seed, "f32") for seed in range(max(COUNT // 5, 1))]

REGRESSIONS: dict[str, tuple[str, str, int]] = {
    "concat": ("""model m {
  input x1: f64[1, 7, 6, 2]
  input x2: f64[1, 7, 3, 2]
  p = concat(x1, x2, axis=2)
  output p
}
""", "f64", 0),
    "binconv_xnor": ("""model random_656 {
  input x1: f64[1, 6, 4, 1]
  param g3: f64[1] = normal(1)
  param w4: f64[1, 3, 1, 2] = normal(0.3)
  input x7: f64[1, 1, 2, 6]
  t2 = tanh(x1)
  t5 = binconv2d(t2 * g3, w4, stride=(1, 2), mode=xnor, pad_value=0)
  t6 = reshape(t5, (1, -1, 2, 6))
  loss = mse(t6, x7)
  output loss, t2, t5
}
""", "f64", 656),
    "avgpool_binconv_f32": ("""model random_233 {
  input x1: f32[1, 4, 7, 2]
  input x2: f32[1, 3, 1, 2]
  param b3: f32[2] = zeros
  param w4: f32[2, 2, 2, 1] = normal(0.3)
  t5 = binconv2d((avgpool2d(x1, size=2, padding=1) - x2) + b3, w4, padding=valid, mode=xnor, pad_value=-1)
  loss = mean(t5 * t5)
  output loss
}
""", "f32", 233),
}  # fmt: skip
"""Models (found by an 1800-model search) that gcc 12.2 miscompiled at -O3 -march=native until the
backend turned off its loop if-conversion: kept as regression cases."""


@dataclass
class Trial:
    """One model ready to run both ways, on the same parameters and inputs."""

    text: str
    dtype: str
    program: mlc.Program
    reference: TorchModel
    params: dict[str, np.ndarray]
    inputs: dict[str, np.ndarray]


def prepare(text: str, dtype: str, seed: int = 0) -> Trial:
    """Compile `text` with mlc, build its reference, draw parameters and inputs from `seed`."""
    program = mlc.compile(text)
    rng = np.random.default_rng(seed)
    inputs = {name: rng.uniform(-1.0, 1.0, size=shape).astype(dt) for name, (shape, dt) in program.inputs.items()}
    return Trial(text, dtype, program, TorchModel.from_source(text), program.init_params(seed), inputs)


def assert_close(got: np.ndarray, ref: np.ndarray, dtype: str, what: str, text: str) -> None:
    """|got - ref| <= tol * max(max|ref|, 1), with the program in the message."""
    assert got.shape == ref.shape, f"{what}: shape {got.shape}, reference {ref.shape}\n{text}"
    scale = max(float(np.max(np.abs(ref))) if ref.size else 0.0, 1.0)
    err = float(np.max(np.abs(got.astype(np.float64) - ref))) if ref.size else 0.0
    assert err <= TOL[dtype] * scale, (
        f"{what}: max |mlc - torch| = {err:.3g} > {TOL[dtype]:g} * {scale:.3g}\n"
        f"mlc:   {np.array2string(got.ravel()[:8], precision=6)}\ntorch: {np.array2string(ref.ravel()[:8], precision=6)}\n{text}"
    )


def check_forward(text: str, dtype: str, seed: int = 0, shapes: dict[str, tuple[int, ...]] | None = None) -> Trial:
    """Every output of the compiled model equals the reference's (and has the expected shape)."""
    trial = prepare(text, dtype, seed)
    got = trial.program.run(trial.params, trial.inputs)
    ref = trial.reference.run(trial.params, trial.inputs)
    assert list(got) == list(ref)
    for name in got:
        if shapes is not None:
            assert got[name].shape == shapes[name], f"output {name}: shape {got[name].shape}, expected {shapes[name]}\n{text}"
        assert_close(got[name], ref[name], dtype, f"output {name}", text)
    return trial


def reference_gradients(
    reference: TorchModel, params: dict[str, np.ndarray], inputs: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """d(first output)/d(parameter) for every parameter (not the states, which get no gradient),
    by PyTorch autograd through the reference; a training-mode reference updates the copies of
    the states in `params` that it is given (`params` itself is left alone)."""
    states = {s.name for s in reference.signature.states}
    leaves = {k: torch.tensor(v, requires_grad=k not in states) for k, v in params.items()}
    loss = next(iter(reference({**leaves, **{k: torch.from_numpy(v) for k, v in inputs.items()}}).values()))
    trained = {k: v for k, v in leaves.items() if k not in states}
    if not loss.requires_grad:  # no parameter reaches the loss (a model may ignore its params): all zero
        return {k: np.zeros_like(params[k]) for k in trained}
    grads = torch.autograd.grad(loss, list(trained.values()), allow_unused=True)
    return {k: (np.zeros_like(params[k]) if g is None else g.numpy()) for k, g in zip(trained, grads)}


# -- tests ------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed,dtype", CASES, ids=[f"{d}-{s}" for s, d in CASES])
def test_random_model_matches_torch(seed: int, dtype: str) -> None:
    model: GeneratedModel = generate(seed, dtype)
    check_forward(model.text, dtype, seed, model.output_shapes)


GRAD_CASES = list(range(int(os.environ.get("MLC_RANDOM_GRADIENTS", "100"))))
GRAD_TOL = {"f64": 1e-9, "f32": 1e-4}


@pytest.mark.parametrize("seed", GRAD_CASES)
def test_random_model_gradients_match_torch(seed: int) -> None:
    """d loss / d params of the compiled gradient program (autodiff, scatter-to-gather, C) equal
    PyTorch autograd through the reference, on the same parameters and inputs; both run in
    training mode, and the running statistics they update agree too."""
    model: GeneratedModel = generate(seed, "f64")
    trial = prepare(model.text, "f64", seed)
    training = TorchModel.from_source(model.text, training=True)
    expected = reference_gradients(training, trial.params, trial.inputs)
    expected_states = {k: v.copy() for k, v in trial.params.items() if k in trial.program.states}
    training.run({**trial.params, **expected_states}, trial.inputs)  # updates those copies in place
    _, grads = trial.program.grad(trial.params, trial.inputs)  # and these the caller's states
    assert set(grads) == set(expected)
    compared = [(f"d loss / d {k}", grads[k], ref) for k, ref in expected.items()]
    compared += [(f"state {k}", trial.params[k], ref) for k, ref in expected_states.items()]
    for what, got, ref in compared:
        scale = max(float(np.max(np.abs(ref))) if ref.size else 0.0, 1.0)
        err = float(np.max(np.abs(got - ref))) if ref.size else 0.0
        assert err <= GRAD_TOL["f64"] * scale, f"{what}: max |mlc - torch| = {err:.3g}\n{model.text}"


@pytest.mark.parametrize("name", REGRESSIONS)
def test_regression_model_matches_torch(name: str) -> None:
    """Programs GCC 12 miscompiled (-O3, AVX: if-conversion of bounds-guarded loads) while the
    backend emitted those reads as conditional loads; they are branch-free clamped loads now."""
    text, dtype, seed = REGRESSIONS[name]
    check_forward(text, dtype, seed)


def test_reference_gradients_are_finite() -> None:
    """The generator keeps values sane enough for gradient tests: every reference gradient of a
    sample of models, at their initial parameters, is finite (no compile needed)."""
    for seed in range(0, COUNT, 4):
        model = generate(seed)
        reference = TorchModel.from_source(model.text)
        rng = np.random.default_rng(seed)
        params = {s.name: init_tensor(s, rng) for s in (*reference.signature.params, *reference.signature.states)}
        inputs = {s.name: rng.uniform(-1, 1, size=s.shape) for s in reference.signature.inputs}
        for name, g in reference_gradients(reference, params, inputs).items():
            assert np.all(np.isfinite(g)), f"d loss / d {name} is not finite\n{model.text}"


def test_generator_is_deterministic_and_covers_the_language() -> None:
    assert generate(3).text == generate(3).text and generate(3, "f32").text != generate(3).text
    texts = "\n".join(generate(seed, dtype).text for seed, dtype in CASES)
    features = [
        "conv2d(", "binconv2d(", "mode=bwn", "pad_value=-1", "pad_value=1", "maxpool2d(", "avgpool2d(", "dense(",
        "matmul(", "flatten(", "reshape(", "concat(", "relu(", "sigmoid(", "tanh(", "exp(", "log(", "sqrt(", "abs(",
        "sign(", "neg(", "sum(", "mean(", "softmax(", "log_softmax(", "batchnorm(", "mse(", "bce(",
        "softmax_cross_entropy(", "kl_normal(", "mean=m", "momentum=", "padding=same", "padding=(", "padding=1", "dilation=", "stride=(",
        "axis=(", "axis=-", "op op", "max(k:", "sum(k:", "i / ", "i % ", "select(", "x[i, i]", "f32[", "= glorot", "= normal(",
        "= uniform(", "transpose(", "slice(", "step=-", "pad(", "value=", "layernorm(", "bce_logits(", "ceil_mode=true", "count_pad=true", "groups=", "conv2d_transpose(", "output_padding=", "max(t", "min(", "square(", "silu(", "softplus(", "leaky_relu(", "elu(", "hardtanh(", "clamp(", ", lo=", "erf(", "gelu(", "approximate=tanh", "upsample2d(", "mode=bilinear",
    ]  # fmt: skip
    missing = [f for f in features if f not in texts]
    assert not missing, f"no generated model uses {missing}"
