"""The table of lowerings: nn op class -> the function that builds its compute ops."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from xdsl.ir import Operation, SSAValue

from mlc.loops.compute_builders import Shape, shape_of

Lowering = Callable[[Any], SSAValue]
"""Builds the compute ops of one nn op (at the implicit insertion point); returns its value."""
LOWERINGS: dict[type[Operation], Lowering] = {}
"""nn op class -> its lowering."""

L = TypeVar("L", bound=Lowering)


def lowers(*classes: type[Operation]) -> Callable[[L], L]:
    """Register the decorated function as the lowering of `classes`."""

    def register(fn: L) -> L:
        for cls in classes:
            LOWERINGS[cls] = fn
        return fn

    return register


StateUpdate = tuple[SSAValue, SSAValue]
"""(a state argument of the function, its value after a training-mode run)."""
TrainingLowering = Callable[[Any], tuple[SSAValue, list[StateUpdate]]]
"""The training-mode lowering of an op that owns state: its value and its states' updates."""
TRAINING_LOWERINGS: dict[type[Operation], TrainingLowering] = {}
"""nn op class -> its lowering in training mode, where that differs from inference mode."""


def lowers_in_training(*classes: type[Operation]) -> Callable[[TrainingLowering], TrainingLowering]:
    """Register the decorated function as the training-mode lowering of `classes`."""

    def register(fn: TrainingLowering) -> TrainingLowering:
        for cls in classes:
            TRAINING_LOWERINGS[cls] = fn
        return fn

    return register


def out_shape(op: Operation) -> Shape:
    return shape_of(op.results[0])
