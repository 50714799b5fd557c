"""Index maps as `ix` prints them: `[d0 * 2 + r0 - 1, d1]`, with `d0..` for output indices and
`r0..` for reduction variables (the names of an `ix.compute`'s custom syntax).

The algebra on maps (bounds, linear forms, substitution) is `mlc.loops.affine`; this module is
only their text, which the dialect prints and parses.
"""

from __future__ import annotations

from collections.abc import Sequence

from xdsl.ir.affine import AffineBinaryOpExpr, AffineBinaryOpKind, AffineConstantExpr, AffineDimExpr, AffineExpr, AffineMap
from xdsl.parser import Parser
from xdsl.parser.affine_parser import AffineParser


def dim_names(rank: int, num_reductions: int) -> list[str]:
    """Names for the iteration variables: `d0..` for output indices, `r0..` for reductions."""
    return [f"d{i}" for i in range(rank)] + [f"r{i}" for i in range(num_reductions)]


def format_expr(expr: AffineExpr, names: Sequence[str]) -> str:
    """Print `expr` in MLIR affine syntax with the given dimension names."""
    return _format(expr, names, 0)


_PRECEDENCE = {
    AffineBinaryOpKind.Add: 1,
    AffineBinaryOpKind.Mul: 2,
    AffineBinaryOpKind.FloorDiv: 2,
    AffineBinaryOpKind.CeilDiv: 2,
    AffineBinaryOpKind.Mod: 2,
}
_TOKEN = {
    AffineBinaryOpKind.Mul: "*",
    AffineBinaryOpKind.FloorDiv: "floordiv",
    AffineBinaryOpKind.CeilDiv: "ceildiv",
    AffineBinaryOpKind.Mod: "mod",
}


def _format(expr: AffineExpr, names: Sequence[str], parent: int) -> str:
    if isinstance(expr, AffineDimExpr):
        return names[expr.position]
    if isinstance(expr, AffineConstantExpr):
        return str(expr.value)
    assert isinstance(expr, AffineBinaryOpExpr), f"symbols are not used in mlc maps: {expr}"
    prec = _PRECEDENCE[expr.kind]
    if expr.kind == AffineBinaryOpKind.Add:
        lhs = _format(expr.lhs, names, prec)
        rhs = expr.rhs
        if isinstance(rhs, AffineConstantExpr) and rhs.value < 0:
            text = f"{lhs} - {-rhs.value}"
        elif (
            isinstance(rhs, AffineBinaryOpExpr)
            and rhs.kind == AffineBinaryOpKind.Mul
            and isinstance(rhs.rhs, AffineConstantExpr)
            and rhs.rhs.value < 0
        ):
            coeff = -rhs.rhs.value
            term = _format(rhs.lhs, names, prec + 1)
            text = f"{lhs} - {term}" if coeff == 1 else f"{lhs} - {term} * {coeff}"
        else:
            text = f"{lhs} + {_format(rhs, names, prec)}"
    else:
        text = f"{_format(expr.lhs, names, prec)} {_TOKEN[expr.kind]} {_format(expr.rhs, names, prec + 1)}"
    return f"({text})" if prec < parent else text


def format_map_results(amap: AffineMap, names: Sequence[str]) -> str:
    """`[e0, e1, ...]` with the given dimension names."""
    return "[" + ", ".join(format_expr(e, names) for e in amap.results) + "]"


R_BASE = 64
"""While parsing a read, `rJ` is dimension `R_BASE + J` until the output rank is known."""


def parse_map_exprs(parser: Parser) -> list[AffineExpr]:
    """`[e0, e1, ...]` over `dK` (position K) and `rK` (position `R_BASE + K`)."""
    affine = AffineParser(parser._parser_state)  # pyright: ignore[reportPrivateUsage]

    def bare_id() -> AffineExpr | None:
        name = parser.parse_optional_identifier()
        if name is None:
            return None
        if len(name) > 1 and name[0] in "dr" and name[1:].isdigit():
            pos = int(name[1:])
            return AffineExpr.dimension(pos if name[0] == "d" else R_BASE + pos)
        parser.raise_error(f"unknown index variable '{name}' (use d0.. and r0..)")

    return parser.parse_comma_separated_list(
        parser.Delimiter.SQUARE,
        lambda: affine._parse_affine_expr(bare_id),  # pyright: ignore[reportPrivateUsage]
    )
