"""How the mlc language reads a built-in's option values: one parser per kind of value, from the
AST to a Python value, raising a located `CompileError` that says what is allowed (LANGUAGE.md,
"Built-in operations"). The resolution rules of the values (`same` padding, default strides) are
the builders' (`builtins`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from mlc.errors import CompileError
from mlc.frontend.language import ast


def source_text(node: ast.Node) -> str:
    """The source text of ``node`` when it sits on one line (as the user wrote it), else unparsed."""
    loc = node.loc
    line = loc.source_line()
    if line is not None and loc.end_line == loc.line and loc.end_col is not None:
        return line[loc.col - 1 : loc.end_col - 1]
    return ast.unparse(node)  # type: ignore[arg-type]

def join_or(items: Sequence[str]) -> str:
    """``a``, ``a or b``, ``a, b or c``."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]

MAX_INT = 2**31 - 1
"""The largest integer mlc accepts in a dimension, stride, padding, size, axis or extent."""

OptionParser = Callable[[ast.Expr, str], Any]
"""Reads an option value from its AST (``(value, option_name)``); raises a located CompileError."""

def int_literal(e: ast.Expr) -> int | None:
    """The value of an integer literal (None for anything else); rejects absurdly large ones."""
    if not (isinstance(e, ast.Number) and e.is_int):
        return None
    if abs(e.value) > MAX_INT:
        raise CompileError(e.loc, f"{e.value} is too large (the limit is {MAX_INT})")
    return int(e.value)


def int_literals(e: ast.Expr) -> list[int] | None:
    """The ints of a tuple of int literals, else None."""
    if not isinstance(e, ast.TupleExpr):
        return None
    values = [int_literal(i) for i in e.items]
    return None if any(v is None for v in values) else values  # type: ignore[return-value]


def bad_option(e: ast.Expr, name: str, allowed: str) -> CompileError:
    return CompileError(e.loc, f"{name} must be {allowed}, got '{source_text(e)}'")


def pair(e: ast.Expr, name: str, least: int = 1) -> tuple[int, int]:
    """An int ``k >= least`` (meaning ``(k, k)``) or a pair ``(h, w)`` of such ints (``least`` is
    1 for strides and sizes, 0 for output padding)."""
    k = int_literal(e)
    if k is not None and k >= least:
        return k, k
    items = int_literals(e)
    if items is not None and len(items) == 2 and min(items) >= least:
        return items[0], items[1]
    kind = "positive" if least == 1 else "non-negative"
    raise bad_option(e, name, f"a {kind} int or a pair (h, w) of {kind} ints")


def non_negative_pair(e: ast.Expr, name: str) -> tuple[int, int]:
    """`pair` of ints ``>= 0``."""
    return pair(e, name, least=0)


def padding(e: ast.Expr, name: str) -> str | tuple[int, int, int, int]:
    """``valid``, ``same``, an int ``p >= 0`` (all sides), ``(ph, pw)`` (top = bottom = ph, left =
    right = pw, as PyTorch) or ``(top, bottom, left, right)``."""
    if isinstance(e, ast.Name) and e.name in ("valid", "same"):
        return e.name
    p = int_literal(e)
    if p is not None and p >= 0:
        return p, p, p, p
    items = int_literals(e)
    if items is not None and len(items) == 2 and min(items) >= 0:
        return items[0], items[0], items[1], items[1]
    if items is not None and len(items) == 4 and min(items) >= 0:
        return items[0], items[1], items[2], items[3]
    raise bad_option(e, name, "valid, same, an int, (ph, pw) or (top, bottom, left, right)")


def enum(*choices: str) -> OptionParser:
    """One of the words ``choices``."""

    def parse(e: ast.Expr, name: str) -> str:
        if isinstance(e, ast.Name) and e.name in choices:
            return e.name
        raise bad_option(e, name, join_or(list(choices)))

    return parse


def int_choice(*choices: int) -> OptionParser:
    """One of the integers ``choices``."""

    def parse(e: ast.Expr, name: str) -> int:
        v = int_literal(e)
        if v is not None and v in choices:
            return v
        raise bad_option(e, name, join_or([str(c) for c in choices]))

    return parse


def integer(e: ast.Expr, name: str) -> int:
    """Any int (an axis, possibly negative)."""
    v = int_literal(e)
    if v is None:
        raise bad_option(e, name, "an int")
    return v


def axes(e: ast.Expr, name: str) -> tuple[int, ...] | None:
    """``None`` (every axis), an int or a tuple of ints."""
    if isinstance(e, ast.Name) and e.name == "None":
        return None
    v = int_literal(e)
    if v is not None:
        return (v,)
    items = int_literals(e)
    if items is not None:
        return tuple(items)
    raise bad_option(e, name, "None, an int or a tuple of ints")


def boolean(e: ast.Expr, name: str) -> bool:
    if isinstance(e, ast.Name) and e.name in ("true", "false"):
        return e.name == "true"
    raise bad_option(e, name, "true or false")


def number(e: ast.Expr, name: str) -> float:
    if isinstance(e, ast.Number):
        return float(e.value)
    raise bad_option(e, name, "a number")


def positive_int(e: ast.Expr, name: str) -> int:
    v = int_literal(e)
    if v is None or v < 1:
        raise bad_option(e, name, "a positive int")
    return v


def positive_number(e: ast.Expr, name: str) -> float:
    if isinstance(e, ast.Number) and e.value > 0:
        return float(e.value)
    raise bad_option(e, name, "a positive number")


def fraction(e: ast.Expr, name: str) -> float:
    if isinstance(e, ast.Number) and 0 <= e.value <= 1:
        return float(e.value)
    raise bad_option(e, name, "a number between 0 and 1")


def shape(e: ast.Expr, name: str) -> tuple[int, ...]:
    """A tuple of positive ints with at most one ``-1`` (an int alone is a 1-tuple)."""
    v = int_literal(e)
    items = [v] if v is not None else int_literals(e)
    if items is None:
        raise bad_option(e, name, "a tuple of ints such as (32, -1)")
    nodes = e.items if isinstance(e, ast.TupleExpr) else (e,)
    for item, node in zip(items, nodes):
        if item < 1 and item != -1:
            raise CompileError(node.loc, f"reshape dimensions must be positive or -1, got {item}")
    if items.count(-1) > 1:
        second = [n for i, n in zip(items, nodes) if i == -1][1]
        raise CompileError(second.loc, "only one dimension of reshape may be -1")
    return tuple(items)

def int_list(e: ast.Expr, name: str) -> tuple[int, ...]:
    """A tuple of ints (an int alone is a 1-tuple)."""
    v = int_literal(e)
    items = [v] if v is not None else int_literals(e)
    if items is None:
        raise bad_option(e, name, "a tuple of ints")
    return tuple(items)


def optional_int(e: ast.Expr, name: str) -> int | None:
    if isinstance(e, ast.Name) and e.name == "None":
        return None
    return integer(e, name)
