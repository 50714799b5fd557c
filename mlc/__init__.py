"""mlc: a small compiler for neural networks, from the mlc language to C, built on xDSL.

The public names are imported lazily: xDSL loads every `xdsl.universe` plugin (mlc's among them)
when any of its tools starts, and those tools must not pay for NumPy and the runtime.
"""

from typing import TYPE_CHECKING, Any

__all__ = ["CompileError", "Program", "compile", "set_num_threads"]

if TYPE_CHECKING:
    from mlc.api import Program, compile
    from mlc.backends.c.runtime import set_num_threads
    from mlc.errors import CompileError


def __getattr__(name: str) -> Any:
    if name in ("compile", "Program"):
        from mlc import api

        return getattr(api, name)
    if name == "set_num_threads":
        from mlc.backends.c.runtime import set_num_threads

        return set_num_threads
    if name == "CompileError":
        from mlc.errors import CompileError

        return CompileError
    raise AttributeError(f"module 'mlc' has no attribute {name!r}")
