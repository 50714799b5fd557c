"""Frontends: source languages to graph-level IR. `language`: the `.mlc` language (``parse_mlc``)."""

from __future__ import annotations

from xdsl.dialects.builtin import ModuleOp

from mlc.frontend.language.emit import emit_module
from mlc.frontend.language.parser import parse

__all__ = ["emit_module", "parse", "parse_mlc"]


def parse_mlc(text: str, filename: str = "<input>") -> ModuleOp:
    """Compile mlc source text to a module of model functions; raises :class:`mlc.errors.CompileError`."""
    return emit_module(parse(text, filename))
