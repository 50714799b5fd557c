"""`mlc-bitpack`: XNOR-Net's ±1 sums as XOR and popcount on packed words give the float
lowering's result bit for bit: forward (every pad_value, stride, dilation, odd channel counts,
f32 and f64), gradients and training steps; through the NumPy interpreter and the C backend."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from xdsl.context import Context

import mlc
import mlc.passes.pipelines as pipelines
from mlc.frontend import parse_mlc
from mlc.interpreter import evaluate
from mlc.passes.bitpack import BitpackPass
from mlc.passes.pipelines import BITPACK, DEFAULT_PIPELINE
from mlc.runtime.lowering import make_context, run_pipeline

FLOAT_PIPELINE = DEFAULT_PIPELINE.replace(f"{BITPACK},", "")
XNOR_NET = Path(__file__).resolve().parents[1] / "examples" / "xnor_net.mlc"

LAYER = """model m {{
  input x: {t}[{n}, {h}, {w}, {c}]
  param k: {t}[{kh}, {kw}, {c}, {f}] = glorot
  y = binconv2d(x, k, stride={s}, padding={pad}, dilation={d}, mode=xnor, pad_value={pv})
  output y
}}"""


def layers(count: int, seed: int) -> list[dict[str, object]]:
    """Random binconv2d layers: channel counts around word boundaries, stride > kernel, dilation."""
    rng = random.Random(seed)
    cases = []
    for k in range(count):
        case = dict(t=rng.choice(["f32", "f64"]), n=rng.choice([1, 2]), h=rng.randint(3, 9), w=rng.randint(3, 9),
                    c=[3, 63, 64, 65, 130, 1][k % 6], kh=rng.choice([1, 2, 3]), kw=rng.choice([1, 3]),
                    f=rng.choice([1, 5, 8, 17]), s=rng.choice([1, 2, 3]), d=rng.choice([1, 2]),
                    pad=rng.choice(["same", "valid", "1", "(2, 0)"]), pv=[0, 1, -1][k % 3])
        while (case["kh"] - 1) * case["d"] >= case["h"] or (case["kw"] - 1) * case["d"] >= case["w"]:
            case["d"] = 1
            case["h"] = case["w"] = 9
        cases.append(case)
    return cases


def inputs(case: dict[str, object], seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    dtype = np.float32 if case["t"] == "f32" else np.float64
    x = rng.standard_normal((case["n"], case["h"], case["w"], case["c"])).astype(dtype)
    x.flat[:: 7] = 0.0  # sign(0) = +1: a clear bit
    k = rng.standard_normal((case["kh"], case["kw"], case["c"], case["f"])).astype(dtype)
    return x, k


@pytest.mark.parametrize("case", layers(18, seed=3), ids=lambda c: "{t}-c{c}-k{kh}x{kw}-s{s}-d{d}-pad{pad}-pv{pv}".format(**c))
def test_packed_forward_is_bitwise_the_float_one(case: dict[str, object]) -> None:
    source = LAYER.format(**case)
    packed, floats = mlc.compile(source), mlc.compile(source, pipeline=FLOAT_PIPELINE)
    assert "__builtin_popcount" in packed.c_source
    assert "popcount" not in floats.c_source
    x, k = inputs(case, seed=case["c"])
    got, want = packed.run({"k": k}, {"x": x})["y"], floats.run({"k": k}, {"x": x})["y"]
    assert got.tobytes() == want.tobytes()


@pytest.mark.parametrize("case", layers(6, seed=11), ids=lambda c: "c{c}-pv{pv}".format(**c))
def test_packed_ix_evaluates_as_the_float_ix(case: dict[str, object]) -> None:
    """The rewrite alone, at index level, through the NumPy interpreter (no C involved)."""
    module = parse_mlc(LAYER.format(**case))
    run_pipeline(module, "mlc-lower-graph", make_context())
    floats = module.clone()
    BitpackPass().apply(Context(), module)
    module.verify()
    text = str(module)
    assert "math.ctpop" in text and "arith.xori" in text and ("xi32>" in text or "xi64>" in text)
    x, k = inputs(case, seed=5)
    (got,), (want,) = evaluate(module.ops.first, [x, k]), evaluate(floats.ops.first, [x, k])
    assert got.tobytes() == want.tobytes()


@pytest.mark.parametrize("pad_value", [0, 1, -1])
def test_gradients_and_training_steps_are_bitwise_unchanged(pad_value: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """xnor_net's gradients and 3 Adam steps, with the packed forward and without it (the
    gradient and training pipelines read `BITPACK` when they are built)."""
    source = XNOR_NET.read_text().replace("pad_value=0", f"pad_value={pad_value}")
    rng = np.random.default_rng(pad_value + 7)
    batch = {"x": rng.standard_normal((32, 8, 8, 1)).astype(np.float32),
             "y": np.eye(10, dtype=np.float32)[rng.integers(0, 10, 32)]}
    runs = []
    for packed in (True, False):
        if not packed:
            monkeypatch.setattr(pipelines, "BITPACK", "dce")
        program = mlc.compile(source, pipeline=DEFAULT_PIPELINE if packed else FLOAT_PIPELINE)
        params = program.init_params(1)
        _, grads = program.grad({k: v.copy() for k, v in params.items()}, batch)
        trainer = program.trainer("adam", lr=0.01)
        assert ("popcount" in trainer.program.c_source) == packed
        losses = [trainer.step(params, batch)["loss"].tobytes() for _ in range(3)]
        runs.append((grads, params, losses))
    (g1, p1, l1), (g0, p0, l0) = runs
    assert all(g1[k].tobytes() == g0[k].tobytes() for k in g0)
    assert all(p1[k].tobytes() == p0[k].tobytes() for k in p0)
    assert l1 == l0


def test_binary_dense_is_packed_too() -> None:
    """Any ±1 × ±1 sum packs, a dense layer of two signs (`sign(x) @ sign(w)`) included."""
    source = """model m {
  input x: f32[3, 130]
  param w: f32[130, 7] = glorot
  y = dense(sign(x), sign(w))
  output y
}"""
    packed, floats = mlc.compile(source), mlc.compile(source, pipeline=FLOAT_PIPELINE)
    assert "popcount" in packed.c_source
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((3, 130)).astype(np.float32), rng.standard_normal((130, 7)).astype(np.float32)
    got, want = packed.run({"w": w}, {"x": x})["y"], floats.run({"w": w}, {"x": x})["y"]
    assert got.tobytes() == want.tobytes()
    assert np.array_equal(got, np.where(x >= 0, 1, -1) @ np.where(w >= 0, 1, -1))


def test_grouped_binary_conv_stays_in_floats_and_says_why(capsys: pytest.CaptureFixture[str]) -> None:
    source = """model m {
  input x: f32[1, 5, 5, 4]
  param k: f32[3, 3, 2, 6] = glorot
  y = binconv2d(x, k, padding=same, mode=xnor, groups=2)
  output y
}"""
    module = parse_mlc(source)
    run_pipeline(module, "mlc-lower-graph,mlc-bitpack{remarks=true}", make_context())
    assert "math.ctpop" not in str(module)
    assert "stays in floats: no reduction variable indexes one whole axis of each operand" in capsys.readouterr().err


def _sign_product(channels: int, x_features: int, w_features: int) -> tuple[str, list[tuple[int, int]], bool]:
    """A custom sum over `channels` of sign(x) [2, x_features] times sign(w) [w_features, 3]."""
    source = f"""op bd(s: f32[N, I], t: f32[J, O]) -> f32[N, O] {{
  out[n, o] = sum(i: {channels}) s[n, i] * t[i, o]
}}
model m {{
  input x: f32[2, {x_features}]
  param w: f32[{w_features}, 3]
  y = bd(sign(x), sign(w))
  output y
}}"""
    return source, [(2, x_features), (w_features, 3)], False


EDGE_CASES = {
    "a sum over a prefix of the channels (stays in floats)": _sign_product(70, 100, 100),
    "a sum past the end of one operand (stays in floats)": _sign_product(50, 40, 50),
    "the sign of a prefix of x (packed from the signs, not from x)": ("""op sgn(x: f32[N, C]) -> f32[N, 70] {
  out[n, c] = select(x[n, c] >= 0.0, 1.0, -1.0)
}
op bd(s: f32[N, I], t: f32[I, O]) -> f32[N, O] {
  out[n, o] = sum(i: I) s[n, i] * t[i, o]
}
model m {
  input x: f32[2, 100]
  param w: f32[70, 3]
  y = bd(sgn(x), sign(w))
  output y
}""", [(2, 100), (70, 3)], True),
    "one sign tensor as both operands": ("""op gram(s: f32[N, C], t: f32[M, C]) -> f32[N, M] {
  out[n, m] = sum(c: C) s[n, c] * t[m, c]
}
model m {
  input x: f32[3, 40]
  s = sign(x)
  y = gram(s, s)
  output y
}""", [(3, 40)], True),
}


@pytest.mark.parametrize("name", list(EDGE_CASES))
def test_edge_sums_pack_only_when_the_words_hold_them(name: str) -> None:
    source, shapes, packs = EDGE_CASES[name]
    module = parse_mlc(source)
    run_pipeline(module, "mlc-lower-graph", make_context())
    floats = module.clone()
    BitpackPass().apply(Context(), module)
    module.verify()
    assert ("math.ctpop" in str(module)) == packs
    rng = np.random.default_rng(len(name))
    args = [rng.standard_normal(shape).astype(np.float32) for shape in shapes]
    (got,), (want,) = evaluate(module.ops.first, args), evaluate(floats.ops.first, args)
    assert got.tobytes() == want.tobytes()
