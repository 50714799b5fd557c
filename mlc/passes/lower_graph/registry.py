"""The tables of lowerings: nn op class -> the function that builds its compute ops."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from xdsl.ir import Operation, SSAValue

from mlc.loops.compute_builders import Shape, shape_of

Lowering = Callable[[Any], SSAValue]
"""Builds the compute ops of one nn op (at the implicit insertion point); returns its value."""
LOWERINGS: dict[type[Operation], Lowering] = {}
"""nn op class -> its lowering."""

StateUpdate = tuple[SSAValue, SSAValue]
"""(a state argument of the function, its value after a training-mode run)."""
TrainingLowering = Callable[[Any], tuple[SSAValue, list[StateUpdate]]]
"""The training-mode lowering of an op that owns state: its value and its states' updates."""
TRAINING_LOWERINGS: dict[type[Operation], TrainingLowering] = {}
"""nn op class -> its lowering in training mode, where that differs from inference mode."""

F = TypeVar("F", bound=Callable[..., Any])


def _registers_in(table: dict[type[Operation], Any]) -> Callable[..., Callable[[F], F]]:
    def registers(*classes: type[Operation]) -> Callable[[F], F]:
        def register(fn: F) -> F:
            for cls in classes:
                table[cls] = fn
            return fn

        return register

    return registers


lowers = _registers_in(LOWERINGS)
"""`@lowers(nn.XOp, ...)`: register the decorated function as the lowering of those ops."""
lowers_in_training = _registers_in(TRAINING_LOWERINGS)
"""`@lowers_in_training(nn.XOp)`: register the decorated function as their training-mode lowering."""


def out_shape(op: Operation) -> Shape:
    return shape_of(op.results[0])
