"""Where in the source a model function came from, kept on the function for later passes' errors.

The frontend records `mlc.loc` (the model's name) and `mlc.output_locs` (each name of the `output`
statement, with its span) as `FILE:LINE:COL` or `FILE:LINE:COL-END_LINE:END_COL` strings; a pass
that rejects the model turns them back into a located `CompileError` (the source line is shown
when FILE can still be read), or into a plain pass failure for IR that has no locations.
"""

from __future__ import annotations

import re
from pathlib import Path

from xdsl.dialects import func
from xdsl.dialects.builtin import ArrayAttr, StringAttr
from xdsl.ir import Operation
from xdsl.utils.exceptions import PassFailedException

from mlc.errors import CompileError, SourceLocation

MODEL_LOC = "mlc.loc"
OUTPUT_LOCS = "mlc.output_locs"

_LOCATION = re.compile(r"(.*):(\d+):(\d+)(?:-(\d+):(\d+))?")


def location_text(loc: SourceLocation) -> str:
    """`loc` as an attribute string (without the source text)."""
    span = f"-{loc.end_line}:{loc.end_col}" if loc.end_line is not None else ""
    return f"{loc.file}:{loc.line}:{loc.col}{span}"


def parse_location(text: str) -> SourceLocation | None:
    match = _LOCATION.fullmatch(text)
    if match is None:
        return None
    file, line, col, end_line, end_col = match.groups()
    path = Path(file)
    source = path.read_text() if path.is_file() else None
    return SourceLocation(file, int(line), int(col), int(end_line) if end_line else None,
                          int(end_col) if end_col else None, source=source)


def model_location(f: func.FuncOp) -> SourceLocation | None:
    attr = f.attributes.get(MODEL_LOC)
    return parse_location(attr.data) if isinstance(attr, StringAttr) else None


def op_location(op: Operation) -> SourceLocation | None:
    """Where the frontend recorded an op's call (ops with `KEEPS_LOCATION`), else None."""
    attr = op.attributes.get(MODEL_LOC)
    return parse_location(attr.data) if isinstance(attr, StringAttr) else None


def output_location(f: func.FuncOp, index: int) -> SourceLocation | None:
    """The location of the `index`-th name of the `output` statement (else the model's)."""
    attr = f.attributes.get(OUTPUT_LOCS)
    if isinstance(attr, ArrayAttr) and index < len(attr.data) and isinstance(item := attr.data[index], StringAttr):
        return parse_location(item.data)
    return model_location(f)


def fail(loc: SourceLocation | None, message: str) -> None:
    """A located `CompileError` where the source is known, else a pass failure with the message."""
    if loc is not None:
        raise CompileError(loc, message)
    raise PassFailedException(message)
