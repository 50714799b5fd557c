"""The checks every call into a compiled function makes of the caller's arrays."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from mlc.graph.signature import TensorSpec


def check_names(what: str, given: Mapping[str, np.ndarray], specs: tuple[TensorSpec, ...]) -> None:
    expected = [s.name for s in specs]
    missing = [n for n in expected if n not in given]
    unknown = [n for n in given if n not in expected]
    if missing:
        raise ValueError(f"missing {what} '{missing[0]}' (expected {what}s: {', '.join(expected)})")
    if unknown:
        raise ValueError(f"unknown {what} '{unknown[0]}' (expected {what}s: {', '.join(expected) or 'none'})")


def checked(spec: TensorSpec, value: np.ndarray, written: bool = False) -> np.ndarray:
    """Validate one argument (`written`: the call updates it in place); non-contiguous arrays
    are copied, everything else is passed as is."""
    if not isinstance(value, np.ndarray):
        raise ValueError(f"{spec.kind} '{spec.name}' must be a numpy array, got {type(value).__name__}")
    if value.dtype != spec.dtype:
        raise ValueError(f"{spec.kind} '{spec.name}' must have dtype {spec.dtype}, got {value.dtype}")
    if value.shape != spec.shape:
        raise ValueError(f"{spec.kind} '{spec.name}' must have shape {list(spec.shape)}, got {list(value.shape)}")
    if written and not value.flags.writeable:
        raise ValueError(f"{spec.kind} '{spec.name}' is updated in place, but its array is read-only")
    return value if value.flags.c_contiguous else np.ascontiguousarray(value)
