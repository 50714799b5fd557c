"""Parser: mlc source text -> :mod:`mlc.frontend.ast`, with located syntax errors.

Lark's LALR(1) parser (built once per process, see :func:`_lark`) produces a parse tree that
:class:`_ToAst` turns into AST nodes.  Lark exceptions never escape: lexing and parsing errors
become :class:`~mlc.errors.CompileError` s located at the offending character or token.

Besides the grammar, the parser enforces rules that need no knowledge of names or shapes:

* element types are ``f32``/``f64``; model types have integer dimensions only;
* initialisers are ``zeros | ones | glorot | normal(STD) | uniform(LO, HI)`` with number args;
* no positional argument after a keyword argument, no duplicate keyword, keyword values are a
  number, an enum word or a tuple of numbers;
* several assignment targets need a call on the right-hand side;
* an op body is exactly one ``out[i, j, ...] = EXPR`` with distinct index variable names;
  reductions are ``sum``/``max`` with distinct variables;
* subscripts, reductions and ``%`` appear only in op bodies; keyword arguments and tuples only in
  models; a comparison only as the first argument of ``select``.
"""

from __future__ import annotations

import math
import sys
from functools import lru_cache
from importlib.resources import files
from typing import Any, NamedTuple

from lark import Lark, Token
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken, VisitError
from lark.visitors import Transformer_NonRecursive, v_args

from mlc.errors import CompileError, SourceLocation
from mlc.frontend.language import ast
from mlc.frontend.language.options import join_or

__all__ = ["parse", "parse_expr"]

DTYPES = ("f32", "f64")
INIT_ARITY = {"zeros": 0, "ones": 0, "glorot": 0, "normal": 1, "uniform": 2}
REDUCTIONS = ("sum", "max")


def _build_lark(debug: bool = False) -> Lark:
    """Build the Lark parser (``debug=True`` makes Lark log grammar conflicts; used by the tests)."""
    grammar = files("mlc.frontend.language").joinpath("grammar.lark").read_text(encoding="utf-8")
    return Lark(
        grammar,
        parser="lalr",
        lexer="contextual",
        propagate_positions=True,
        maybe_placeholders=True,
        start=["start", "expr"],
        debug=debug,
    )


@lru_cache(maxsize=None)
def _lark() -> Lark:
    """The parser, built on first use and shared by every call (grammar analysis is the slow part)."""
    return _build_lark()


def parse(text: str, filename: str = "<input>") -> ast.Module:
    """Parse a whole ``.mlc`` file.  Raises :class:`CompileError` on any syntax error."""
    return _parse(text, filename, "start")


def parse_expr(text: str, filename: str = "<input>") -> ast.Expr:
    """Parse a single expression (for tests and tools); no context rules are checked."""
    return _parse(text, filename, "expr")


def _parse(text: str, filename: str, start: str) -> Any:
    try:
        tree = _lark().parse(text, start=start)
    except UnexpectedInput as e:
        raise _syntax_error(e, text, filename) from None
    try:
        return _ToAst(filename, text).transform(tree)
    except VisitError as e:
        if isinstance(e.orig_exc, CompileError):
            raise e.orig_exc from None
        raise


# ---------------------------------------------------------------------------- syntax errors

# How expected terminals are described ("expected ',' or ')' but found 'w'").
_DESCRIBE = {"NAME": "a name", "INT": "an integer", "FLOAT": "a number", "CMPOP": "a comparison", "$END": "end of input"}
# Tokens that could only continue an expression; left out of "expected ..." when something else fits.
_CONTINUATIONS = {"PLUS", "MINUS", "STAR", "SLASH", "PERCENT", "CMPOP", "LPAR", "LSQB"}


def _describe_expected(expected: set[str]) -> list[str]:
    """Human descriptions of what the parser would have accepted, most useful first."""
    exp = set(expected)
    groups: list[str] = []
    if {"NAME", "INT", "FLOAT", "MINUS"} <= exp:
        groups.append("an expression")
        exp -= {"NAME", "INT", "FLOAT", "LPAR", "MINUS"}
    elif {"NAME", "INT"} <= exp:
        groups.append("a dimension")
        exp -= {"NAME", "INT", "FLOAT", "LPAR"}
    if {"INPUT", "PARAM", "OUTPUT"} <= exp:
        groups.append("a statement")
        exp -= {"INPUT", "PARAM", "STATE", "OUTPUT", "NAME"}
    if exp - _CONTINUATIONS or groups:
        exp -= _CONTINUATIONS
    if exp & {"RPAR", "RSQB", "RBRACE"}:
        exp -= {"COLON", "EQUAL"}  # `f(x w)`: x could start `x=...`/`x: N`, but ',' or ')' is what is meant
    lark = _lark()
    names = []
    for t in sorted(exp):
        if t in _DESCRIBE:
            names.append(_DESCRIBE[t])
            continue
        try:
            pattern = lark.get_terminal(t).pattern
        except KeyError:
            continue
        names.append(f"'{pattern.value}'" if pattern.type == "str" else t.lower())
    # Closing brackets read best last: "expected ',' or ')'".
    names.sort(key=lambda s: (s in ("')'", "']'", "'}'"), s))
    return groups + names


def _syntax_error(e: UnexpectedInput, text: str, filename: str) -> CompileError:
    """Turn a Lark error into a located, short, human message."""
    if isinstance(e, UnexpectedCharacters):
        ch = text[e.pos_in_stream] if e.pos_in_stream < len(text) else ""
        shown = ch if ch.isprintable() else repr(ch)[1:-1]
        loc = SourceLocation(filename, e.line, e.column, e.line, e.column + 1, text)
        return CompileError(loc, f"unexpected character '{shown}'")
    if not isinstance(e, UnexpectedToken):  # only Earley raises anything else; kept for safety
        return CompileError(SourceLocation(filename, max(e.line, 1), max(e.column, 1), source=text), "syntax error")
    expected: set[str] = set()
    if e.interactive_parser is not None:
        try:  # replaying the parser gives the exact set (LALR's own set is merged across states)
            expected = set(e.interactive_parser.accepts())
        except Exception:
            expected = set()
    described = _describe_expected(expected or set(e.expected))
    tok = e.token
    if tok.type == "$END":
        msg = "unexpected end of input"
        if described and len(described) <= 4:
            msg += f"; expected {join_or(described)}"
        return CompileError(_end_location(text, filename), msg)
    loc = SourceLocation(filename, tok.line, tok.column, tok.end_line, tok.end_column, text)
    if described and len(described) <= 4:
        return CompileError(loc, f"expected {join_or(described)} but found '{tok.value}'")
    return CompileError(loc, f"unexpected '{tok.value}'")


def _end_location(text: str, filename: str) -> SourceLocation:
    """Just after the last token: end of the last line that has code (comments do not count)."""
    lines = text.split("\n")
    for i in range(len(lines) - 1, -1, -1):
        code = lines[i].split("#", 1)[0].rstrip()
        if code:
            return SourceLocation(filename, i + 1, len(code) + 1, source=text)
    return SourceLocation(filename, 1, 1, source=text)


# ---------------------------------------------------------------------------- tree -> AST


def _word_loc(loc: SourceLocation, word: str) -> SourceLocation:
    """The span of ``word`` written at the start of ``loc``."""
    return SourceLocation(loc.file, loc.line, loc.col, loc.line, loc.col + len(word), loc.source)


class _OpStmt(NamedTuple):
    """An op body statement before checking (several are parsed, one is allowed)."""

    target: str
    indices: tuple[ast.Expr, ...]
    target_loc: SourceLocation
    value: ast.Expr
    loc: SourceLocation


class _ContextRules:
    """The context rules of :class:`_ToAst`, checked on finished expressions: constructs that belong
    to a model or to an op body only (the module docstring lists them); `_error` builds the errors."""

    def _error(self, loc: SourceLocation, message: str) -> CompileError:
        return CompileError(loc, message)

    # -- context rules (iterative walks: expressions can be deep)
    def _check_model_type(self, t: ast.TensorTypeExpr) -> None:
        for d in t.dims:
            if not isinstance(d, ast.Number):
                raise self._error(d.loc, "dimensions in a model must be integers (symbolic dimensions are for op signatures)")

    def _check_exprs(self, root: ast.Expr, in_op: bool) -> None:
        """Reject constructs that belong to the other context (model vs op body)."""
        stack: list[tuple[ast.Expr, bool]] = [(root, False)]
        while stack:
            e, is_condition = stack.pop()
            if isinstance(e, ast.Compare):
                if not (in_op and is_condition):
                    raise self._error(e.op_loc or e.loc, "a comparison is only allowed as the condition of select(...) in an op body")
                stack += [(e.lhs, False), (e.rhs, False)]
            elif isinstance(e, ast.Binary):
                if e.op == "%" and not in_op:
                    raise self._error(e.op_loc or e.loc, "'%' is only allowed in op bodies")
                stack += [(e.lhs, False), (e.rhs, False)]
            elif isinstance(e, ast.Unary):
                stack.append((e.operand, False))
            elif isinstance(e, ast.Call):
                if in_op and e.kwargs:
                    raise self._error(e.kwargs[0].loc, "keyword arguments are not allowed in op bodies")
                for i, a in enumerate(e.args):
                    stack.append((a, in_op and i == 0 and e.func == "select"))
            elif isinstance(e, ast.TupleExpr):
                if in_op:
                    raise self._error(e.loc, "tuples are not allowed in op bodies")
                stack += [(i, False) for i in e.items]
            elif isinstance(e, ast.Subscript):
                if not in_op:
                    raise self._error(e.loc, f"indexing '{e.tensor}[...]' is only allowed in op bodies")
                stack += [(i, False) for i in e.indices]
            elif isinstance(e, ast.Reduction):
                if not in_op:
                    raise self._error(_word_loc(e.loc, e.kind), f"reduction '{e.kind}(...)' is only allowed in op bodies")
                stack.append((e.body, False))


def int_literal(text: str, loc: SourceLocation) -> ast.Number:
    """An integer literal, refused when no float can hold it (every number may become a scalar
    of the surrounding element type; Python's int() itself stops at 4300 digits)."""
    if len(text) > 309 or int(text) > sys.float_info.max:
        raise CompileError(loc, f"the integer {text[:12]}... ({len(text)} digits) is too large "
                           f"(at most {sys.float_info.max:.3g})")
    return ast.Number(int(text), True, loc=loc)


@v_args(meta=True)
class _ToAst(Transformer_NonRecursive, _ContextRules):
    """Builds AST nodes bottom-up; each method receives the rule's Lark meta and children."""

    __visit_tokens__ = False

    def __init__(self, filename: str, text: str) -> None:
        super().__init__()
        self.filename = filename
        self.text = text

    # -- locations
    def _meta_loc(self, meta: Any) -> SourceLocation:
        return SourceLocation(self.filename, meta.line, meta.column, meta.end_line, meta.end_column, self.text)

    def _tok_loc(self, tok: Token) -> SourceLocation:
        return SourceLocation(self.filename, tok.line, tok.column, tok.end_line, tok.end_column, self.text)

    # -- file and definitions
    def start(self, meta: Any, children: list) -> ast.Module:
        return ast.Module(tuple(children), loc=SourceLocation(self.filename, 1, 1, source=self.text))

    def model(self, meta: Any, children: list) -> ast.Model:
        name, *items = children
        decls = tuple(i for i in items if isinstance(i, (ast.InputDecl, ast.ParamDecl)))
        stmts = tuple(i for i in items if isinstance(i, (ast.Assign, ast.Output)))
        for decl in decls:
            self._check_model_type(decl.type)
        for stmt in stmts:
            if isinstance(stmt, ast.Assign):
                self._check_exprs(stmt.value, in_op=False)
        return ast.Model(name.value, decls, stmts, self._tok_loc(name), loc=self._meta_loc(meta))

    def opdef(self, meta: Any, children: list) -> ast.OpDef:
        name, params, result_type, *stmts = children
        if len(stmts) > 1:
            raise self._error(stmts[1].loc, "an op body has exactly one statement 'out[...] = ...'")
        stmt: _OpStmt = stmts[0]
        if stmt.target != "out":
            raise self._error(_word_loc(stmt.target_loc, stmt.target), f"an op body must assign to 'out', not '{stmt.target}'")
        seen: set[str] = set()
        indices: list[ast.Name] = []
        for idx in stmt.indices:
            if not isinstance(idx, ast.Name):
                raise self._error(idx.loc, "output indices must be plain index variable names")
            if idx.name in seen:
                raise self._error(idx.loc, f"index variable '{idx.name}' is repeated in 'out[...]'")
            seen.add(idx.name)
            indices.append(idx)
        self._check_exprs(stmt.value, in_op=True)
        return ast.OpDef(
            name.value,
            tuple(params or ()),
            result_type,
            tuple(indices),
            stmt.value,
            self._tok_loc(name),
            stmt.target_loc,
            loc=self._meta_loc(meta),
        )

    def op_params(self, meta: Any, children: list) -> tuple[ast.OpParam, ...]:
        return tuple(children)

    def op_param(self, meta: Any, children: list) -> ast.OpParam:
        name, type_ = children
        return ast.OpParam(name.value, type_, loc=self._meta_loc(meta))

    def op_stmt(self, meta: Any, children: list) -> _OpStmt:
        name, index, value = children
        target_loc = self._tok_loc(name)
        indices: tuple[ast.Expr, ...] = ()
        if index is not None:
            indices, index_loc = index
            target_loc = target_loc.to(index_loc)
        return _OpStmt(name.value, indices, target_loc, value, self._meta_loc(meta))

    def out_index(self, meta: Any, children: list) -> tuple[tuple[ast.Expr, ...], SourceLocation]:
        (items,) = children
        return (items or ()), self._meta_loc(meta)

    # -- declarations and types
    def input_decl(self, meta: Any, children: list) -> ast.InputDecl:
        name, type_ = children
        return ast.InputDecl(name.value, type_, self._tok_loc(name), loc=self._meta_loc(meta))

    def param_decl(self, meta: Any, children: list) -> ast.ParamDecl:
        name, type_, init = children
        return ast.ParamDecl(name.value, type_, init, self._tok_loc(name), loc=self._meta_loc(meta))

    def state_decl(self, meta: Any, children: list) -> ast.StateDecl:
        name, type_, init = children
        return ast.StateDecl(name.value, type_, init, self._tok_loc(name), loc=self._meta_loc(meta))

    def init(self, meta: Any, children: list) -> ast.Init:
        kind_tok, *rest = children
        args: tuple[ast.Expr, ...] = rest[0] if rest else ()
        kind = kind_tok.value
        loc = self._meta_loc(meta)
        if kind not in INIT_ARITY:
            raise self._error(
                self._tok_loc(kind_tok),
                f"unknown initialiser '{kind}'; expected zeros, ones, glorot, normal(STD) or uniform(LO, HI)",
            )
        arity = INIT_ARITY[kind]
        if len(args) != arity:
            usage = {"normal": "normal(STD)", "uniform": "uniform(LO, HI)"}.get(kind, kind)
            raise self._error(loc, f"initialiser '{kind}' takes {arity or 'no'} argument{'s' if arity != 1 else ''}: {usage}")
        for a in args:
            if not isinstance(a, ast.Number):
                raise self._error(a.loc, f"arguments of '{kind}' must be numbers")
            if not math.isfinite(a.value):
                raise self._error(a.loc, f"arguments of '{kind}' must be finite numbers")
        if kind == "normal" and args[0].value < 0:  # type: ignore[attr-defined]
            raise self._error(args[0].loc, f"normal(STD): the standard deviation {args[0].value:g} is negative")  # type: ignore[attr-defined]
        if kind == "uniform" and args[0].value > args[1].value:  # type: ignore[attr-defined]
            raise self._error(loc, f"uniform(LO, HI): LO = {args[0].value:g} is above HI = {args[1].value:g}")  # type: ignore[attr-defined]
        return ast.Init(kind, tuple(args), loc=loc)  # type: ignore[arg-type]

    def tensor_type(self, meta: Any, children: list) -> ast.TensorTypeExpr:
        dtype, dims = children
        if dtype.value not in DTYPES:
            raise self._error(self._tok_loc(dtype), f"unknown element type '{dtype.value}'; expected f32 or f64")
        return ast.TensorTypeExpr(dtype.value, tuple(dims or ()), loc=self._meta_loc(meta))

    def dims(self, meta: Any, children: list) -> tuple[ast.DimExpr, ...]:
        return tuple(children)

    def dim_binary(self, meta: Any, children: list) -> ast.Binary:
        lhs, op, rhs = children
        return ast.Binary(op.value, lhs, rhs, self._tok_loc(op), loc=self._meta_loc(meta))

    def dim_int(self, meta: Any, children: list) -> ast.Number:
        return int_literal(children[0].value, self._meta_loc(meta))

    def dim_float(self, meta: Any, children: list) -> ast.Number:
        raise self._error(self._meta_loc(meta), f"dimensions must be integers, not '{children[0].value}'")

    def dim_name(self, meta: Any, children: list) -> ast.Name:
        return ast.Name(children[0].value, loc=self._meta_loc(meta))

    # -- statements
    def assign(self, meta: Any, children: list) -> ast.Assign:
        targets, value = children
        if len(targets) > 1 and not isinstance(value, ast.Call):
            raise self._error(value.loc, f"assigning to {len(targets)} names needs a call on the right-hand side")
        seen: set[str] = set()
        for t in targets:
            if t.name in seen:
                raise self._error(t.loc, f"'{t.name}' is assigned twice in one statement")
            seen.add(t.name)
        return ast.Assign(targets, value, loc=self._meta_loc(meta))

    def targets(self, meta: Any, children: list) -> tuple[ast.Name, ...]:
        return tuple(ast.Name(t.value, loc=self._tok_loc(t)) for t in children)

    def output(self, meta: Any, children: list) -> ast.Output:
        return ast.Output(tuple(ast.Name(t.value, loc=self._tok_loc(t)) for t in children), loc=self._meta_loc(meta))

    # -- expressions
    def int_lit(self, meta: Any, children: list) -> ast.Number:
        return int_literal(children[0].value, self._meta_loc(meta))

    def float_lit(self, meta: Any, children: list) -> ast.Number:
        return ast.Number(float(children[0].value), False, loc=self._meta_loc(meta))

    def name(self, meta: Any, children: list) -> ast.Name:
        return ast.Name(children[0].value, loc=self._meta_loc(meta))

    def neg(self, meta: Any, children: list) -> ast.Expr:
        _, operand = children
        loc = self._meta_loc(meta)
        if isinstance(operand, ast.Number):
            return ast.Number(-operand.value, operand.is_int, loc=loc)
        return ast.Unary("-", operand, loc=loc)

    def binary(self, meta: Any, children: list) -> ast.Binary:
        lhs, op, rhs = children
        return ast.Binary(op.value, lhs, rhs, self._tok_loc(op), loc=self._meta_loc(meta))

    def compare(self, meta: Any, children: list) -> ast.Compare:
        lhs, op, rhs = children
        return ast.Compare(op.value, lhs, rhs, self._tok_loc(op), loc=self._meta_loc(meta))

    def call(self, meta: Any, children: list) -> ast.Call:
        func, args = children
        positional: list[ast.Expr] = []
        keywords: list[ast.Keyword] = []
        for a in args or ():
            if isinstance(a, ast.Keyword):
                kw = a
                if any(k.name == kw.name for k in keywords):
                    raise self._error(kw.loc, f"duplicate keyword argument '{kw.name}'")
                keywords.append(kw)
            elif keywords:
                raise self._error(a.loc, "positional argument follows keyword argument")
            else:
                positional.append(a)
        return ast.Call(func.value, tuple(positional), tuple(keywords), loc=self._meta_loc(meta))

    def args(self, meta: Any, children: list) -> list:
        return children

    def kwarg(self, meta: Any, children: list) -> ast.Keyword:
        name, value = children
        ok = isinstance(value, (ast.Number, ast.Name)) or (
            isinstance(value, ast.TupleExpr) and all(isinstance(i, ast.Number) for i in value.items)
        )
        if not ok:
            bad = value
            if isinstance(value, ast.TupleExpr):
                bad = next(i for i in value.items if not isinstance(i, ast.Number))
                raise self._error(bad.loc, f"items of the tuple for '{name.value}' must be numbers")
            raise self._error(
                bad.loc, f"value of keyword argument '{name.value}' must be a number, a word or a tuple of numbers"
            )
        return ast.Keyword(name.value, value, self._meta_loc(meta))

    def tuple_expr(self, meta: Any, children: list) -> ast.TupleExpr:
        return ast.TupleExpr(tuple(children), loc=self._meta_loc(meta))

    def subscript(self, meta: Any, children: list) -> ast.Subscript:
        tensor, indices = children
        return ast.Subscript(tensor.value, tuple(indices or ()), loc=self._meta_loc(meta))

    def expr_list(self, meta: Any, children: list) -> tuple[ast.Expr, ...]:
        return tuple(children)

    def reduction(self, meta: Any, children: list) -> ast.Reduction:
        kind, rvars, body = children
        if kind.value not in REDUCTIONS:
            raise self._error(self._tok_loc(kind), f"unknown reduction '{kind.value}'; expected 'sum' or 'max'")
        seen: set[str] = set()
        for v in rvars:
            if v.name in seen:
                raise self._error(v.loc, f"reduction variable '{v.name}' is declared twice")
            seen.add(v.name)
        return ast.Reduction(kind.value, rvars, body, loc=self._meta_loc(meta))

    def red_vars(self, meta: Any, children: list) -> tuple[ast.ReductionVar, ...]:
        return tuple(children)

    def red_var(self, meta: Any, children: list) -> ast.ReductionVar:
        name, extent = children
        return ast.ReductionVar(name.value, extent, self._tok_loc(name))
