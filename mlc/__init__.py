"""mlc: a small compiler for neural networks, from the mlc language to C, built on xDSL."""

from mlc.api import Program, compile
from mlc.errors import CompileError

__all__ = ["CompileError", "Program", "compile"]
