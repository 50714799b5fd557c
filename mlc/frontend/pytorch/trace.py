"""A PyTorch model's graphs as mlc text, without compiling them: what `mlc import-torch` prints.

    texts = to_mlc(model, x, y)       # one mlc model per graph Dynamo captures (usually one)

Each text is a `.mlc` file as the backend compiles it (`mlc-opt -f mlc` reads it from stdin), so
the importer can be tested with FileCheck like any frontend.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from mlc.frontend.pytorch.importer import Unsupported, import_graph


def to_mlc(fn: Callable[..., Any], *args: Any) -> list[str]:
    """Run `fn(*args)` once under Dynamo and return the mlc text of every graph it captures
    (raises `Unsupported` for a graph mlc cannot import)."""
    texts: list[str] = []
    problems: list[Unsupported] = []

    def capture(gm: torch.fx.GraphModule, example_inputs: list[Any], **_: Any) -> Callable[..., Any]:
        try:  # raised here, Dynamo would wrap it in its own error
            texts.append(import_graph(gm, example_inputs).text)
        except Unsupported as problem:
            problems.append(problem)
        return gm.forward

    torch.compile(fn, backend=capture, dynamic=False)(*args)
    if problems:
        raise problems[0]
    return texts
