"""`Trainer`: runs a compiled training step and keeps the optimizer state.

The step function (see `mlc.passes.optimizer`) takes the parameters, the inputs, the optimizer
state and the hyper-parameters, and returns the model's outputs with the updated parameters and
state; the trainer copies those back into the caller's parameter arrays and its own state, so
`step` updates `params` in place like `torch.optim.Optimizer.step`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from mlc.api import Program

DEFAULTS = {
    "sgd": {"lr": None, "momentum": 0.0, "dampening": 0.0, "weight_decay": 0.0, "nesterov": False},
    "adam": {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0},
}


class Trainer:
    """One optimizer over one model; `step(params, inputs)` trains on one batch."""

    def __init__(self, step: Program, optimizer: str, hyper: Mapping[str, object]) -> None:
        unknown = set(hyper) - set(DEFAULTS[optimizer])
        if unknown:
            raise ValueError(f"unknown {optimizer} option '{sorted(unknown)[0]}' (expected {', '.join(DEFAULTS[optimizer])})")
        self.options = {**DEFAULTS[optimizer], **hyper}
        if self.options["lr"] is None:
            raise ValueError("sgd needs a learning rate: trainer('sgd', lr=...)")
        if optimizer == "sgd" and self.options["nesterov"] and (
            self.options["momentum"] <= 0 or self.options["dampening"] != 0  # type: ignore[operator]
        ):
            raise ValueError("nesterov momentum requires a momentum and zero dampening (as in PyTorch)")
        self.optimizer = optimizer
        self.program = step
        sig = step.signature
        self.state = {s.name: np.zeros(s.shape, dtype=s.dtype) for s in sig.args if s.kind == "state"}
        self._hyper = [s for s in sig.args if s.kind == "hyper"]
        self._updated = [s.name.removeprefix("new.") for s in sig.outputs if s.name.startswith("new.")]
        self.steps = 0

    def hyper_parameters(self) -> dict[str, float]:
        """The scalars the step function takes this step (some depend on the step count)."""
        o, t = self.options, self.steps
        if self.optimizer == "sgd":
            g_scale = 1.0 if t == 1 else 1.0 - float(o["dampening"])  # type: ignore[arg-type]
            return {"lr": o["lr"], "momentum": o["momentum"], "g_scale": g_scale, "weight_decay": o["weight_decay"]}  # type: ignore[dict-item]
        beta1, beta2 = o["betas"]  # type: ignore[misc]
        return {
            "step_size": float(o["lr"]) / (1.0 - beta1**t),  # type: ignore[arg-type]
            "beta1": beta1,
            "beta2": beta2,
            "eps": o["eps"],  # type: ignore[dict-item]
            "bc2_sqrt": math.sqrt(1.0 - beta2**t),
            "weight_decay": o["weight_decay"],  # type: ignore[dict-item]
        }

    def step(self, params: dict[str, np.ndarray], inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Forward, backward and update on one batch; `params` are updated in place.

        Returns the model's outputs (computed with the parameters before the update).
        """
        self.steps += 1
        values = self.hyper_parameters()
        hyper = {s.name: np.asarray(values[s.name.removeprefix("hyper.")], dtype=s.dtype) for s in self._hyper}
        outs = self.program._call({**params, **inputs, **self.state, **hyper})  # noqa: SLF001
        for name in self._updated:
            target = params[name] if name in params else self.state[name]
            np.copyto(target, outs.pop(f"new.{name}"))
        return outs
