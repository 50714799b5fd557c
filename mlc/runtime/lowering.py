"""Program text to IR through pass pipelines: the context with every dialect, parsing either
language, choosing the model, running a pipeline in `mlc-opt -p` syntax."""

from __future__ import annotations

import re
from pathlib import Path

from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp
from xdsl.parser import Parser
from xdsl.passes import ModulePass, PassPipeline

from mlc.errors import CompileError, decode_source
from mlc.graph.signature import is_model

_MLIR_START = re.compile(r'^\s*(//.*\n\s*)*("?builtin\.module|module\b|"?func\.func)')


def make_context() -> Context:
    """A context with every dialect mlc's IR can contain (xDSL's and mlc's own)."""
    from xdsl.dialects import get_all_dialects

    from mlc.universe import MLC_UNIVERSE

    ctx = Context()
    for name, factory in {**get_all_dialects(), **MLC_UNIVERSE.all_dialects}.items():
        if name not in ctx.registered_dialect_names:
            ctx.register_dialect(name, factory)
    return ctx


def is_path(source: str | Path) -> bool:
    """A `Path`, or one line of text naming a `.mlc`/`.mlir` file (else: program text)."""
    return isinstance(source, Path) or ("\n" not in str(source) and str(source).endswith((".mlc", ".mlir")))


def load_module(source: str | Path | ModuleOp, ctx: Context) -> ModuleOp:
    """Parse a `.mlc`/`.mlir` path, program text (either language) or pass a ModuleOp through."""
    if isinstance(source, ModuleOp):
        return source.clone()
    filename = "<input>"
    text = str(source)
    if is_path(source):
        path = Path(source)
        if not path.exists():
            raise FileNotFoundError(f"no such file: {path}")
        filename, text = str(path), decode_source(path.read_bytes(), str(path))
        is_mlir = path.suffix == ".mlir"
    else:
        is_mlir = _MLIR_START.match(text) is not None
    if is_mlir:
        return Parser(ctx, text, filename).parse_module()
    from mlc.frontend import parse_mlc

    return parse_mlc(text, filename)


def select_model(module: ModuleOp, model: str | None) -> func.FuncOp:
    """The model function named `model`, or the only one when `model` is None."""
    models = [op for op in module.ops if isinstance(op, func.FuncOp) and is_model(op)]
    if model is not None:
        for f in models:
            if f.sym_name.data == model:
                return f
        raise ValueError(f"no model named '{model}' (defined: {', '.join(f.sym_name.data for f in models) or 'none'})")
    if len(models) != 1:
        names = ", ".join(f.sym_name.data for f in models) or "none"
        raise ValueError(f"the source defines {len(models)} models ({names}); pass model=NAME")
    return models[0]


def run_pipeline(module: ModuleOp, pipeline: str, ctx: Context, keep: str | tuple[str, ...] | None = None) -> None:
    """Apply a pass pipeline given in `mlc-opt -p` syntax. With `keep`, once a pass has made the
    function `@keep` (every function of a tuple), the module's other functions are dropped (the
    later passes, which do the costly lowering, then work on those functions alone)."""
    kept = (keep,) if isinstance(keep, str) else keep or ()
    from xdsl.transforms import get_all_passes

    from mlc.universe import MLC_UNIVERSE

    def prune(_: ModulePass, current: ModuleOp, __: ModulePass) -> None:
        names = {op.sym_name.data for op in current.ops if isinstance(op, func.FuncOp)}
        if all(name in names for name in kept):
            for op in [o for o in current.ops if not (isinstance(o, func.FuncOp) and o.sym_name.data in kept)]:
                current.body.block.detach_op(op)

    passes = {**get_all_passes(), **MLC_UNIVERSE.all_passes}
    PassPipeline.parse_spec(passes, pipeline, prune if kept else None).apply(ctx, module)


def run_located(module: ModuleOp, pipeline: str, ctx: Context, keep: tuple[str, ...], source: object) -> None:
    """`run_pipeline` (nothing for an empty one), with a pass's located error about program text
    showing its lines."""
    try:
        if pipeline:
            run_pipeline(module, pipeline, ctx, keep=keep)
    except CompileError as error:
        if isinstance(source, str) and "\n" in source and error.source is None:
            raise error.with_source(source) from None
        raise
