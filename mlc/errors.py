"""Source locations and diagnostics.

Every error a user can cause is reported as ``FILE:LINE:COL: error: MESSAGE`` followed by the
source line and a caret under the column (LANGUAGE.md, "Errors"), never as a traceback.
:class:`CompileError` carries one or more :class:`Diagnostic` s and its ``str()`` is exactly that
rendered text, so a driver only has to print it and exit non-zero.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

#: Indentation of the quoted source line and of the caret line under the header line.
SOURCE_INDENT = "    "


@dataclass(frozen=True, repr=False)
class SourceLocation:
    """A position (1-based line and column) in a file, optionally spanning to ``end_line:end_col``.

    ``end_col`` is exclusive (the column just after the last character), as in Lark.  ``source``
    is the whole text of the file; it is shared, not copied, by all locations of one parse and
    lets any diagnostic show the source line without a side registry.  It takes no part in
    equality or hashing.
    """

    file: str
    line: int
    col: int
    end_line: int | None = None
    end_col: int | None = None
    source: str | None = field(default=None, compare=False)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"

    def __repr__(self) -> str:
        end = f"-{self.end_line}:{self.end_col}" if self.end_line is not None else ""
        return f"<{self.file}:{self.line}:{self.col}{end}>"

    def start(self) -> SourceLocation:
        """This location without its span (a single point)."""
        return SourceLocation(self.file, self.line, self.col, source=self.source)

    def to(self, other: SourceLocation) -> SourceLocation:
        """The span from the start of ``self`` to the end of ``other``."""
        end_line = other.end_line if other.end_line is not None else other.line
        end_col = other.end_col if other.end_col is not None else other.col + 1
        return SourceLocation(self.file, self.line, self.col, end_line, end_col, self.source)

    def source_line(self, source: str | None = None) -> str | None:
        """The text of line ``self.line`` (without its newline), if the source is known."""
        text = self.source if self.source is not None else source
        if text is None:
            return None
        lines = text.split("\n")
        if not 1 <= self.line <= len(lines):
            return None
        return lines[self.line - 1].rstrip("\r")


def _caret(line: str, loc: SourceLocation) -> str:
    """``^`` under ``loc.col`` (``^~~~`` over a span on the same line); tabs are kept for alignment."""
    prefix = "".join("\t" if ch == "\t" else " " for ch in line[: loc.col - 1])
    prefix += " " * max(0, loc.col - 1 - len(line))
    width = 1
    if loc.end_line is not None and loc.end_col is not None:
        last = loc.end_col if loc.end_line == loc.line else len(line) + 1
        width = max(1, min(last, len(line) + 1) - loc.col)
    return prefix + "^" + "~" * (width - 1)


def render_diagnostic(
    loc: SourceLocation | None,
    message: str,
    severity: str = "error",
    source: str | None = None,
) -> str:
    """Render one diagnostic: header line, then (when the source is known) the line and a caret.

    ``source`` is used only when ``loc`` does not carry its own text.
    """
    if loc is None:
        return f"{severity}: {message}"
    header = f"{loc}: {severity}: {message}"
    line = loc.source_line(source)
    if line is None:
        return header
    return f"{header}\n{SOURCE_INDENT}{line}\n{SOURCE_INDENT}{_caret(line, loc)}"


@dataclass(frozen=True)
class Diagnostic:
    """One message about one place (``loc`` is None for errors that have no place, e.g. a missing file)."""

    loc: SourceLocation | None
    message: str
    severity: str = "error"

    def render(self, source: str | None = None) -> str:
        return render_diagnostic(self.loc, self.message, self.severity, source)


class CompileError(Exception):
    """A user-facing compilation error; ``str(err)`` is the complete rendered report.

    Construct as ``CompileError(loc, "message")``, ``CompileError("message")`` (no location),
    ``CompileError(diagnostic)`` or ``CompileError([diag1, diag2, ...])``.  ``source`` supplies the
    file text for locations that do not carry it; :meth:`with_source` attaches it later (e.g. in
    the driver, which knows the text when a deeper pass does not).
    """

    def __init__(
        self,
        what: SourceLocation | Diagnostic | Iterable[Diagnostic] | str | None,
        message: str | None = None,
        *,
        source: str | None = None,
    ) -> None:
        diags: tuple[Diagnostic, ...]
        if isinstance(what, Diagnostic):
            diags = (what,)
        elif isinstance(what, SourceLocation) or what is None:
            if message is None:
                raise TypeError("CompileError(loc, message) needs a message")
            diags = (Diagnostic(what, message),)
        elif isinstance(what, str):
            diags = (Diagnostic(None, what),)
        else:
            diags = tuple(what)
        if not diags:
            raise ValueError("CompileError needs at least one diagnostic")
        self.diagnostics: tuple[Diagnostic, ...] = diags
        self.source = source
        super().__init__(diags[0].message)

    @property
    def loc(self) -> SourceLocation | None:
        """Location of the first diagnostic."""
        return self.diagnostics[0].loc

    @property
    def message(self) -> str:
        """Message of the first diagnostic (without location)."""
        return self.diagnostics[0].message

    def with_source(self, source: str) -> CompileError:
        """Attach the file text (for rendering source lines) and return ``self``, for ``raise e.with_source(t)``."""
        self.source = source
        return self

    def __str__(self) -> str:
        return "\n".join(d.render(self.source) for d in self.diagnostics)

    def __reduce__(self):  # keep diagnostics across pickling (e.g. multiprocessing)
        return (_rebuild_compile_error, (self.diagnostics, self.source))


def _rebuild_compile_error(diags: tuple[Diagnostic, ...], source: str | None) -> CompileError:
    return CompileError(diags, source=source)


def decode_source(data: bytes, filename: str) -> str:
    """A source file's bytes as text, or a `CompileError` at the first byte that is not UTF-8.

    The column counts the characters before that byte on its line (as every other column does),
    and the line is shown with the undecodable bytes as U+FFFD.
    """
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line_start = data.rfind(b"\n", 0, e.start) + 1
        line = data.count(b"\n", 0, e.start) + 1
        col = len(data[line_start:e.start].decode("utf-8")) + 1
        shown = data.decode("utf-8", errors="replace")
        loc = SourceLocation(filename, line, col, source=shown)
        raise CompileError(loc, f"the file is not UTF-8 text ({e.reason} at byte {e.start})") from None
