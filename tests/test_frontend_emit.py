"""Frontend semantics (AST -> IR): the examples and spec snippets build and verify, IR facts, and
the exact rendering of every class of semantic error."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.ir import Operation

from mlc.dialects import ix, nn
from mlc.errors import CompileError
from mlc.frontend import emit_module, parse, parse_mlc
from mlc.signature import ModelSignature

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.mlc"))

from language_snippets import CUSTOM_OPS, DIGITS_CNN

# Every scalar op a compute body may contain (what the C backend supports).
BODY_OPS = {
    *(f"arith.{n}" for n in "constant addf subf mulf divf negf maximumf minimumf cmpf select addi subi muli".split()),
    *(f"arith.{n}" for n in "floordivsi remsi maxsi minsi cmpi index_cast sitofp".split()),
    *(f"math.{n}" for n in "exp log sqrt absf tanh".split()),
    "ix.index",
    "ix.yield",
}


def build(src: str) -> ModuleOp:
    module = parse_mlc(src, "t.mlc")
    module.verify()
    return module


def model(src: str, name: str | None = None) -> func.FuncOp:
    fs = [op for op in build(src).ops if isinstance(op, func.FuncOp)]
    return fs[0] if name is None else next(f for f in fs if f.sym_name.data == name)


def ops_of(f: Operation, cls: type[Operation]) -> list:
    return [op for op in f.walk() if isinstance(op, cls)]


def shape(v) -> tuple[int, ...]:
    assert isinstance(v.type, TensorType)
    return tuple(v.type.get_shape())


def ints(attr) -> tuple[int, ...]:
    return tuple(attr.get_values())


def maps(op: ix.ComputeOp) -> list[str]:
    return [str(m) for m in op.index_maps]


def check_body_ops(root: Operation) -> None:
    for c in ops_of(root, ix.ComputeOp):
        names = {op.name for op in c.body.walk()}
        assert names <= BODY_OPS, names - BODY_OPS


# ---------------------------------------------------------------------------- whole programs


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_examples_build_and_verify(path: Path) -> None:
    text = path.read_text()
    module = parse_mlc(text, str(path))
    module.verify()
    tree = parse(text, str(path))
    funcs = [op for op in module.ops if isinstance(op, func.FuncOp)]
    assert [f.sym_name.data for f in funcs] == [m.name for m in tree.models]
    for f, m in zip(funcs, tree.models):
        sig = ModelSignature.of(f)
        assert [a.name for a in sig.args] == [d.name for d in m.decls]
        assert [a.name for a in sig.params] == [p.name for p in m.params]
        assert [a.shape for a in sig.args] == [d.type.static_shape() for d in m.decls]
        assert [b.name_hint for b in f.body.block.args] == [d.name for d in m.decls]
        if m.params:
            assert sig.outputs[0].shape == ()
        check_body_ops(f)


def test_spec_digits_cnn_signature_and_ir() -> None:
    f = model(DIGITS_CNN)
    sig = ModelSignature.of(f)
    assert f.sym_name.data == "digits_cnn"
    assert [(a.name, a.kind, a.init) for a in sig.args] == [
        ("x", "input", ""), ("y", "input", ""), ("w1", "param", "glorot"),
        ("b1", "param", "zeros"), ("w2", "param", "glorot"), ("b2", "param", "zeros"),
    ]  # fmt: skip
    assert [(o.name, o.shape, o.dtype) for o in sig.outputs] == [("loss", (), np.float32), ("logits", (32, 10), np.float32)]
    (conv,) = ops_of(f, nn.Conv2DOp)
    assert ints(conv.padding) == (1, 1, 1, 1) and shape(conv.out) == (32, 8, 8, 16)
    (pool,) = ops_of(f, nn.MaxPool2DOp)
    assert shape(pool.out) == (32, 4, 4, 16)
    (flat,) = ops_of(f, nn.ReshapeOp)
    assert shape(flat.out) == (32, 256)
    ret = f.body.block.last_op
    assert isinstance(ret, func.ReturnOp) and [shape(v) for v in ret.operands] == [(), (32, 10)]


def test_spec_custom_ops() -> None:
    f = model(CUSTOM_OPS + "model m {\n  input x: f32[2, 7, 6, 3]\n  input s: f32[4, 11]\n  input w: f32[4]\n"
              "  a = box3(x)\n  b = strided_corr(s, w)\n  output a, b\n}\n")  # fmt: skip
    box, corr = ops_of(f, ix.ComputeOp)
    assert shape(box.result) == (2, 5, 4, 3)
    assert box.reduction.data == "sum" and box.reduction_extents == (3, 3)
    assert maps(box) == ["(d0, d1, d2, d3, d4, d5) -> (d0, (d1 + d4), (d2 + d5), d3)"]
    assert shape(corr.result) == (4, (11 - 4) // 2 + 1)
    assert corr.reduction.data == "sum" and corr.reduction_extents == (4,)
    assert maps(corr) == ["(d0, d1, d2) -> (d0, ((d1 * 2) + d2))", "(d0, d1, d2) -> (d2)"]
    assert [op.name for op in box.body.block.ops] == ["arith.constant", "arith.divf", "ix.yield"]
    check_body_ops(f)


def test_functions_in_source_order_and_ops_emit_nothing_alone() -> None:
    src = "model b {\n  input x: f32[2]\n  output x\n}\n" + CUSTOM_OPS + "model a {\n  input x: f32[2]\n  output x\n}\n"
    module = build(src)
    assert [op.sym_name.data for op in module.ops] == ["b", "a"]


def test_emit_module_is_deterministic() -> None:
    text = EXAMPLES[0].read_text() if EXAMPLES else DIGITS_CNN
    assert str(emit_module(parse(text))) == str(emit_module(parse(text)))


# ---------------------------------------------------------------------------- signatures


def test_param_initialisers_and_defaults() -> None:
    f = model(
        "model m {\n  input x: f32[2, 3]\n  param a: f32[3, 4]\n  param b: f32[4]\n  param c: f64[] = ones\n"
        "  param d: f32[2] = normal(0.01)\n  input z: f32[1]\n  param e: f32[2, 2] = uniform(-0.5, 1)\n"
        "  param g: f32[2, 2] = zeros\n  output c, x\n}\n"
    )
    sig = ModelSignature.of(f)
    assert [(a.name, a.kind, a.init) for a in sig.args] == [
        ("x", "input", ""), ("a", "param", "glorot"), ("b", "param", "zeros"), ("c", "param", "ones"),
        ("d", "param", "normal(0.01)"), ("z", "input", ""), ("e", "param", "uniform(-0.5, 1)"), ("g", "param", "zeros"),
    ]  # fmt: skip
    assert sig.args[3].dtype == np.float64 and [o.name for o in sig.outputs] == ["c", "x"]
    assert [str(t) for t in f.function_type.inputs][:2] == ["tensor<2x3xf32>", "tensor<3x4xf32>"]


def test_inference_model_may_return_anything_and_shadowing() -> None:
    f = model("model m {\n  input x: f32[2, 3]\n  x = relu(x)\n  x = x * 2\n  output x\n}\n")
    (mul,) = ops_of(f, nn.MulOp)
    assert isinstance(mul.lhs.owner, nn.ReluOp)
    assert ModelSignature.of(f).outputs[0].shape == (2, 3)


# ---------------------------------------------------------------------------- built-in calls


def conv_model(x: str, w: str, call: str) -> func.FuncOp:
    return model(f"model m {{\n  input x: f32[{x}]\n  input w: f32[{w}]\n  y = {call}\n  output y\n}}\n")


def test_same_padding_is_asymmetric_tensorflow() -> None:
    # H = 7, stride 2, kernel 4: Ho = 4, total pad = 3*2 + 4 - 7 = 3 -> top 1, bottom 2.
    (conv,) = ops_of(conv_model("1, 7, 7, 1", "4, 4, 1, 2", "conv2d(x, w, stride=2, padding=same)"), nn.Conv2DOp)
    assert ints(conv.padding) == (1, 2, 1, 2) and shape(conv.out) == (1, 4, 4, 2)
    # with dilation 2 the kernel spans 7: total pad = 3*2 + 7 - 7 = 6 -> 3 and 3.
    (conv,) = ops_of(conv_model("1, 7, 7, 1", "4, 4, 1, 2", "conv2d(x, w, stride=2, padding=same, dilation=2)"), nn.Conv2DOp)
    assert ints(conv.padding) == (3, 3, 3, 3) and ints(conv.dilation) == (2, 2) and shape(conv.out) == (1, 4, 4, 2)


def test_stride_dilation_padding_forms() -> None:
    f = conv_model("1, 9, 9, 2", "3, 3, 2, 4", "conv2d(x, w, stride=(2, 1), padding=(1, 2, 3, 4), dilation=(1, 2))")
    (conv,) = ops_of(f, nn.Conv2DOp)
    assert ints(conv.stride) == (2, 1) and ints(conv.dilation) == (1, 2) and ints(conv.padding) == (1, 2, 3, 4)
    assert shape(conv.out) == (1, (9 + 3 - 2 - 1) // 2 + 1, 9 + 7 - 4 - 1 + 1, 4)
    (conv,) = ops_of(conv_model("1, 5, 5, 2", "3, 3, 2, 4", "conv2d(x, w, padding=1)"), nn.Conv2DOp)
    assert ints(conv.padding) == (1, 1, 1, 1) and ints(conv.stride) == (1, 1) and shape(conv.out) == (1, 5, 5, 4)


def test_binconv2d_options() -> None:
    f = conv_model("1, 6, 6, 2", "3, 3, 2, 4", "binconv2d(x, w, stride=2, padding=same, mode=bwn, pad_value=-1)")
    (op,) = ops_of(f, nn.BinConv2DOp)
    assert op.mode.data == "bwn" and op.pad_value.value.data == -1 and ints(op.padding) == (0, 1, 0, 1)
    (op,) = ops_of(conv_model("1, 6, 6, 2", "3, 3, 2, 4", "binconv2d(x, w)"), nn.BinConv2DOp)
    assert op.mode.data == "xnor" and op.pad_value.value.data == 0


def test_pools_default_stride_and_same_padding() -> None:
    src = "model m {\n  input x: f32[1, 7, 7, 3]\n  a = maxpool2d(x, 2)\n  b = avgpool2d(x, size=(3, 2), padding=same)\n  output a, b\n}\n"
    f = model(src)
    (mx,) = ops_of(f, nn.MaxPool2DOp)
    (avg,) = ops_of(f, nn.AvgPool2DOp)
    assert ints(mx.stride) == (2, 2) and shape(mx.out) == (1, 3, 3, 3)
    # H: k 3, s 3 -> Ho 3, total 2*3 + 3 - 7 = 2; W: k 2, s 2 -> Wo 4, total 3*2 + 2 - 7 = 1.
    assert ints(avg.stride) == (3, 2) and ints(avg.padding) == (1, 1, 0, 1) and shape(avg.out) == (1, 3, 4, 3)


def test_shape_builtins() -> None:
    src = (
        "model m {\n  input x: f32[2, 3, 4]\n  input y: f32[2, 3, 1]\n"
        "  f = flatten(x)\n  r = reshape(x, (4, -1))\n  c = concat(x, y, axis=-1)\n"
        "  s = sum(x)\n  t = mean(x, axis=(0, -1))\n  u = sum(x, axis=1)\n  output f, r, c, s, t, u\n}\n"
    )
    f = model(src)
    flat, resh = ops_of(f, nn.ReshapeOp)
    assert shape(flat.out) == (2, 12) and shape(resh.out) == (4, 6)
    (cat,) = ops_of(f, nn.ConcatOp)
    assert cat.axis.value.data == 2 and shape(cat.out) == (2, 3, 5)
    s, u = ops_of(f, nn.SumOp)
    assert ints(s.axes) == (0, 1, 2) and shape(s.out) == () and ints(u.axes) == (1,)
    (t,) = ops_of(f, nn.MeanOp)
    assert ints(t.axes) == (0, 2) and shape(t.out) == (3,)


def test_other_builtins() -> None:
    src = (
        "model m {\n  input x: f32[4, 3]\n  input w: f32[3, 5]\n  input g: f32[3]\n"
        "  a = matmul(x, w)\n  b = dense(x, w)\n  c = batchnorm(x, g, g, eps=0.001)\n  d = softmax(x) + log_softmax(x)\n"
        "  e = mse(x, x) + bce(x, x) + softmax_cross_entropy(x, x) + kl_normal(x, x)\n"
        "  h = relu(x) + sigmoid(x) + tanh(x) + exp(x) + log(x) + sqrt(x) + abs(x) + sign(x) + neg(x) - -x\n"
        "  h = h + square(x) + silu(x) + softplus(x) + erf(x) + gelu(x, approximate=tanh)\n"
        "  output e, a, b, c, d, h\n}\n"
    )
    f = model(src)
    (bn,) = ops_of(f, nn.BatchNormOp)
    assert bn.eps.value.data == 0.001
    (dense,) = ops_of(f, nn.DenseOp)
    assert dense.b is None and shape(dense.out) == (4, 5)
    assert {type(op) for op in f.body.block.ops} >= {*nn.UNARY.values(), nn.MSEOp, nn.BCEOp, nn.KLNormalOp}
    (gelu,) = ops_of(f, nn.GeluOp)
    assert gelu.approximation() == "tanh"


def test_literals_take_the_other_operand_type_and_fold() -> None:
    f = model("model m {\n  input x: f64[3]\n  y = (2 * 3 - 1) / 2 * x + 1\n  k = -(4 / 8)\n  output y, k\n}\n")
    consts = ops_of(f, nn.ConstantOp)
    assert [(c.value.value.data, str(c.out.type)) for c in consts] == [
        (2.5, "tensor<f64>"), (1.0, "tensor<f64>"), (-0.5, "tensor<f64>"),
    ]  # fmt: skip
    assert len(ops_of(f, nn.MulOp)) == 1 and len(ops_of(f, nn.AddOp)) == 1


def test_very_long_operator_chain() -> None:
    terms = " + ".join(["x"] * 3000)
    f = model(f"model m {{\n  input x: f32[2]\n  y = {terms}\n  output y\n}}\n")
    assert len(ops_of(f, nn.AddOp)) == 2999


# ---------------------------------------------------------------------------- custom ops


def custom(op_src: str, decls: str, call: str) -> func.FuncOp:
    return model(f"{op_src}\nmodel m {{\n{decls}\n  y = {call}\n  output y\n}}\n")


def test_nested_reduction_is_hoisted() -> None:
    op = "op f(x: f32[N, K]) -> f32[N] {\n  out[i] = 2 * sum(k: K) x[i, k]\n}"
    f = custom(op, "  input x: f32[3, 5]", "f(x)")
    inner, outer = ops_of(f, ix.ComputeOp)
    assert inner.reduction.data == "sum" and inner.reduction_extents == (5,) and shape(inner.result) == (3,)
    assert maps(inner) == ["(d0, d1) -> (d0, d1)"]
    assert outer.reduction.data == "none" and outer.inputs[0] is inner.result and maps(outer) == ["(d0) -> (d0)"]
    assert [op.name for op in outer.body.block.ops] == ["arith.constant", "arith.mulf", "ix.yield"]


def test_mixed_nesting_reads_enclosing_variables() -> None:
    # The inner sum depends on the output index i and on the max's variable k.
    op = "op f(x: f32[N, K]) -> f32[N] {\n  out[i] = max(k: K) (x[i, k] + sum(j: 2) x[i, (k + j) % K])\n}"
    f = custom(op, "  input x: f32[3, 5]", "f(x)")
    inner, outer = ops_of(f, ix.ComputeOp)
    assert inner.reduction.data == "sum" and shape(inner.result) == (3, 5) and inner.reduction_extents == (2,)
    assert maps(inner) == ["(d0, d1, d2) -> (d0, ((d1 + d2) mod 5))"]
    assert outer.reduction.data == "max" and outer.reduction_extents == (5,)
    assert maps(outer) == ["(d0, d1) -> (d0, d1)", "(d0, d1) -> (d0, d1)"] and outer.inputs[1] is inner.result


def test_directly_nested_same_kind_reductions_merge() -> None:
    op = "op f(x: f32[N, K]) -> f32[] {\n  out = sum(i: N) sum(k: K) x[i, k]\n}"
    (c,) = ops_of(custom(op, "  input x: f32[3, 5]", "f(x)"), ix.ComputeOp)
    assert c.reduction_extents == (3, 5) and shape(c.result) == () and maps(c) == ["(d0, d1) -> (d0, d1)"]


def test_index_values_dims_and_scalar_functions() -> None:
    op = (
        "op f(x: f32[N], s: f32[]) -> f32[N] {\n"
        "  out[i] = select(x[i] != s, sigmoid(x[i]) + relu(-x[i]) + i / N, max(abs(s[]), min(tanh(s), sqrt(exp(log(s))))))\n}"
    )
    f = custom(op, "  input x: f32[4]\n  input s: f32[]", "f(x, s)")
    (c,) = ops_of(f, ix.ComputeOp)
    assert maps(c) == ["(d0) -> (d0)", "(d0) -> ()"]  # x[i] read once, s and s[] read once
    names = [op.name for op in c.body.block.ops]
    assert names[names.index("ix.index") : names.index("ix.index") + 3] == ["ix.index", "arith.index_cast", "arith.sitofp"]
    assert {"arith.cmpf", "arith.select", "math.exp", "arith.maximumf", "arith.minimumf", "math.absf"} <= set(names)
    (cmp,) = [op for op in c.body.block.ops if op.name == "arith.cmpf" and "une" in str(op)]
    consts = [op.value.value.data for op in c.body.block.ops if op.name == "arith.constant"]
    assert 4.0 in consts  # the dimension N as a value
    check_body_ops(f)


def test_quasi_affine_subscripts_and_symbolic_dims() -> None:
    op = "op f(x: f32[N, H]) -> f32[N, 2 * H] {\n  out[n, i] = x[n, i / 2] + x[n, H - 1 - i % H] + x[-n + 1, 3 * (i - 1)]\n}"
    (c,) = ops_of(custom(op, "  input x: f32[2, 5]", "f(x)"), ix.ComputeOp)
    assert shape(c.result) == (2, 10)
    assert maps(c) == [
        "(d0, d1) -> (d0, (d1 floordiv 2))",
        "(d0, d1) -> (d0, (((d1 mod 5) * -1) + 4))",
        "(d0, d1) -> (((d0 * -1) + 1), ((d1 * 3) + -3))",
    ]


def test_literal_argument_and_scalar_result() -> None:
    op = "op scale(x: f64[N], k: f64[]) -> f64[] {\n  out[] = sum(i: N) x[i] * k\n}"
    f = custom(op, "  input x: f64[3]", "scale(x, 0.5)")
    (const,) = ops_of(f, nn.ConstantOp)
    assert str(const.out.type) == "tensor<f64>"
    (c,) = ops_of(f, ix.ComputeOp)
    assert str(c.result.type) == "tensor<f64>"


def test_each_call_instantiates_for_its_shapes() -> None:
    src = CUSTOM_OPS + "model m {\n  input a: f32[1, 5, 5, 2]\n  input b: f32[2, 9, 4, 1]\n  y = box3(a)\n  z = box3(b)\n  output y, z\n}\n"
    y, z = ops_of(model(src), ix.ComputeOp)
    assert shape(y.result) == (1, 3, 3, 2) and shape(z.result) == (2, 7, 2, 1)


# ---------------------------------------------------------------------------- errors

HEAD = """\
model m {
  input x: f32[4, 8, 8, 3]
  input v: f32[4, 10]
  input d: f64[10]
  param w: f32[3, 3, 3, 8]
  param b: f32[8]
  param w2: f32[12, 3]
"""


def render(src: str) -> str:
    with pytest.raises(CompileError) as info:
        parse_mlc(src, "t.mlc")
    return str(info.value)


def expect(src: str, expected: str) -> None:
    assert render(src) == textwrap.dedent(expected).strip("\n")


MODEL_ERRORS = {
    "unknown_name": (
        "  h = relu(hh)\n",
        """
        t.mlc:8:12: error: unknown name 'hh'
              h = relu(hh)
                       ^~
        """,
    ),
    "unknown_operation": (
        "  h = conv3d(x, w)\n",
        """
        t.mlc:8:7: error: unknown operation 'conv3d'
              h = conv3d(x, w)
                  ^~~~~~
        """,
    ),
    "too_many_positional": (
        "  h = conv2d(x, w, 2)\n",
        """
        t.mlc:8:20: error: conv2d expects 2 positional arguments, got 3
              h = conv2d(x, w, 2)
                               ^
        """,
    ),
    "too_few_positional": (
        "  h = dense(v)\n",
        """
        t.mlc:8:7: error: dense expects 2 to 3 positional arguments, got 1
              h = dense(v)
                  ^~~~~~~~
        """,
    ),
    "unknown_keyword": (
        "  h = conv2d(x, w, strides=2)\n",
        """
        t.mlc:8:20: error: conv2d has no keyword 'strides' (expected stride, padding, dilation, groups)
              h = conv2d(x, w, strides=2)
                               ^~~~~~~~~
        """,
    ),
    "bad_padding": (
        "  h = conv2d(x, w, padding=full)\n",
        """
        t.mlc:8:28: error: padding must be valid, same, an int, (ph, pw) or (top, bottom, left, right), got 'full'
              h = conv2d(x, w, padding=full)
                                       ^~~~
        """,
    ),
    "bad_mode": (
        "  h = binconv2d(x, w, mode=xor)\n",
        """
        t.mlc:8:28: error: mode must be xnor or bwn, got 'xor'
              h = binconv2d(x, w, mode=xor)
                                       ^~~
        """,
    ),
    "bad_pad_value": (
        "  h = binconv2d(x, w, pad_value=2)\n",
        """
        t.mlc:8:33: error: pad_value must be 0, 1 or -1, got '2'
              h = binconv2d(x, w, pad_value=2)
                                            ^
        """,
    ),
    "conv_channels": (
        "  h = conv2d(conv2d(x, w), w)\n",
        """
        t.mlc:8:7: error: conv2d: input has 8 channels but the filter expects 3 (input f32[4, 6, 6, 8], filter f32[3, 3, 3, 8])
              h = conv2d(conv2d(x, w), w)
                  ^~~~~~~~~~~~~~~~~~~~~~~
        """,
    ),
    "dense_features": (
        "  h = dense(v, w2)\n",
        """
        t.mlc:8:7: error: dense: input f32[4, 10] has 10 features but the weight f32[12, 3] expects 12
              h = dense(v, w2)
                  ^~~~~~~~~~~~
        """,
    ),
    "broadcasting": (
        "  h = v + x\n",
        """
        t.mlc:8:9: error: operands of '+' do not broadcast: f32[4, 10] and f32[4, 8, 8, 3]
              h = v + x
                    ^
        """,
    ),
    "concat": (
        "  h = concat(v, x)\n",
        """
        t.mlc:8:7: error: concat: shapes f32[4, 10] and f32[4, 8, 8, 3] differ outside axis 1
              h = concat(v, x)
                  ^~~~~~~~~~~~
        """,
    ),
    "concat_axis": (
        "  h = concat(v, v, axis=-3)\n",
        """
        t.mlc:8:25: error: axis -3 is out of range for f32[4, 10]
              h = concat(v, v, axis=-3)
                                    ^~
        """,
    ),
    "dtype_mix": (
        "  h = v * d\n",
        """
        t.mlc:8:9: error: operands of '*' have different element types: f32[4, 10] and f64[10]
              h = v * d
                    ^
        """,
    ),
    "dtype_mix_call": (
        "  h = mse(v, d)\n",
        """
        t.mlc:8:7: error: operands of mse have different element types: f32[4, 10] and f64[10]
              h = mse(v, d)
                  ^~~~~~~~~
        """,
    ),
    "reshape": (
        "  h = reshape(v, (3, -1))\n",
        """
        t.mlc:8:7: error: reshape: cannot reshape f32[4, 10] (40 elements) to [3, -1]
              h = reshape(v, (3, -1))
                  ^~~~~~~~~~~~~~~~~~~
        """,
    ),
    "missing_option": (
        "  h = maxpool2d(x)\n",
        """
        t.mlc:8:7: error: maxpool2d needs the argument 'size'
              h = maxpool2d(x)
                  ^~~~~~~~~~~~
        """,
    ),
    "multi_assign": (
        "  h, k = relu(v)\n",
        """
        t.mlc:8:10: error: 'relu' returns 1 value, but 2 names are bound
              h, k = relu(v)
                     ^~~~~~~
        """,
    ),
    "duplicate_param": (
        "  param b: f32[8]\n",
        """
        t.mlc:8:9: error: 'b' is already declared at line 6
              param b: f32[8]
                    ^
        """,
    ),
    "literal_division_by_zero": (
        "  h = 1 / (2 - 2)\n",
        """
        t.mlc:8:9: error: division by zero
              h = 1 / (2 - 2)
                    ^
        """,
    ),
}


@pytest.mark.parametrize("name", MODEL_ERRORS)
def test_model_errors(name: str) -> None:
    stmt, expected = MODEL_ERRORS[name]
    tail = "  loss = sum(v)\n  output loss\n}\n"
    expect(HEAD + stmt + tail, expected)


def test_non_scalar_first_output_is_accepted() -> None:
    """A model with params may output anything: the loss rule is checked when it is differentiated
    (`mlc-autodiff`, tests/test_inference_models.py), at the output name recorded here."""
    src = HEAD + "  logits = conv2d(x, w) + b\n  output logits\n}\n"
    (f,) = parse_mlc(src, "t.mlc").ops
    assert isinstance(f, func.FuncOp)
    assert [s.data for s in f.attributes["mlc.output_locs"].data] == ["t.mlc:9:10-9:16"]  # pyright: ignore


def test_output_errors() -> None:
    expect(
        "model m {\n  input x: f32[2]\n  output x, y\n}\n",
        """
        t.mlc:3:13: error: unknown name 'y'
              output x, y
                        ^
        """,
    )
    expect(
        "model m {\n  input x: f32[2]\n}\n",
        """
        t.mlc:1:7: error: model 'm' has no 'output' statement
            model m {
                  ^
        """,
    )
    expect(
        "model m {\n  y = relu(x)\n  input x: f32[2]\n  output y\n}\n",
        """
        t.mlc:2:12: error: unknown name 'x'
              y = relu(x)
                       ^
        """,
    )


def test_duplicate_definitions() -> None:
    expect(
        "model m {\n  input x: f32[2]\n  output x\n}\nop m(x: f32[N]) -> f32[N] {\n  out[i] = x[i]\n}\n",
        """
        t.mlc:5:4: error: 'm' is already defined at line 1
            op m(x: f32[N]) -> f32[N] {
               ^
        """,
    )


OPS = CUSTOM_OPS + """\
op pair(x: f32[N, C], y: f32[C, N]) -> f32[N] {
  out[i] = x[i, 0] + y[0, i]
}
"""

CALL_ERRORS = {
    "binding_rank": (
        "  input x: f32[4, 8]\n  y = box3(x)\n",
        """
        t.mlc:13:7: error: box3 expects x: f32[N, H, W, C], got f32[4, 8]
              y = box3(x)
                  ^~~~~~~
        """,
    ),
    "binding_conflict": (
        "  input x: f32[4, 3]\n  input w: f32[3, 5]\n  y = pair(x, w)\n",
        """
        t.mlc:14:7: error: pair expects y: f32[C, N], got f32[3, 5] (N is 4 from x)
              y = pair(x, w)
                  ^~~~~~~~~~
        """,
    ),
    "binding_dtype": (
        "  input x: f64[4, 8, 8, 1]\n  y = box3(x)\n",
        """
        t.mlc:13:7: error: box3 expects x: f32[N, H, W, C], got f64[4, 8, 8, 1]
              y = box3(x)
                  ^~~~~~~
        """,
    ),
    "result_not_positive": (
        "  input x: f32[4, 1, 8, 1]\n  y = box3(x)\n",
        """
        t.mlc:13:7: error: result dimension H - 2 is -1 for this call
              y = box3(x)
                  ^~~~~~~
        """,
    ),
    "argument_count": (
        "  input x: f32[4, 8, 8, 1]\n  y = box3(x, x)\n",
        """
        t.mlc:13:7: error: box3 expects 1 argument, got 2
              y = box3(x, x)
                  ^~~~~~~~~~
        """,
    ),
}


@pytest.mark.parametrize("name", CALL_ERRORS)
def test_custom_op_call_errors(name: str) -> None:
    decls, expected = CALL_ERRORS[name]
    expect(OPS + "model m {\n" + decls + "  output y\n}\n", expected)


def test_dimension_expression_mismatch() -> None:
    op = "op up(x: f32[N], y: f32[2 * N]) -> f32[N] {\n  out[i] = x[i] + y[2 * i]\n}\n"
    expect(
        op + "model m {\n  input a: f32[3]\n  input b: f32[5]\n  y = up(a, b)\n  output y\n}\n",
        """
        t.mlc:7:7: error: up expects y: f32[2 * N], got f32[5] (2 * N is 6)
              y = up(a, b)
                  ^~~~~~~~
        """,
    )


def op_error(body: str, expected: str, signature: str = "f(x: f32[N, K])  -> f32[N]") -> None:
    """An error in an op that no model calls is still reported."""
    expect(f"op {signature} {{\n  {body}\n}}\n", expected)


def test_non_affine_product_of_index_variables() -> None:
    op_error(
        "out[i] = sum(k: K) x[i, i * k]",
        """
        t.mlc:2:27: error: non-affine subscript: i * k multiplies two index expressions
              out[i] = sum(k: K) x[i, i * k]
                                      ^~~~~
        """,
    )


def test_non_affine_division_by_variable() -> None:
    op_error(
        "out[i] = sum(k: K) x[i, i / k]",
        """
        t.mlc:2:27: error: non-affine subscript: i / k divides by an index expression; only positive integer constants are allowed
              out[i] = sum(k: K) x[i, i / k]
                                      ^~~~~
        """,
    )


def test_non_affine_float_and_read_in_subscript() -> None:
    op_error(
        "out[i] = x[i, i / 2.5]",
        """
        t.mlc:2:21: error: non-affine subscript: 2.5 is not an integer
              out[i] = x[i, i / 2.5]
                                ^~~
        """,
    )
    op_error(
        "out[i] = x[i, x[i, 0]]",
        """
        t.mlc:2:17: error: non-affine subscript: x[i, 0] reads a tensor inside a subscript
              out[i] = x[i, x[i, 0]]
                            ^~~~~~~
        """,
    )
    op_error(
        "out[i] = x[i, i % 0]",
        """
        t.mlc:2:17: error: non-affine subscript: i % 0 takes the remainder by 0; the divisor must be a positive integer
              out[i] = x[i, i % 0]
                            ^~~~~
        """,
    )


def test_wrong_subscript_count() -> None:
    op_error(
        "out[i] = x[i]",
        """
        t.mlc:2:12: error: 'x' has rank 2 (f32[N, K]) but is indexed with 1 subscript
              out[i] = x[i]
                       ^~~~
        """,
    )


def test_op_body_name_errors() -> None:
    op_error(
        "out[i] = x[i, 0] + h",
        """
        t.mlc:2:22: error: unknown name 'h'
              out[i] = x[i, 0] + h
                                 ^
        """,
    )
    op_error(
        "out[i] = sign(x[i, 0])",
        """
        t.mlc:2:12: error: unknown function 'sign' in an op body (available: exp, log, sqrt, abs, tanh, sigmoid, relu, max, min, select)
              out[i] = sign(x[i, 0])
                       ^~~~
        """,
    )
    op_error(
        "out[i] = x[i, 0]",
        """
        t.mlc:1:32: error: dimension name 'M' is not bound: it must be a whole dimension of a parameter, e.g. f32[M]
            op f(x: f32[N, K])  -> f32[N + M] {
                                           ^
        """,
        signature="f(x: f32[N, K])  -> f32[N + M]",
    )


def test_reduction_variable_hiding_an_enclosing_one() -> None:
    op_error(
        "out[i] = 2.0 * max(k: K) x[i, k] + sum(k: K) x[i, k]",
        """
        t.mlc:2:42: error: 'k' is already the variable of the enclosing 'max(...)' at column 18, whose body extends to the end of the expression; put that max in parentheses
              out[i] = 2.0 * max(k: K) x[i, k] + sum(k: K) x[i, k]
                                                     ^
        """,
    )


def test_op_dtype_must_match_result() -> None:
    op_error(
        "out[i] = x[i, 0]",
        """
        t.mlc:1:9: error: op 'f' computes f32, so 'x' must be f32 too, not f64
            op f(x: f64[N, K])  -> f32[N] {
                    ^~~~~~~~~
        """,
        signature="f(x: f64[N, K])  -> f32[N]",
    )


def test_only_the_first_error_is_reported() -> None:
    src = "model m {\n  input x: f32[2]\n  a = relu(q)\n  b = conv3d(x)\n  output a\n}\nop f(x: f32[N]) -> f32[N] {\n  out[i] = x[i * i]\n}\n"
    with pytest.raises(CompileError) as info:
        parse_mlc(src, "t.mlc")
    assert len(info.value.diagnostics) == 1 and str(info.value).startswith("t.mlc:3:12: error: unknown name 'q'")


def test_op_parameter_errors() -> None:
    op_error(
        "out[i] = x[i, 0]",
        """
        t.mlc:1:20: error: parameter 'x' is declared twice
            op f(x: f32[N, K], x: f32[N]) -> f32[N] {
                               ^~~~~~~~~
        """,
        signature="f(x: f32[N, K], x: f32[N]) -> f32[N]",
    )
    op_error(
        "out[N] = x[N, 0]",
        """
        t.mlc:2:7: error: index variable 'N' has the name of a dimension
              out[N] = x[N, 0]
                  ^
        """,
    )


def test_absurd_integers_are_diagnosed() -> None:
    expect(
        "model m {\n  input x: f32[1, 4, 4, 1]\n  y = maxpool2d(x, size=99999999999999999999)\n  output y\n}\n",
        """
        t.mlc:3:25: error: 99999999999999999999 is too large (the limit is 2147483647)
              y = maxpool2d(x, size=99999999999999999999)
                                    ^~~~~~~~~~~~~~~~~~~~
        """,
    )
    expect(
        "model m {\n  input x: f32[0, 4]\n  output x\n}\n",
        """
        t.mlc:2:16: error: dimensions must be between 1 and 2147483647, got 0
              input x: f32[0, 4]
                           ^
        """,
    )
