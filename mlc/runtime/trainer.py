"""`Trainer`: runs a compiled training step and keeps the optimizer state.

The step function (see `mlc.passes.optimizer`) takes the parameters, the inputs, the optimizer
state and the hyper-parameters, and returns the model's outputs; it updates the parameters and
state in place (`mlc.updated_in_place`), so `step` updates `params` in place like
`torch.optim.Optimizer.step`. An update the compiler could not tie to its argument is a result
`new.<name>`: the trainer copies such a parameter back, and keeps two copies of such a state
that swap roles each step.

A step of a small model takes tens of microseconds of C, so the Python around it is kept to a
few microseconds per caller's array: the trainer owns every other buffer (the updated
parameters, two copies of the optimizer state that swap roles each step, the hyper-parameter
scalars), keeps their addresses in two prepared argument arrays (one per role of the state),
checks only the caller's arrays, and calls the step once with all addresses
(`CFunction.call_slots`). A caller's array that is the same object as in the last step with these
slots (as parameters updated in place are) keeps its address there after a check of its shape,
dtype and layout, which costs a tenth of a full one.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

import numpy as np

from mlc.backends.c.runtime import aligned_arena
from mlc.runtime.arguments import check_names, checked

if TYPE_CHECKING:
    from mlc.backends.c.runtime import CFunction
    from mlc.graph.signature import ModelSignature

DEFAULTS = {
    "sgd": {"lr": None, "momentum": 0.0, "dampening": 0.0, "weight_decay": 0.0, "nesterov": False},
    "adam": {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0},
}


class CompiledStep(Protocol):
    """What a trainer uses of its compiled step function (a `mlc.runtime.program.Program`)."""

    @property
    def signature(self) -> ModelSignature: ...

    @property
    def function(self) -> CFunction: ...


class Trainer:
    """One optimizer over one model; `step(params, inputs)` trains on one batch."""

    def __init__(self, step: CompiledStep, optimizer: str, hyper: Mapping[str, object]) -> None:
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
        results = {s.name for s in sig.outputs}
        self.state = {s.name: np.zeros(s.shape, dtype=s.dtype) for s in sig.args if s.kind == "optimizer_state"}
        self._next_state = {name: np.zeros_like(v) if f"new.{name}" in results else v for name, v in self.state.items()}
        self._hyper = {s.name: np.zeros(s.shape, dtype=s.dtype) for s in sig.args if s.kind == "hyper"}
        self._new = {s.name: np.empty(s.shape, dtype=s.dtype) for s in sig.outputs
                     if s.name.startswith("new.") and s.name.removeprefix("new.") not in self.state}
        self._user = [(k, s) for k, s in enumerate(sig.args) if s.kind in ("param", "state", "input")]
        self._expected = {"input": sig.inputs, "parameter": (*sig.params, *sig.states)}
        """What `step` takes, to name a missing or an unknown argument."""
        self._written = {k for k, s in self._user if s.kind != "input" and f"new.{s.name}" not in results}
        """The parameters the step updates in place (their slots)."""
        specs = (*sig.args, *sig.outputs)
        self._outputs = [(k, s) for k, s in enumerate(specs) if k >= len(sig.args) and not s.name.startswith("new.")]
        self._fn = step.function
        self._arena = None if self._fn.arena_bytes is None else aligned_arena(self._fn.arena_bytes)
        """This trainer's own arena: trainers of one compiled step may run in parallel threads."""
        self._lock = threading.Lock()
        self._slots = []
        for state, updated in ((self.state, self._next_state), (self._next_state, self.state)):
            owned = {**state, **self._hyper, **self._new, **{f"new.{n}": v for n, v in updated.items()}}
            slots = self._fn.slots(self._arena)
            for k, spec in enumerate(specs):
                if spec.name in owned:
                    slots[k] = owned[spec.name].ctypes.data
            self._slots.append(slots)
        self._bound: list[dict[int, np.ndarray]] = [{}, {}]
        """Per prepared argument array: the caller's arrays whose addresses it holds, by slot."""
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

        Returns the model's outputs (computed with the parameters before the update). Steps of
        one trainer called from several threads run one at a time, in the order they take its
        lock; different trainers run in parallel.
        """
        with self._lock:
            return self._step(params, inputs)

    def _step(self, params: dict[str, np.ndarray], inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.steps += 1
        for name, value in self.hyper_parameters().items():
            self._hyper[f"hyper.{name}"][...] = value
        slots, bound = self._slots[(self.steps - 1) % 2], self._bound[(self.steps - 1) % 2]
        for what, arrays in (("input", inputs), ("parameter", params)):
            check_names(what, arrays, self._expected[what])
        held = []  # the arrays whose addresses the call uses (a copy made by `checked` must live)
        copies = []  # (caller's array, contiguous copy) of parameters the call updates in place
        for k, spec in self._user:
            given = (inputs if spec.kind == "input" else params)[spec.name]
            updated = spec.kind != "input"  # in place, or copied from its `new.` result
            if given is bound.get(k) and given.shape == spec.shape and given.dtype == spec.dtype \
                    and given.flags.c_contiguous and (not updated or given.flags.writeable):
                continue
            held.append(array := checked(spec, given, updated))
            if k in self._written and array is not given:
                copies.append((given, array))
            slots[k] = array.ctypes.data
            if array is given:
                bound[k] = given
            else:
                bound.pop(k, None)
        outs = {}
        for k, spec in self._outputs:
            outs[spec.name] = array = np.empty(spec.shape, dtype=spec.dtype)
            slots[k] = array.ctypes.data
        self._fn.call_slots(slots)
        for _, spec in self._user:
            if spec.kind != "input" and (new := self._new.get(f"new.{spec.name}")) is not None:
                np.copyto(params[spec.name], new)
        for given, array in copies:
            np.copyto(given, array)
        self.state, self._next_state = self._next_state, self.state
        return outs
