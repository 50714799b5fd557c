"""Inference models with parameters: a model with params may output anything when it only runs
forward (a classifier returning logits); differentiating or training it with a non-scalar loss is
the located error at the `output` statement, from the API as `CompileError`."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import mlc

CLASSIFIER = """model classifier {
  input x: f64[BATCH, 7, 5, 3]
  param w: f64[3, 3, 3, 4]
  param b: f64[4]
  param wd: f64[48, 6]
  h = relu(conv2d(x, w, stride=2, padding=same) + b)
  logits = dense(flatten(h), wd)
  output logits, h
}
"""


@pytest.mark.parametrize("batch", [1, 3])
def test_classifier_returning_logits_runs_forward(batch: int) -> None:
    """Against PyTorch in float64 (NHWC/HWIO translated to NCHW/OIHW; `same` at stride 2 pads
    7x5 by one row and one column on every side)."""
    program = mlc.compile(CLASSIFIER.replace("BATCH", str(batch)))
    rng = np.random.default_rng(batch)
    params = {name: rng.standard_normal(shape) for name, (shape, _) in program.params.items()}
    x = rng.standard_normal((batch, 7, 5, 3))
    outs = program.run(params, {"x": x})

    xt = F.pad(torch.tensor(x).permute(0, 3, 1, 2), (1, 1, 1, 1))
    h = torch.relu(F.conv2d(xt, torch.tensor(params["w"]).permute(3, 2, 0, 1), torch.tensor(params["b"]), stride=2))
    h = h.permute(0, 2, 3, 1)
    logits = h.reshape(batch, 48) @ torch.tensor(params["wd"])
    assert outs["h"].shape == (batch, 4, 3, 4)
    np.testing.assert_allclose(outs["h"], h.numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(outs["logits"], logits.numpy(), rtol=1e-10, atol=1e-10)


def test_differentiating_a_non_scalar_loss_is_a_located_error() -> None:
    program = mlc.compile(CLASSIFIER.replace("BATCH", "2"))
    expected = (
        "<input>:8:10: error: the first output 'logits' is the loss and must be a scalar when the model is "
        "differentiated, got f64[2, 6]\n"
        "      output logits, h\n"
        "             ^~~~~~"
    )
    params = program.init_params(0)
    x = np.zeros((2, 7, 5, 3))
    with pytest.raises(mlc.CompileError) as grad_error:
        program.grad(params, {"x": x})
    assert str(grad_error.value) == expected
    with pytest.raises(mlc.CompileError) as train_error:
        program.trainer("sgd", lr=0.1)
    assert str(train_error.value) == expected
