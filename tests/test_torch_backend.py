"""`torch.compile(model, backend="mlc")` against eager PyTorch: training steps, inference,
fallback, recompilation, registration."""

from __future__ import annotations

import copy
import importlib.metadata
import re
import warnings

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch_zoo import ZOO

from mlc.runtime import torch_backend
from mlc.runtime.torch_backend import MlcFallbackWarning, MlcUnsupportedError

ADAM = {"vae"}
"""Trained with Adam; the others with SGD and momentum. Adam divides each gradient by its own
running magnitude, so a gradient that is zero in exact arithmetic (a bias before a batch norm, a
dead relu's weights) becomes a full step of either sign from rounding noise, differently in any
two implementations: that compares rounding, not training."""


@pytest.fixture(autouse=True)
def fresh_dynamo(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Dynamo keeps 8 graphs per function and runs it eager past that, without the backend:
    each test starts afresh, and counts the mlc programs its calls run (`mlc_runs`)."""
    from mlc.runtime import torch_backend

    torch._dynamo.reset()
    runs: list[str] = []
    original = torch_backend.Entry.__call__
    monkeypatch.setattr(torch_backend.Entry, "__call__", lambda self, args: runs.append(self.imported.text) or original(self, args))
    return runs


def relative(got: torch.Tensor, want: torch.Tensor) -> float:
    got, want = got.detach().double(), want.detach().double()
    return float((got - want).abs().max() / want.abs().max().clamp_min(1e-30)) if want.numel() else 0.0


def _optimizer(name: str, params) -> torch.optim.Optimizer:  # noqa: ANN001 - parameter iterator
    return torch.optim.Adam(params, lr=1e-2) if name in ADAM else torch.optim.SGD(params, lr=0.05, momentum=0.9)


@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_trains_and_infers_like_eager(name: str, fresh_dynamo: list[str]) -> None:
    """5 steps of f32 training (losses, parameters, batch-norm buffers within 1e-5 relative,
    `num_batches_tracked` equal), then the eval() forward under no_grad; all with fallback=error.
    Dropout masks and randn_like come from PyTorch's generator: the seeds before each step are
    the same for both."""
    torch.manual_seed(0)
    eager = ZOO[name]()
    mine = copy.deepcopy(eager)
    compiled = torch.compile(mine, backend="mlc", options={"fallback": "error"})
    opt_eager, opt_mine = _optimizer(name, eager.parameters()), _optimizer(name, mine.parameters())
    for step in range(5):
        x, y = ZOO[name].inputs(4, torch.float32)
        torch.manual_seed(100 + step)
        loss_eager, _ = eager(x, y)
        opt_eager.zero_grad(set_to_none=True)
        loss_eager.backward()
        opt_eager.step()
        torch.manual_seed(100 + step)
        loss_mine, _ = compiled(x, y)
        opt_mine.zero_grad(set_to_none=True)
        loss_mine.backward()
        opt_mine.step()
        assert relative(loss_mine, loss_eager) <= 1e-5, (step, float(loss_mine), float(loss_eager))
    for (key, want), (_, got) in zip(eager.state_dict().items(), mine.state_dict().items(), strict=True):
        if want.dtype.is_floating_point:
            assert relative(got, want) <= 1e-5, key
        else:
            assert torch.equal(got, want), key
    eager.eval()
    mine.eval()
    x, y = ZOO[name].inputs(3, torch.float32)
    with torch.no_grad():
        torch.manual_seed(7)
        want = eager(x, y)
        torch.manual_seed(7)
        got = compiled(x, y)
    for g, w in zip(got, want, strict=True):
        assert relative(g, w) <= 1e-5
    assert len(fresh_dynamo) == 6, "every call ran an mlc program"


@pytest.mark.parametrize("name,options", [("lenet5", {}), ("separable", {}), ("separable", {"budget": "60%"})])
def test_f64_gradients_match_eager(name: str, options: dict, fresh_dynamo: list[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """One backward in f64: every parameter's .grad within 1e-9 of eager's (relative to the
    largest gradient: a bias before a batch norm has a gradient that is zero in exact arithmetic,
    rounding noise in both), and the input's gradient when the input requires grad. Without
    checkpoint options the backward is the split VJP's; with a budget, the checkpointed VJP
    (which recomputes forward values under the budget). resnet: in f64 by the eval-mode test."""
    torch.manual_seed(1)
    eager = ZOO[name]().double()
    mine = copy.deepcopy(eager)
    x, y = ZOO[name].inputs(2, torch.float64)
    x_eager, x_mine = x.clone().requires_grad_(), x.clone().requires_grad_()
    torch.manual_seed(3)
    eager(x_eager, y)[0].backward()
    torch.manual_seed(3)
    backwards: list[str] = []
    original = torch_backend.Entry.backward
    monkeypatch.setattr(torch_backend.Entry, "backward",
                        lambda self, *a: backwards.append(self.differentiated()[1].fn.name) or original(self, *a))
    torch.compile(mine, backend="mlc", options={"fallback": "error", **options})(x_mine, y)[0].backward()
    assert backwards and all(b.endswith("_grad" if options else "_grad_backward") for b in backwards), backwards
    scale = max(float(p.grad.abs().max()) for p in eager.parameters())
    for (key, want), got in zip(eager.named_parameters(), mine.parameters(), strict=True):
        assert float((got.grad - want.grad).abs().max()) <= 1e-9 * scale, key
    assert relative(x_mine.grad, x_eager.grad) <= 1e-9


def test_eval_mode_gradients_use_the_running_statistics(fresh_dynamo: list[str]) -> None:
    """Gradients through an eval() model (input attribution, fine-tuning above frozen batch norms)
    treat the running statistics as constants, as eager does, and leave them unchanged."""
    torch.manual_seed(6)
    eager = ZOO["resnet"]().double()
    for module in eager.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    eager.eval()
    mine = copy.deepcopy(eager)
    x, y = ZOO["resnet"].inputs(2, torch.float64)
    x_eager, x_mine = x.clone().requires_grad_(), x.clone().requires_grad_()
    eager(x_eager, y)[0].backward()
    torch.compile(mine, backend="mlc", options={"fallback": "error"})(x_mine, y)[0].backward()
    assert fresh_dynamo, "mlc ran"
    assert relative(x_mine.grad, x_eager.grad) <= 1e-9
    scale = max(float(p.grad.abs().max()) for p in eager.parameters())
    for want, got in zip(eager.parameters(), mine.parameters(), strict=True):
        assert float((got.grad - want.grad).abs().max()) <= 1e-9 * scale
    for (key, want), (_, got) in zip(eager.state_dict().items(), mine.state_dict().items(), strict=True):
        assert torch.equal(got, want), key


def test_lr_scheduler_and_gradient_clipping_work_unchanged(fresh_dynamo: list[str]) -> None:
    """StepLR and clip_grad_norm_ act on .grad and the optimizer as in eager: 4 steps agree."""
    torch.manual_seed(8)
    eager = ZOO["mlp"]()
    mine = copy.deepcopy(eager)
    compiled = torch.compile(mine, backend="mlc", options={"fallback": "error"})
    runs = []
    for model, call in ((eager, eager), (mine, compiled)):
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        schedule = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
        gen = torch.Generator().manual_seed(1)
        for _ in range(4):
            x, y = torch.randn(4, 20, generator=gen), torch.randn(4, 5, generator=gen)
            torch.manual_seed(9)
            loss, _ = call(x, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=0.5)
            opt.step()
            schedule.step()
        runs.append([p.detach().clone() for p in model.parameters()])
    assert fresh_dynamo, "mlc ran"
    for got, want in zip(runs[1], runs[0], strict=True):
        assert relative(got, want) <= 1e-5


class _WithCumsum(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cumsum(F.relu(self.fc(x)), dim=1).sum()


def test_unsupported_op_runs_in_pytorch_and_the_rest_in_mlc(fresh_dynamo: list[str]) -> None:
    """The graph is split around the op: one warning names it, its shapes and the source line;
    the linear and relu before it and the sum after it run as mlc programs, and training
    through the three parts gives eager's gradients."""
    programs = fresh_dynamo
    torch.manual_seed(2)
    eager = _WithCumsum()
    mine = copy.deepcopy(eager)
    compiled = torch.compile(mine, backend="mlc")
    x = torch.randn(3, 6)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = compiled(x)
        compiled(x)
    messages = [str(w.message) for w in caught if issubclass(w.category, MlcFallbackWarning)]
    assert len(messages) == 1, messages
    assert "torch.cumsum" in messages[0] and re.search(r"test_torch_backend\.py:\d+", messages[0]), messages[0]
    assert messages[0].endswith("this op runs in PyTorch")
    assert any("dense(" in p and "relu(" in p for p in programs) and any("sum(" in p for p in programs)
    want = eager(x)
    assert relative(got, want) <= 1e-6
    got.backward()
    want.backward()
    assert relative(mine.fc.weight.grad, eager.fc.weight.grad) <= 1e-6


def test_unsupported_op_with_fallback_error_names_op_shapes_and_line() -> None:
    compiled = torch.compile(_WithCumsum(), backend="mlc", options={"fallback": "error"})
    with pytest.raises(MlcUnsupportedError, match=r"torch\.cumsum on float32\[3, 4\].*test_torch_backend\.py:\d+"):
        compiled(torch.randn(3, 6))


def test_a_new_batch_size_compiles_again(fresh_dynamo: list[str]) -> None:
    torch.manual_seed(4)
    model = ZOO["lenet5"]()
    compiled = torch.compile(model, backend="mlc", options={"fallback": "error"})
    for batch in (2, 3, 5):
        x, y = ZOO["lenet5"].inputs(batch, torch.float32)
        with torch.no_grad():
            got, want = compiled(x, y), model(x, y)
        assert relative(got[1], want[1]) <= 1e-5 and got[1].shape == (batch, 10)
    shapes = [re.search(r"input +x: f32\[(\d+),", text).group(1) for text in fresh_dynamo]
    assert shapes == ["2", "3", "5"]


def test_inference_mode_runs_the_forward_program_only() -> None:
    from mlc.runtime import torch_backend

    torch.manual_seed(5)
    model = ZOO["mlp"]().eval()
    calls = []
    original = torch_backend.Entry.backward
    torch_backend.Entry.backward = lambda *a, **k: calls.append(a) or original(*a, **k)  # type: ignore[method-assign]
    try:
        x, y = ZOO["mlp"].inputs(4, torch.float32)
        with torch.inference_mode():
            got = torch.compile(model, backend="mlc", options={"fallback": "error"})(x, y)
        assert not got[0].requires_grad and not calls
        assert relative(got[1], model(x, y)[1]) <= 1e-5
    finally:
        torch_backend.Entry.backward = original  # type: ignore[method-assign]


def test_a_class_target_out_of_range_is_a_clear_error() -> None:
    compiled = torch.compile(ZOO["lenet5"](), backend="mlc", options={"fallback": "error"})
    x, _ = ZOO["lenet5"].inputs(2, torch.float32)
    with pytest.raises(ValueError, match=r"class targets must lie in \[0, 10\)"):
        compiled(x, torch.tensor([3, 10]))


def test_registered_as_a_dynamo_backend() -> None:
    names = {e.name for e in importlib.metadata.entry_points(group="torch_dynamo_backends")}
    assert "mlc" in names
    assert "mlc" in torch._dynamo.list_backends(exclude_tags=())


def test_unknown_options_are_refused() -> None:
    with pytest.raises(Exception, match="unknown option 'fallbak'"):
        torch.compile(_WithCumsum(), backend="mlc", options={"fallbak": "error"})(torch.randn(3, 6))
    with pytest.raises(Exception, match="fallback must be one of eager, error"):
        torch.compile(_WithCumsum(), backend="mlc", options={"fallback": "never"})(torch.randn(3, 6))
