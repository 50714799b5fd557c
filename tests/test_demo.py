"""The training demo (`examples/demo.py`) in quick mode: a short digits-CNN run learns.

No timing assertions: only that training through mlc lowers the loss, that the held-out accuracy
(from the compiled model's own logits) is far above chance, and that the PyTorch baseline the
demo times against trains the same model from the same start.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("torch")

DEMO_PATH = Path(__file__).resolve().parent.parent / "examples" / "demo.py"


@pytest.fixture(scope="module")
def demo():
    spec = importlib.util.spec_from_file_location("mlc_examples_demo", DEMO_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


@pytest.fixture(scope="module")
def data(demo):
    return demo.load_digits()


def test_split_and_batches(demo, data) -> None:
    assert len(data.train_y) + len(data.test_y) == 1797
    assert set(np.unique(data.test_y)) == set(range(10))
    assert data.train_x.min() >= 0.0 and data.train_x.max() <= 1.0
    batches = demo.train_batches(len(data.train_y), np.random.default_rng(0))
    assert all(len(b) == demo.BATCH for b in batches)
    assert set(np.concatenate(batches)) == set(range(len(data.train_y)))  # the last batch wraps
    evals = demo.eval_batches(len(data.test_y))
    real = np.concatenate([idx[:n] for idx, n in evals])
    np.testing.assert_array_equal(real, np.arange(len(data.test_y)))  # each test image once


def test_digits_cnn_quick_training(demo, data) -> None:
    lines: list[str] = []
    result = demo.train_model(demo.SPECS["digits_cnn"], data, epochs=2, max_steps=20, log=lines.append)
    assert result.error is None
    assert len(result.train_loss) == 2 and all(math.isfinite(v) for v in result.train_loss)
    assert result.train_loss[-1] < result.train_loss[0]
    assert result.test_acc[-1] > 0.5, lines  # chance is 0.1
    # The PyTorch baseline trains the same model from the same parameters on the same batches.
    np.testing.assert_allclose(result.torch_loss[0], result.train_loss[0], rtol=1e-2)
    assert any("compile: training step" in line for line in lines)


def test_vae_quick_training(demo, data) -> None:
    """The VAE's input `eps` is fed fresh noise every step, beside Adam's own `eps`."""
    result = demo.train_model(demo.SPECS["vae"], data, epochs=2, max_steps=15, torch_baseline=False, log=lambda _: None)
    assert all(math.isfinite(v) for v in result.train_loss)
    assert result.train_loss[-1] < result.train_loss[0]
    assert result.test_loss[-1] < result.test_loss[0]


def test_xnor_net_scores_one_image_at_a_time(demo, data) -> None:
    """XNOR-Net's batchnorms keep running statistics: the training step updates them in the
    caller's dict, and the batch-1 model scored image by image in inference mode agrees with the
    batch-32 forward program. (Its PyTorch baseline is not compared: sign() makes two f32
    trajectories part after a few steps; tests/test_running_batchnorm.py compares the statistics.)"""
    lines: list[str] = []
    result = demo.train_model(demo.SPECS["xnor_net"], data, epochs=1, max_steps=20, torch_baseline=False, log=lines.append)
    assert result.error is None and result.params is not None
    assert not np.allclose(result.params["m2"], 0.0) and not np.allclose(result.params["v4"], 1.0)
    single = demo.single_image_accuracy(demo.SPECS["xnor_net"], result.params, demo.Feeder(result.prog, data.test_x, data.test_y))
    assert single == pytest.approx(result.test_acc[-1], abs=1e-9), lines
    assert any("one image at a time" in line for line in lines)
