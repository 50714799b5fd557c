"""Parser tests: every LANGUAGE.md snippet, every syntactic form, and exact error locations."""

from __future__ import annotations

import logging
import pickle

import pytest

from mlc.errors import CompileError, Diagnostic, SourceLocation, render_diagnostic
from mlc.frontend import ast
from mlc.frontend.parser import _build_lark, _lark, parse, parse_expr

from language_snippets import CUSTOM_OPS, DIGITS_CNN


def loc(line: int, col: int, end_line: int, end_col: int) -> SourceLocation:
    return SourceLocation("t.mlc", line, col, end_line, end_col)


def u(e: ast.Expr | ast.TensorTypeExpr) -> str:
    return ast.unparse(e)


# ---------------------------------------------------------------------------- the spec's examples


def test_digits_cnn() -> None:
    mod = parse(DIGITS_CNN, "t.mlc")
    (m,) = mod.defs
    assert isinstance(m, ast.Model) and m.name == "digits_cnn"
    assert m.loc.start() == SourceLocation("t.mlc", 1, 1) and m.name_loc == loc(1, 7, 1, 17)
    assert [(d.name, u(d.type)) for d in m.inputs] == [("x", "f32[32, 8, 8, 1]"), ("y", "f32[32, 10]")]
    assert [(p.name, p.init.kind if p.init else None) for p in m.params] == [
        ("w1", "glorot"),
        ("b1", "zeros"),
        ("w2", "glorot"),
        ("b2", "zeros"),
    ]
    assert m.inputs[0].type.static_shape() == (32, 8, 8, 1)
    assert m.inputs[0].loc == loc(2, 3, 2, 29) and m.inputs[0].name_loc == loc(2, 10, 2, 11)
    assigns = [s for s in m.stmts if isinstance(s, ast.Assign)]
    assert [(s.targets[0].name, u(s.value)) for s in assigns] == [
        ("h", "relu((conv2d(x, w1, stride=1, padding=same) + b1))"),
        ("h", "maxpool2d(h, size=2, stride=2)"),
        ("logits", "dense(flatten(h), w2, b2)"),
        ("loss", "softmax_cross_entropy(logits, y)"),
    ]
    first = assigns[0]
    assert first.loc == loc(9, 3, 9, 55)
    relu = first.value
    assert isinstance(relu, ast.Call) and relu.loc == loc(9, 7, 9, 55)
    add = relu.args[0]
    assert isinstance(add, ast.Binary) and add.op == "+"
    assert add.loc == loc(9, 12, 9, 54) and add.op_loc == loc(9, 50, 9, 51)
    conv = add.lhs
    assert isinstance(conv, ast.Call) and conv.func == "conv2d"
    assert conv.kwargs[0] == ast.Keyword("stride", ast.Number(1, True, loc=loc(9, 33, 9, 34)), loc(9, 26, 9, 34))
    padding = conv.kwarg("padding")
    assert padding is not None and padding.value == ast.Name("same", loc=loc(9, 44, 9, 48))
    out = m.stmts[-1]
    assert isinstance(out, ast.Output) and [n.name for n in out.names] == ["loss", "logits"]
    assert out.names[1].loc == loc(13, 16, 13, 22)


def test_custom_ops() -> None:
    mod = parse(CUSTOM_OPS, "t.mlc")
    box3, corr = mod.ops
    assert box3.name == "box3" and box3.name_loc == loc(1, 4, 1, 8)
    assert [(p.name, u(p.type)) for p in box3.params] == [("x", "f32[N, H, W, C]")]
    assert u(box3.result_type) == "f32[N, (H - 2), (W - 2), C]"
    assert not box3.result_type.is_static
    assert [i.name for i in box3.out_indices] == ["n", "i", "j", "c"]
    assert box3.out_loc == loc(2, 3, 2, 18)
    red = box3.body
    assert isinstance(red, ast.Reduction) and red.kind == "sum" and red.loc.start() == SourceLocation("t.mlc", 2, 21)
    assert [(v.name, u(v.extent), v.loc) for v in red.vars] == [("a", "3", loc(2, 25, 2, 26)), ("b", "3", loc(2, 31, 2, 32))]
    # The reduction body extends to the right: it sums x[...] / 9.0.
    assert u(red.body) == "(x[n, (i + a), (j + b), c] / 9.0)"

    assert [(p.name, u(p.type)) for p in corr.params] == [("x", "f32[N, H]"), ("w", "f32[K]")]
    assert u(corr.result_type) == "f32[N, (((H - K) / 2) + 1)]"
    assert u(corr.body) == "sum(k: K) (x[n, ((2 * i) + k)] * w[k])"
    dim = corr.result_type.dims[1]
    assert isinstance(dim, ast.Binary) and dim.loc == loc(5, 52, 5, 67)


def test_definitions_in_any_order() -> None:
    mod = parse(DIGITS_CNN + CUSTOM_OPS + "model two { input x: f32[1, 4, 4, 1] \n y = box3(x) output y }\n")
    assert [type(d).__name__ for d in mod.defs] == ["Model", "OpDef", "OpDef", "Model"]
    assert [d.name for d in mod.models] == ["digits_cnn", "two"]
    assert parse("").defs == () and parse("# nothing here\n\n").defs == ()


# ---------------------------------------------------------------------------- models

ALL_BUILTINS = """\
model everything {
  input x: f32[8, 6, 6, 3]
  input t: f32[8, 10]
  input s: f64[]
  param w: f32[3, 3, 3, 4] = normal(0.02)
  param v: f32[3, 3, 3, 4] = uniform(-0.1, 1e-1)
  param d: f32[36, 10] = ones
  param g: f32[4]
  a = conv2d(x, w, stride=(2, 1), padding=(1, 1, 0, 2), dilation=1)
  b = binconv2d(x, w, stride=1, padding=same, dilation=(1, 1), mode=xnor, pad_value=-1)
  c = binconv2d(x, v, 2, valid, 1, mode=bwn)
  p = maxpool2d(a, size=2) + avgpool2d(a, size=(2, 2), stride=1, padding=same)
  f = flatten(p)
  r = reshape(f, (8, -1))
  r1 = reshape(f, (288,))
  k = concat(a, b, c, axis=-1)
  e = relu(k) + sigmoid(k) - tanh(k) * exp(k) / log(k) + sqrt(abs(k)) + sign(k) + neg(k)
  m = sum(k, axis=None) + mean(k, axis=(0, 1)) + sum(k)
  sm = softmax(dense(f, d)) + log_softmax(matmul(f, d)) + dense(f, d, bias)
  bn = batchnorm(a, g, g, eps=1e-5)
  l = mse(sm, t) + bce(sm, t) + softmax_cross_entropy(sm, t) + kl_normal(sm, t) * 0.5 - -2. + s
  mu, logvar = split_stats(sm)
  output l, m
}
"""


def test_every_builtin_call_form() -> None:
    (m,) = parse(ALL_BUILTINS, "t.mlc").models
    s = {st.targets[0].name: u(st.value) for st in m.stmts if isinstance(st, ast.Assign)}
    assert s["a"] == "conv2d(x, w, stride=(2, 1), padding=(1, 1, 0, 2), dilation=1)"
    assert s["b"] == "binconv2d(x, w, stride=1, padding=same, dilation=(1, 1), mode=xnor, pad_value=-1)"
    assert s["c"] == "binconv2d(x, v, 2, valid, 1, mode=bwn)"
    assert s["r"] == "reshape(f, (8, -1))"
    assert s["r1"] == "reshape(f, (288,))"
    assert s["k"] == "concat(a, b, c, axis=-1)"
    assert s["m"] == "((sum(k, axis=None) + mean(k, axis=(0, 1))) + sum(k))"
    assert s["bn"] == "batchnorm(a, g, g, eps=1e-05)"
    assert s["e"] == "(((((relu(k) + sigmoid(k)) - ((tanh(k) * exp(k)) / log(k))) + sqrt(abs(k))) + sign(k)) + neg(k))"
    assert s["l"].endswith("(kl_normal(sm, t) * 0.5)) - -2.0) + s)")
    # Negative literals are folded into numbers (also as keyword values and tuple items).
    b = next(st.value for st in m.stmts if isinstance(st, ast.Assign) and st.targets[0].name == "b")
    assert isinstance(b, ast.Call)
    pad_value = b.kwarg("pad_value")
    assert pad_value is not None and pad_value.value == ast.Number(-1, True, loc=loc(10, 85, 10, 87))
    r = next(st.value for st in m.stmts if isinstance(st, ast.Assign) and st.targets[0].name == "r")
    assert isinstance(r, ast.Call) and isinstance(r.args[1], ast.TupleExpr)
    assert r.args[1].items[1] == ast.Number(-1, True, loc=loc(14, 22, 14, 24))
    # Initialisers and types.
    params = {p.name: p for p in m.params}
    assert params["w"].init == ast.Init("normal", (ast.Number(0.02, False, loc=loc(5, 37, 5, 41)),), loc=loc(5, 30, 5, 42))
    v_init = params["v"].init
    assert v_init is not None and [a.value for a in v_init.args] == [-0.1, 0.1]
    assert params["d"].init is not None and params["d"].init.kind == "ones"
    assert params["g"].init is None
    assert m.inputs[2].type == ast.TensorTypeExpr("f64", (), loc=loc(4, 12, 4, 17))
    assert m.inputs[2].type.rank == 0
    # Multi-assignment.
    multi = m.stmts[-2]
    assert isinstance(multi, ast.Assign) and [t.name for t in multi.targets] == ["mu", "logvar"]
    assert multi.targets[1].loc == loc(22, 7, 22, 13) and multi.loc == loc(22, 3, 22, 31)


def test_comments_and_free_whitespace() -> None:
    src = (
        "# leading comment\n"
        "model   # after keyword\n"
        "  m # after name\n"
        "{ input x # x\n"
        " : f32 # dtype\n"
        " [ 2, # dim\n"
        " 3 ] param w: f32[3, 3] = # init follows\n"
        " glorot h = matmul( # open\n"
        " x, # comma\n"
        " w) # close\n"
        " output # names\n"
        " h # end\n"
        "} # after model\n"
        "op id(x: f32[N]) -> f32[N] { # body\n"
        "  out[i] = # value\n"
        "    x[i] # read\n"
        "} # no newline at the end"
    )
    mod = parse(src, "t.mlc")
    m = mod.models[0]
    assert u(m.inputs[0].type) == "f32[2, 3]"
    assert m.inputs[0].type.loc == loc(5, 4, 7, 5)
    assign = m.stmts[0]
    assert isinstance(assign, ast.Assign) and u(assign.value) == "matmul(x, w)"
    assert assign.loc == loc(8, 9, 10, 4)
    assert u(mod.ops[0].body) == "x[i]"


def test_keywords_are_reserved_but_prefixes_are_names() -> None:
    m = parse("model m { outputs = x  modelx = outputs op_1 = inputs  input2 = op_1 output input2, op_1 }").models[0]
    assert [s.targets[0].name for s in m.stmts if isinstance(s, ast.Assign)] == ["outputs", "modelx", "op_1", "input2"]


# ---------------------------------------------------------------------------- expressions


@pytest.mark.parametrize(
    ("src", "expected"),
    [
        ("a + b * c", "(a + (b * c))"),
        ("a - b - c", "((a - b) - c)"),
        ("a / b * c", "((a / b) * c)"),
        ("(a + b) * c", "((a + b) * c)"),
        ("-a * b", "(-a * b)"),
        ("-(a + b)", "-(a + b)"),
        ("x - -1", "(x - -1)"),
        ("--3", "3"),
        ("0.5 + 1e-3 + 2. + .5 + 7 + 2.5E+2", "(((((0.5 + 0.001) + 2.0) + 0.5) + 7) + 250.0)"),
        # a reduction extends as far to the right as possible
        ("sum(a: 3, b: 3) x[a, b] / 9.0", "sum(a: 3, b: 3) (x[a, b] / 9.0)"),
        ("2 * sum(r: 3) x[r] + 1", "(2 * sum(r: 3) (x[r] + 1))"),
        ("1 + -max(r: N - 1) x[r]", "(1 + -max(r: (N - 1)) x[r])"),
        ("sum(a: 3) sum(b: K) x[a, b] - 1", "sum(a: 3) sum(b: K) (x[a, b] - 1)"),
        ("(sum(a: 3) x[a]) / 3", "(sum(a: 3) x[a] / 3)"),
        # scalar functions vs reductions
        ("max(a, b) + min(a, b)", "(max(a, b) + min(a, b))"),
        ("select(x[i] <= 0, 0.0, x[i])", "select((x[i] <= 0), 0.0, x[i])"),
        ("select(i != j, a, b) * exp(-x[i])", "(select((i != j), a, b) * exp(-x[i]))"),
        # quasi-affine subscripts
        ("x[n, 2 * i + k] + x[n, i / 2] + x[i % 3]", "((x[n, ((2 * i) + k)] + x[n, (i / 2)]) + x[(i % 3)])"),
    ],
)
def test_expression_structure(src: str, expected: str) -> None:
    assert u(parse_expr(src)) == expected


def test_number_kinds() -> None:
    assert parse_expr("3") == ast.Number(3, True, loc=SourceLocation("<input>", 1, 1, 1, 2))
    for text in ("3.0", "3.", "3e0", ".3"):
        e = parse_expr(text)
        assert isinstance(e, ast.Number) and not e.is_int
    neg = parse_expr("-2.5")
    assert neg == ast.Number(-2.5, False, loc=SourceLocation("<input>", 1, 1, 1, 5))


def test_locations_point_at_first_token() -> None:
    e = parse_expr("  (a + b) * c", "t.mlc")
    assert isinstance(e, ast.Binary)
    assert e.loc == loc(1, 3, 1, 14) and e.op_loc == loc(1, 11, 1, 12)
    assert e.lhs.loc == loc(1, 4, 1, 9)
    c = parse_expr("sel(i < 2, a)", "t.mlc")
    assert isinstance(c, ast.Call) and isinstance(c.args[0], ast.Compare)
    assert c.args[0].loc == loc(1, 5, 1, 10) and c.args[0].op_loc == loc(1, 7, 1, 8)


def test_op_forms() -> None:
    src = """
op scalar(x: f64[N]) -> f64[] { out = max(i: N) x[i] }
op scalar2(x: f32[N]) -> f32[] { out[] = sum(i: N) x[i] * x[i] }
op up(x: f32[N, H]) -> f32[N, 2 * H] {
  out[n, i] = select(i % 2 == 0, x[n, i / 2], 0.0)
}
op window(x: f32[N, H], w: f32[K]) -> f32[N, (H - K) / 2 + 1, H + 1 - K] {
  out[n, i, j] = relu(sum(k: K) x[n, 2 * i + k] * w[k]) + sigmoid(tanh(log(sqrt(abs(x[n, j])))))
}
"""
    scalar, scalar2, up, window = parse(src).ops
    assert scalar.out_indices == () and scalar2.out_indices == ()
    assert u(scalar.result_type) == "f64[]"
    assert isinstance(scalar.body, ast.Reduction) and scalar.body.kind == "max"
    assert u(up.body) == "select(((i % 2) == 0), x[n, (i / 2)], 0.0)"
    assert u(up.result_type) == "f32[N, (2 * H)]"
    assert u(window.result_type) == "f32[N, (((H - K) / 2) + 1), ((H + 1) - K)]"
    assert u(window.body).startswith("(relu(sum(k: K) (x[n, ((2 * i) + k)] * w[k])) + sigmoid(")


# ---------------------------------------------------------------------------- errors


ERRORS = [
    # Syntax errors: unexpected token / character / end of input.
    (
        "model m {\n  h = relu(x w)\n}\n",
        "t.mlc:2:14: error: expected ',' or ')' but found 'w'\n      h = relu(x w)\n                 ^",
    ),
    (
        "model m {\n  h = relu(x\n",
        "t.mlc:2:13: error: unexpected end of input; expected ',' or ')'\n      h = relu(x\n                ^",
    ),
    (
        "model m {\n  input x f32[3]\n}",
        "t.mlc:2:11: error: expected ':' but found 'f32'\n      input x f32[3]\n              ^~~",
    ),
    (
        "model m {\n  h = a + $b\n}",
        "t.mlc:2:11: error: unexpected character '$'\n      h = a + $b\n              ^",
    ),
    (
        "model m {\n  h = a +\n  output h\n}",
        "t.mlc:3:3: error: expected an expression but found 'output'\n      output h\n      ^~~~~~",
    ),
    (
        "model m {\n  input x: f32[-1]\n}",
        "t.mlc:2:16: error: expected a dimension or ']' but found '-'\n      input x: f32[-1]\n                   ^",
    ),
    (
        "model m { 3 }",
        "t.mlc:1:11: error: expected a statement or '}' but found '3'\n    model m { 3 }\n              ^",
    ),
    (
        "mode m {}",
        "t.mlc:1:1: error: expected 'model', 'op' or end of input but found 'mode'\n    mode m {}\n    ^~~~",
    ),
    (
        "op f(x: f32[N]) f32[N] { out[i] = x[i] }",
        "t.mlc:1:17: error: expected '->' but found 'f32'\n    op f(x: f32[N]) f32[N] { out[i] = x[i] }\n                    ^~~",
    ),
    (
        "model m {\n\th = (a + b\n}",
        "t.mlc:3:1: error: expected ')' but found '}'\n    }\n    ^",
    ),
    (
        "model m {\n\th = f(x,\t@)\n}",
        "t.mlc:2:11: error: unexpected character '@'\n    \th = f(x,\t@)\n    \t        \t^",
    ),
    # Rules the parser enforces beyond the grammar.
    (
        "model m { h = f(x, a=1, a=2) }",
        "t.mlc:1:25: error: duplicate keyword argument 'a'\n    model m { h = f(x, a=1, a=2) }\n                            ^~~",
    ),
    (
        "model m { h = f(a=1, x) }",
        "t.mlc:1:22: error: positional argument follows keyword argument\n    model m { h = f(a=1, x) }\n                         ^",
    ),
    (
        "model m { h = f(x, stride=x+1) }",
        "t.mlc:1:27: error: value of keyword argument 'stride' must be a number, a word or a tuple of numbers\n"
        "    model m { h = f(x, stride=x+1) }\n                              ^~~",
    ),
    (
        "model m { input x: f16[3] }",
        "t.mlc:1:20: error: unknown element type 'f16'; expected f32 or f64\n    model m { input x: f16[3] }\n                       ^~~",
    ),
    (
        "model m { input x: f32[N] }",
        "t.mlc:1:24: error: dimensions in a model must be integers (symbolic dimensions are for op signatures)\n"
        "    model m { input x: f32[N] }\n                           ^",
    ),
    (
        "op f(x: f32[2.5]) -> f32[N] { out[i] = x[i] }",
        "t.mlc:1:13: error: dimensions must be integers, not '2.5'\n"
        "    op f(x: f32[2.5]) -> f32[N] { out[i] = x[i] }\n                ^~~",
    ),
    (
        "model m { param w: f32[3] = uniform(-1) }",
        "t.mlc:1:29: error: initialiser 'uniform' takes 2 arguments: uniform(LO, HI)\n"
        "    model m { param w: f32[3] = uniform(-1) }\n                                ^~~~~~~~~~~",
    ),
    (
        "model m { param w: f32[3] = xavier }",
        "t.mlc:1:29: error: unknown initialiser 'xavier'; expected zeros, ones, glorot, normal(STD) or uniform(LO, HI)\n"
        "    model m { param w: f32[3] = xavier }\n                                ^~~~~~",
    ),
    (
        "model m { a, b = x }",
        "t.mlc:1:18: error: assigning to 2 names needs a call on the right-hand side\n    model m { a, b = x }\n                     ^",
    ),
    (
        "op f(x: f32[N]) -> f32[N] {\n  out[i] = x[i]\n  out[i] = 1\n}",
        "t.mlc:3:3: error: an op body has exactly one statement 'out[...] = ...'\n      out[i] = 1\n      ^~~~~~~~~~",
    ),
    (
        "op f(x: f32[N]) -> f32[N] { y[i] = x[i] }",
        "t.mlc:1:29: error: an op body must assign to 'out', not 'y'\n    op f(x: f32[N]) -> f32[N] { y[i] = x[i] }\n                                ^",
    ),
    (
        "op f(x: f32[N]) -> f32[N, N] { out[i, i] = x[i] }",
        "t.mlc:1:39: error: index variable 'i' is repeated in 'out[...]'\n"
        "    op f(x: f32[N]) -> f32[N, N] { out[i, i] = x[i] }\n                                          ^",
    ),
    (
        "op f(x: f32[N]) -> f32[N] { out[i + 1] = x[i] }",
        "t.mlc:1:33: error: output indices must be plain index variable names\n"
        "    op f(x: f32[N]) -> f32[N] { out[i + 1] = x[i] }\n                                    ^~~~~",
    ),
    (
        "op f(x: f32[N]) -> f32[] { out = prod(i: N) x[i] }",
        "t.mlc:1:34: error: unknown reduction 'prod'; expected 'sum' or 'max'\n"
        "    op f(x: f32[N]) -> f32[] { out = prod(i: N) x[i] }\n                                     ^~~~",
    ),
    (
        "op f(x: f32[N]) -> f32[] { out = sum(i: N, i: N) x[i] }",
        "t.mlc:1:44: error: reduction variable 'i' is declared twice\n"
        "    op f(x: f32[N]) -> f32[] { out = sum(i: N, i: N) x[i] }\n                                               ^",
    ),
    (
        "op f(x: f32[N]) -> f32[N] { out[i] = x[i] < 2 }",
        "t.mlc:1:43: error: a comparison is only allowed as the condition of select(...) in an op body\n"
        "    op f(x: f32[N]) -> f32[N] { out[i] = x[i] < 2 }\n                                              ^",
    ),
    (
        "op f(x: f32[N]) -> f32[N] { out[i] = g(x[i], k=2) }",
        "t.mlc:1:46: error: keyword arguments are not allowed in op bodies\n"
        "    op f(x: f32[N]) -> f32[N] { out[i] = g(x[i], k=2) }\n                                                 ^~~",
    ),
    (
        "model m { h = x[0] }",
        "t.mlc:1:15: error: indexing 'x[...]' is only allowed in op bodies\n    model m { h = x[0] }\n                  ^~~~",
    ),
    (
        "model m { h = sum(a: 3) x }",
        "t.mlc:1:15: error: reduction 'sum(...)' is only allowed in op bodies\n    model m { h = sum(a: 3) x }\n                  ^~~",
    ),
    (
        "model m { h = a % 2 }",
        "t.mlc:1:17: error: '%' is only allowed in op bodies\n    model m { h = a % 2 }\n                    ^",
    ),
]


@pytest.mark.parametrize(("src", "expected"), ERRORS, ids=[e[1].split("error: ")[1].split("\n")[0][:40] for e in ERRORS])
def test_error_report(src: str, expected: str) -> None:
    with pytest.raises(CompileError) as info:
        parse(src, "t.mlc")
    assert str(info.value) == expected
    assert info.value.__cause__ is None and info.value.__suppress_context__  # no Lark traceback chained


def test_error_carries_location_and_message() -> None:
    with pytest.raises(CompileError) as info:
        parse("model m {\n  h = relu(x w)\n}\n", "f.mlc")
    err = info.value
    assert err.loc is not None and (err.loc.file, err.loc.line, err.loc.col) == ("f.mlc", 2, 14)
    assert err.message == "expected ',' or ')' but found 'w'"


# ---------------------------------------------------------------------------- diagnostics


def test_compile_error_without_source() -> None:
    err = CompileError(SourceLocation("a.mlc", 3, 7), "shape mismatch: [2, 3] vs [4]")
    assert str(err) == "a.mlc:3:7: error: shape mismatch: [2, 3] vs [4]"
    assert str(CompileError("cannot read file")) == "error: cannot read file"
    # Source attached later, e.g. by the driver.
    assert str(err.with_source("a\nb\nc = x + yy\n")) == "a.mlc:3:7: error: shape mismatch: [2, 3] vs [4]\n    c = x + yy\n          ^"


def test_several_diagnostics_and_spans() -> None:
    text = "x = abc + d\n"
    d1 = Diagnostic(SourceLocation("s.mlc", 1, 5, 1, 8, text), "unknown name 'abc'")
    d2 = Diagnostic(SourceLocation("s.mlc", 1, 11, 2, 1, text), "unknown name 'd'", severity="note")
    assert str(CompileError([d1, d2])) == (
        "s.mlc:1:5: error: unknown name 'abc'\n    x = abc + d\n        ^~~\n"
        "s.mlc:1:11: note: unknown name 'd'\n    x = abc + d\n              ^"
    )
    assert render_diagnostic(SourceLocation("s.mlc", 1, 1), "m", source=text) == "s.mlc:1:1: error: m\n    x = abc + d\n    ^"
    assert render_diagnostic(None, "m") == "error: m"
    # A location past the end of the line still gets its caret; one past the file gets none.
    assert render_diagnostic(SourceLocation("s.mlc", 1, 13), "m", source=text).endswith("\n                ^")
    assert render_diagnostic(SourceLocation("s.mlc", 9, 1), "m", source=text) == "s.mlc:9:1: error: m"


def test_compile_error_pickles_and_locations_compare_without_source() -> None:
    err = CompileError(SourceLocation("p.mlc", 1, 1, 1, 2, "z\n"), "bad")
    again = pickle.loads(pickle.dumps(err))
    assert str(again) == str(err) and again.diagnostics == err.diagnostics
    assert SourceLocation("f", 1, 2, source="abc") == SourceLocation("f", 1, 2)
    assert SourceLocation("f", 1, 2).to(SourceLocation("f", 3, 4, 3, 9)) == SourceLocation("f", 1, 2, 3, 9)


# ---------------------------------------------------------------------------- the parser itself


def test_grammar_is_conflict_free_lalr(caplog: pytest.LogCaptureFixture) -> None:
    lark_logger = logging.getLogger("lark")
    old = lark_logger.level
    lark_logger.setLevel(logging.WARNING)
    try:
        with caplog.at_level(logging.WARNING, logger="lark"):
            parser = _build_lark(debug=True)
    finally:
        lark_logger.setLevel(old)
    assert parser.options.parser == "lalr"
    assert not [r for r in caplog.records if "conflict" in r.getMessage().lower()]


def test_parser_is_built_once() -> None:
    assert _lark() is _lark()
