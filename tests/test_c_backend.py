"""C backend: hand-written loop-level IR is emitted, compiled, run on NumPy arrays, and
compared with NumPy (f64 to 1e-12 relative, f32 to 1e-6)."""

from __future__ import annotations

import io
import math
import multiprocessing
import subprocess
from pathlib import Path

import numpy as np
import pytest
from xdsl.context import Context
from xdsl.dialects.arith import Arith
from xdsl.dialects.builtin import Builtin, ModuleOp
from xdsl.dialects.func import Func, FuncOp
from xdsl.dialects.math import Math
from xdsl.dialects.memref import MemRef
from xdsl.dialects.scf import Scf
from xdsl.parser import Parser

from mlc.backends.c import runtime
from mlc.backends.cache import cache_dir
from mlc.backends.c.emitter import CEmitError, CTarget, emit_c
from mlc.backends.c.runtime import CFunction, compile_c, compile_module, load_library

RTOL = {"f32": 1e-6, "f64": 1e-12}
NP = {"f32": np.float32, "f64": np.float64}


@pytest.fixture(scope="session")
def cache_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mlc-cache")


@pytest.fixture(autouse=True)
def _private_cache(cache_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never read or pollute the user's ~/.cache/mlc from tests."""
    monkeypatch.setenv("MLC_CACHE_DIR", str(cache_root))


def context() -> Context:
    ctx = Context()
    for dialect in (Builtin, Func, Arith, MemRef, Scf, Math):
        ctx.load_dialect(dialect)
    return ctx


def parse(text: str) -> ModuleOp:
    module = Parser(context(), text).parse_module()
    module.verify()
    return module


def build(text: str) -> dict[str, CFunction]:
    return compile_module(parse(text))


# --------------------------------------------------------------------------------------------
# IR snippets
# --------------------------------------------------------------------------------------------


def matmul_ir(t: str, m: int, k: int, n: int) -> str:
    return f"""
func.func @matmul_{t}(%a: memref<{m}x{k}x{t}>, %b: memref<{k}x{n}x{t}>, %c: memref<{m}x{n}x{t}>) {{
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %cm = arith.constant {m} : index
  %ck = arith.constant {k} : index
  %cn = arith.constant {n} : index
  %zero = arith.constant 0.0 : {t}
  scf.for %i = %c0 to %cm step %c1 {{
    scf.for %j = %c0 to %cn step %c1 {{
      %sum = scf.for %p = %c0 to %ck step %c1 iter_args(%acc = %zero) -> ({t}) {{
        %x = memref.load %a[%i, %p] : memref<{m}x{k}x{t}>
        %y = memref.load %b[%p, %j] : memref<{k}x{n}x{t}>
        %xy = arith.mulf %x, %y : {t}
        %next = arith.addf %acc, %xy : {t}
        scf.yield %next : {t}
      }}
      memref.store %sum, %c[%i, %j] : memref<{m}x{n}x{t}>
    }}
  }}
  func.return
}}
"""


# out[i] = x[i - 1] + x[i + 1] with zero padding: both reads are guarded by scf.if.
GUARDED = """
func.func @shift_sum(%x: memref<10xf32>, %out: memref<10xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c10 = arith.constant 10 : index
  %zero = arith.constant 0.0 : f32
  scf.for %i = %c0 to %c10 step %c1 {
    %l = arith.subi %i, %c1 : index
    %r = arith.addi %i, %c1 : index
    %lok = arith.cmpi sge, %l, %c0 : index
    %left = scf.if %lok -> (f32) {
      %v = memref.load %x[%l] : memref<10xf32>
      scf.yield %v : f32
    } else {
      scf.yield %zero : f32
    }
    %rok = arith.cmpi slt, %r, %c10 : index
    %rok2 = arith.cmpi sge, %r, %c0 : index
    %both = arith.andi %rok, %rok2 : i1
    %right = scf.if %both -> (f32) {
      %v = memref.load %x[%r] : memref<10xf32>
      scf.yield %v : f32
    } else {
      scf.yield %zero : f32
    }
    %s = arith.addf %left, %right : f32
    memref.store %s, %out[%i] : memref<10xf32>
  }
  func.return
}
"""

INT_DIV_OPS = ("floordivsi", "remsi", "ceildivsi", "divsi")


def int_div_ir(t: str, divisor: int) -> str:
    """Row r, column i of the output: op_r(i - 7, divisor) computed in type `t`, as f64."""
    rows = []
    for row, op in enumerate(INT_DIV_OPS):
        cast = "" if t == "index" else f"%a_{row} = arith.index_cast %a : index to {t}"
        a = "%a" if t == "index" else f"%a_{row}"
        to_i64 = (
            f"%w_{row} = arith.index_cast %q_{row} : index to i64"
            if t == "index"
            else (f"%w_{row} = arith.extsi %q_{row} : i32 to i64" if t == "i32" else "")
        )
        w = f"%w_{row}" if to_i64 else f"%q_{row}"
        rows.append(
            f"""
    {cast}
    %q_{row} = arith.{op} {a}, %d : {t}
    {to_i64}
    %f_{row} = arith.sitofp {w} : i64 to f64
    %row_{row} = arith.constant {row} : index
    memref.store %f_{row}, %out[%row_{row}, %i] : memref<4x15xf64>"""
        )
    name = f"intdiv_{t}_{'m' if divisor < 0 else ''}{abs(divisor)}"
    return f"""
func.func @{name}(%out: memref<4x15xf64>) {{
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c7 = arith.constant 7 : index
  %c15 = arith.constant 15 : index
  %d = arith.constant {divisor} : {t}
  scf.for %i = %c0 to %c15 step %c1 {{
    %a = arith.subi %i, %c7 : index
    {"".join(rows)}
  }}
  func.return
}}
"""


# Arena views as the memory planner makes them: u and z overlap nothing (restrict); w reuses
# the upper half of t's bytes, so neither t nor w may be restrict. All aliasing views have the
# same element type (reading bytes through another type would break C's aliasing rules).
ARENA = """
func.func @arena_fn(%x: memref<4x8xf32>, %y: memref<4x8xf32>, %arena: memref<640xi8>)
    attributes {mlc.arena_bytes = 640 : i64, mlc.arg_names = ["x", "y"]} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %c8 = arith.constant 8 : index
  %off_t = arith.constant 0 : index
  %off_w = arith.constant 64 : index
  %off_u = arith.constant 256 : index
  %off_z = arith.constant 384 : index
  %two = arith.constant 2.0 : f32
  %three = arith.constant 3.0 : f32
  %one = arith.constant 1.0 : f32
  %t = memref.view %arena[%off_t][] : memref<640xi8> to memref<4x8xf32>
  %w = memref.view %arena[%off_w][] : memref<640xi8> to memref<4x8xf32>
  %u = memref.view %arena[%off_u][] : memref<640xi8> to memref<4x8xf32>
  %z = memref.view %arena[%off_z][] : memref<640xi8> to memref<4x8xf64>
  scf.for %i = %c0 to %c4 step %c1 {
    scf.for %j = %c0 to %c8 step %c1 {
      %v = memref.load %x[%i, %j] : memref<4x8xf32>
      %v2 = arith.mulf %v, %two : f32
      memref.store %v2, %t[%i, %j] : memref<4x8xf32>
      %tv = memref.load %t[%i, %j] : memref<4x8xf32>
      %v3 = arith.addf %tv, %one : f32
      memref.store %v3, %u[%i, %j] : memref<4x8xf32>
      %e = arith.extf %v3 : f32 to f64
      memref.store %e, %z[%i, %j] : memref<4x8xf64>
    }
  }
  scf.for %i = %c0 to %c4 step %c1 {
    scf.for %j = %c0 to %c8 step %c1 {
      %a = memref.load %u[%i, %j] : memref<4x8xf32>
      %a3 = arith.mulf %a, %three : f32
      memref.store %a3, %w[%i, %j] : memref<4x8xf32>
    }
  }
  scf.for %i = %c0 to %c4 step %c1 {
    scf.for %j = %c0 to %c8 step %c1 {
      %a = memref.load %w[%i, %j] : memref<4x8xf32>
      %b = memref.load %t[%i, %j] : memref<4x8xf32>
      %e = memref.load %z[%i, %j] : memref<4x8xf64>
      %ef = arith.truncf %e : f64 to f32
      %s = arith.addf %a, %b : f32
      %s2 = arith.addf %s, %ef : f32
      memref.store %s2, %y[%i, %j] : memref<4x8xf32>
    }
  }
  func.return
}
"""


def arena_reference(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ARENA executed statement by statement on a NumPy byte arena: (y, final arena)."""
    arena = np.zeros(640, np.uint8)
    t, w, u = (arena[o : o + 128].view(np.float32).reshape(4, 8) for o in (0, 64, 256))
    z = arena[384:640].view(np.float64).reshape(4, 8)
    t[...] = x * np.float32(2)
    u[...] = t + np.float32(1)
    z[...] = u
    w[...] = u * np.float32(3)
    y = (w + t) + z.astype(np.float32)
    return y, arena


# Rank 0: out[] = sum(x) * scale[]
RANK0 = """
func.func @sum_scaled(%x: memref<5xf64>, %scale: memref<f64>, %out: memref<f64>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c5 = arith.constant 5 : index
  %zero = arith.constant 0.0 : f64
  %sum = scf.for %i = %c0 to %c5 step %c1 iter_args(%acc = %zero) -> (f64) {
    %v = memref.load %x[%i] : memref<5xf64>
    %n = arith.addf %acc, %v : f64
    scf.yield %n : f64
  }
  %s = memref.load %scale[] : memref<f64>
  %r = arith.mulf %sum, %s : f64
  memref.store %r, %out[] : memref<f64>
  func.return
}
"""

# (row name, MLIR op text using %p (positive), %s (signed), %y (in [0.5, 2]), numpy reference)
MATH_ROWS = [
    ("math.exp %s", lambda p, s, y: np.exp(s)),
    ("math.log %p", lambda p, s, y: np.log(p)),
    ("math.sqrt %p", lambda p, s, y: np.sqrt(p)),
    ("math.absf %s", lambda p, s, y: np.abs(s)),
    ("math.tanh %s", lambda p, s, y: np.tanh(s)),
    ("math.rsqrt %p", lambda p, s, y: 1.0 / np.sqrt(p)),
    ("math.powf %p, %y", lambda p, s, y: np.power(p, y)),
    ("math.floor %s", lambda p, s, y: np.floor(s)),
    ("math.ceil %s", lambda p, s, y: np.ceil(s)),
    ("math.log1p %p", lambda p, s, y: np.log1p(p)),
    ("math.expm1 %s", lambda p, s, y: np.expm1(s)),
    ("math.fma %p, %y, %p", lambda p, s, y: p * y + p),
]


def math_ir(t: str, n: int) -> str:
    rows = "".join(
        f"""
    %r{row} = {text} : {t}
    %row{row} = arith.constant {row} : index
    memref.store %r{row}, %out[%row{row}, %i] : memref<{len(MATH_ROWS)}x{n}x{t}>"""
        for row, (text, _) in enumerate(MATH_ROWS)
    )
    return f"""
func.func @math_{t}(%pos: memref<{n}x{t}>, %sgn: memref<{n}x{t}>, %ys: memref<{n}x{t}>,
                    %out: memref<{len(MATH_ROWS)}x{n}x{t}>) {{
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %cn = arith.constant {n} : index
  scf.for %i = %c0 to %cn step %c1 {{
    %p = memref.load %pos[%i] : memref<{n}x{t}>
    %s = memref.load %sgn[%i] : memref<{n}x{t}>
    %y = memref.load %ys[%i] : memref<{n}x{t}>
    {rows}
  }}
  func.return
}}
"""


CMPF_PREDICATES = (
    "false oeq ogt oge olt ole one ord ueq ugt uge ult ule une uno true".split()
)


def cmpf_ir(n: int) -> str:
    rows = "".join(
        f"""
    %p{row} = arith.cmpf {pred}, %a, %b : f64
    %s{row} = arith.select %p{row}, %one, %zero : f64
    %row{row} = arith.constant {row} : index
    memref.store %s{row}, %out[%row{row}, %i] : memref<16x{n}xf64>"""
        for row, pred in enumerate(CMPF_PREDICATES)
    )
    return f"""
func.func @cmpf_all(%as: memref<{n}xf64>, %bs: memref<{n}xf64>, %out: memref<16x{n}xf64>) {{
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %cn = arith.constant {n} : index
  %one = arith.constant 1.0 : f64
  %zero = arith.constant 0.0 : f64
  scf.for %i = %c0 to %cn step %c1 {{
    %a = memref.load %as[%i] : memref<{n}xf64>
    %b = memref.load %bs[%i] : memref<{n}xf64>
    {rows}
  }}
  func.return
}}
"""


# Constants (inf, -inf, nan, negative, i1), max/min, negf, casts, unsigned cmpi, scf.if
# without results, alloc/copy/dealloc, and an iter_args swap that must not clobber itself.
MISC = """
func.func @misc(%x: memref<6xf32>, %out: memref<12xf32>, %big: memref<2xf64>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %c3 = arith.constant 3 : index
  %c4 = arith.constant 4 : index
  %c5 = arith.constant 5 : index
  %c6 = arith.constant 6 : index
  %c7 = arith.constant 7 : index
  %c8 = arith.constant 8 : index
  %c9 = arith.constant 9 : index
  %c10 = arith.constant 10 : index
  %c11 = arith.constant 11 : index
  %inf = arith.constant 0x7F800000 : f32
  %ninf = arith.constant 0xFF800000 : f32
  %nan = arith.constant 0x7FF8000000000000 : f64
  %neg = arith.constant -2.5 : f32
  %true = arith.constant true
  %m1 = arith.constant -1 : i32
  %one32 = arith.constant 1 : i32
  %x0 = memref.load %x[%c0] : memref<6xf32>
  %x1 = memref.load %x[%c1] : memref<6xf32>
  %mx = arith.maximumf %x0, %x1 : f32
  memref.store %mx, %out[%c0] : memref<12xf32>
  %mn = arith.minimumf %x0, %x1 : f32
  memref.store %mn, %out[%c1] : memref<12xf32>
  %ng = arith.negf %neg : f32
  memref.store %ng, %out[%c2] : memref<12xf32>
  memref.store %inf, %out[%c3] : memref<12xf32>
  memref.store %ninf, %out[%c4] : memref<12xf32>
  %nanf = arith.truncf %nan : f64 to f32
  memref.store %nanf, %out[%c5] : memref<12xf32>
  %ult = arith.cmpi ult, %one32, %m1 : i32
  %sel = arith.select %ult, %x0, %x1 : f32
  memref.store %sel, %out[%c6] : memref<12xf32>
  %t = arith.fptosi %neg : f32 to i32
  %tf = arith.sitofp %t : i32 to f32
  memref.store %tf, %out[%c7] : memref<12xf32>
  scf.if %true {
    memref.store %x1, %out[%c8] : memref<12xf32>
  }
  %tmp = memref.alloc() : memref<6xf32>
  scf.for %i = %c0 to %c6 step %c1 {
    %v = memref.load %x[%i] : memref<6xf32>
    %w = arith.mulf %v, %neg : f32
    memref.store %w, %tmp[%i] : memref<6xf32>
  }
  %copy = memref.alloc() : memref<6xf32>
  "memref.copy"(%tmp, %copy) : (memref<6xf32>, memref<6xf32>) -> ()
  memref.dealloc %tmp : memref<6xf32>
  %y5 = memref.load %copy[%c5] : memref<6xf32>
  memref.dealloc %copy : memref<6xf32>
  memref.store %y5, %out[%c9] : memref<12xf32>
  %sw:2 = scf.for %i = %c0 to %c3 step %c1 iter_args(%p = %x0, %q = %x1) -> (f32, f32) {
    scf.yield %q, %p : f32, f32
  }
  memref.store %sw#0, %out[%c10] : memref<12xf32>
  memref.store %sw#1, %out[%c11] : memref<12xf32>
  %bigc = arith.constant 1.0e+300 : f64
  %small = arith.constant 1.0e-300 : f64
  memref.store %bigc, %big[%c0] : memref<2xf64>
  memref.store %small, %big[%c1] : memref<2xf64>
  func.return
}
"""


# --------------------------------------------------------------------------------------------
# Numerics
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("t", ["f32", "f64"])
def test_matmul_iter_args(t: str) -> None:
    m, k, n = 5, 8, 7
    fn = build(matmul_ir(t, m, k, n))[f"matmul_{t}"]
    rng = np.random.default_rng(0)
    a = rng.uniform(0.5, 1.5, (m, k)).astype(NP[t])
    b = rng.uniform(0.5, 1.5, (k, n)).astype(NP[t])
    c = np.zeros((m, n), NP[t])
    fn(a, b, c)
    ref = a.astype(np.float64) @ b.astype(np.float64)
    np.testing.assert_allclose(c, ref, rtol=RTOL[t], atol=0)


def test_guarded_out_of_bounds_read() -> None:
    fn = build(GUARDED)["shift_sum"]
    x = np.arange(1, 11, dtype=np.float32)
    out = np.full(10, np.nan, np.float32)
    fn(x, out)
    padded = np.pad(x, 1)
    np.testing.assert_array_equal(out, padded[:-2] + padded[2:])


def _c_rem(a: int, b: int) -> int:
    return int(math.fmod(a, b))


def _c_div(a: int, b: int) -> int:
    return int(a / b)


INT_DIV_REFERENCE = {
    "floordivsi": lambda a, b: a // b,
    "remsi": _c_rem,  # C's %: sign of the numerator (unlike Python's %)
    "ceildivsi": lambda a, b: -(-a // b),
    "divsi": _c_div,
}


@pytest.mark.parametrize("divisor", [3, -3, 2])
@pytest.mark.parametrize("t", ["index", "i32", "i64"])
def test_integer_division_negative_numerators(t: str, divisor: int) -> None:
    fns = build(int_div_ir(t, divisor))
    (fn,) = fns.values()
    out = np.zeros((4, 15), np.float64)
    fn(out)
    numerators = range(-7, 8)
    for row, op in enumerate(INT_DIV_OPS):
        expected = [INT_DIV_REFERENCE[op](a, divisor) for a in numerators]
        assert out[row].tolist() == expected, op
    assert [a // divisor for a in numerators] == out[0].tolist()  # Python's floor semantics
    assert [a % divisor for a in numerators] != out[1].tolist()  # remsi is not Python's %


def test_arena_views() -> None:
    module = parse(ARENA)
    source = emit_c(module)
    assert "float* restrict u_" in source and "double* restrict z_" in source
    assert "float* t_" in source and "float* w_" in source  # overlapping: no restrict
    assert "const size_t arena_fn_arena_bytes = 640;" in source
    assert "uint8_t* arena_" in source and "const float* restrict x_" in source
    fn = compile_module(module)["arena_fn"]
    assert fn.arena_bytes == 640
    x = np.random.default_rng(1).standard_normal((4, 8)).astype(np.float32)
    y_ref, arena_ref = arena_reference(x)
    y = np.zeros_like(x)
    fn(x, y)  # with an arena owned by the wrapper
    np.testing.assert_array_equal(y, y_ref)
    arena = runtime.aligned_arena(640)
    arena[...] = 0  # bytes 192..255 are never written
    y2 = np.zeros_like(x)
    fn(x, y2, arena=arena)
    np.testing.assert_array_equal(y2, y_ref)
    np.testing.assert_array_equal(arena, arena_ref)


def test_rank0_memref() -> None:
    fn = build(RANK0)["sum_scaled"]
    x = np.array([1.5, 2.25, -3.0, 4.0, 0.125])
    scale = np.array(0.5)
    out = np.array(0.0)
    fn(x, scale, out)
    np.testing.assert_allclose(out, x.sum() * 0.5, rtol=1e-12)


@pytest.mark.parametrize("t", ["f32", "f64"])
def test_math_functions(t: str) -> None:
    n = 33
    module = parse(math_ir(t, n))
    source = emit_c(module)
    names = ("exp", "log", "sqrt", "fabs", "tanh", "pow", "floor", "ceil", "log1p", "expm1", "fma")
    for name in names:
        if t == "f32":
            assert f"{name}f(" in source, name
        else:
            assert f"{name}(" in source and f"{name}f(" not in source, name
    fn = compile_module(module)[f"math_{t}"]
    rng = np.random.default_rng(2)
    p = rng.uniform(0.1, 3.0, n).astype(NP[t])
    s = rng.uniform(-3.0, 3.0, n).astype(NP[t])
    s[:4] = [-2.0, -0.5, 0.0, 1.0]  # exact floor/ceil edge cases
    y = rng.uniform(0.5, 2.0, n).astype(NP[t])
    out = np.zeros((len(MATH_ROWS), n), NP[t])
    fn(p, s, y, out)
    p64, s64, y64 = (v.astype(np.float64) for v in (p, s, y))
    for row, (text, ref) in enumerate(MATH_ROWS):
        np.testing.assert_allclose(out[row], ref(p64, s64, y64), rtol=RTOL[t], atol=0, err_msg=text)


def test_cmpf_all_predicates() -> None:
    nan, inf = np.nan, np.inf
    a = np.array([1.0, 2.0, 1.0, nan, 1.0, nan, inf, -inf, 0.0, -0.0])
    b = np.array([2.0, 1.0, 1.0, 1.0, nan, nan, inf, inf, -0.0, 0.0])
    fn = build(cmpf_ir(len(a)))["cmpf_all"]
    out = np.zeros((16, len(a)))
    fn(a, b, out)
    uno = np.isnan(a) | np.isnan(b)
    ordered = {
        "oeq": a == b,
        "ogt": a > b,
        "oge": a >= b,
        "olt": a < b,
        "ole": a <= b,
        "one": ~uno & (a != b),
    }
    expected = {"false": np.zeros_like(uno), "true": np.ones_like(uno), "ord": ~uno, "uno": uno}
    expected.update(ordered)
    expected.update({"u" + name[1:]: uno | value for name, value in ordered.items()})
    for row, pred in enumerate(CMPF_PREDICATES):
        assert out[row].tolist() == expected[pred].astype(np.float64).tolist(), pred


def test_constants_casts_alloc_copy_and_swap() -> None:
    module = parse(MISC)
    fns = compile_module(module)
    x = np.array([3.0, -1.0, 2.0, 4.0, 5.0, 6.0], np.float32)
    out = np.zeros(12, np.float32)
    big = np.zeros(2)
    fns["misc"](x, out, big)
    assert out[0] == 3.0 and out[1] == -1.0 and out[2] == 2.5
    assert out[3] == np.inf and out[4] == -np.inf and np.isnan(out[5])
    assert out[6] == 3.0  # 1 <u 0xFFFFFFFF
    assert out[7] == -2.0  # fptosi truncates
    assert out[8] == -1.0 and out[9] == np.float32(6.0 * -2.5)
    assert (out[10], out[11]) == (-1.0, 3.0)  # three swaps
    assert big.tolist() == [1e300, 1e-300]


# --------------------------------------------------------------------------------------------
# Emitter properties
# --------------------------------------------------------------------------------------------

ALL_SNIPPETS = [
    matmul_ir("f32", 3, 4, 5),
    matmul_ir("f64", 3, 4, 5),
    GUARDED,
    int_div_ir("index", -3),
    int_div_ir("i32", 3),
    ARENA,
    RANK0,
    math_ir("f32", 4),
    math_ir("f64", 4),
    cmpf_ir(4),
    MISC,
]


def test_output_is_deterministic_and_warning_free() -> None:
    text = "\n".join(ALL_SNIPPETS)
    source = emit_c(parse(text))
    assert source == emit_c(parse(text))
    flags = ("-std=c99", "-O2", "-fopenmp", "-Wall", "-Werror", "-Wno-unused-variable", "-fPIC", "-shared")
    compile_c(source, flags=flags)  # raises RuntimeError with the diagnostics otherwise


def test_target_api() -> None:
    module = parse(RANK0)
    out = io.StringIO()
    CTarget().emit(context(), module, out)
    assert out.getvalue() == emit_c(module)
    assert "restrict" in out.getvalue()
    plain = io.StringIO()
    CTarget(restrict=False).emit(context(), module, plain)
    assert "restrict" not in plain.getvalue()
    assert CTarget.name == "c"


@pytest.mark.parametrize(
    ("snippet", "culprit"),
    [
        ("%r = math.sin %x : f32", "math.sin"),
        ("%r = arith.shrui %n, %n : i32", "arith.shrui"),
    ],
)
def test_unsupported_op_is_named(snippet: str, culprit: str) -> None:
    text = f"""
func.func @bad(%m: memref<f32>) {{
  %x = memref.load %m[] : memref<f32>
  %n = arith.constant 1 : i32
  {snippet}
  func.return
}}
"""
    with pytest.raises(CEmitError, match=culprit):
        emit_c(parse(text))
    assert issubclass(CEmitError, NotImplementedError)


def test_dynamic_memref_is_rejected() -> None:
    text = "func.func @dyn(%m: memref<?xf32>) {\n  func.return\n}"
    with pytest.raises(CEmitError, match="static"):
        emit_c(parse(text))


# --------------------------------------------------------------------------------------------
# Runtime: wrapper checks and the compile cache
# --------------------------------------------------------------------------------------------


def test_wrapper_validates_arrays() -> None:
    fn = build(matmul_ir("f32", 2, 3, 4))["matmul_f32"]
    a, b, c = np.ones((2, 3), np.float32), np.ones((3, 4), np.float32), np.zeros((2, 4), np.float32)
    with pytest.raises(ValueError, match="dtype"):
        fn(a.astype(np.float64), b, c)
    with pytest.raises(ValueError, match="shape"):
        fn(a, b.T.copy(), c)
    with pytest.raises(ValueError, match="contiguous"):
        fn(np.ones((3, 2), np.float32).T, b, c)
    with pytest.raises(ValueError, match="expected 3 arrays"):
        fn(a, b)
    with pytest.raises(ValueError, match="no arena"):
        fn(a, b, c, arena=np.zeros(16, np.uint8))
    with pytest.raises(ValueError, match="overlaps"):
        shared = np.zeros(8, np.float32)
        fn(shared[:6].reshape(2, 3), b, shared.reshape(2, 4))
    fn(a, b, c)
    np.testing.assert_array_equal(c, np.full((2, 4), 3.0, np.float32))


def test_arena_is_checked() -> None:
    fn = build(ARENA)["arena_fn"]
    x, y = np.ones((4, 8), np.float32), np.zeros((4, 8), np.float32)
    with pytest.raises(ValueError, match="640 bytes"):
        fn(x, y, arena=runtime.aligned_arena(100))
    with pytest.raises(ValueError, match="aligned"):
        fn(x, y, arena=runtime.aligned_arena(700)[1:])


def test_cache_hit_does_not_invoke_compiler(monkeypatch: pytest.MonkeyPatch) -> None:
    source = emit_c(parse(RANK0)) + "\n/* cache-hit test */\n"
    first = compile_c(source)

    def no_compiler(*args: object, **kwargs: object) -> None:
        raise AssertionError("the compiler was invoked on a cache hit")

    monkeypatch.setattr(subprocess, "run", no_compiler)
    monkeypatch.setattr(subprocess, "Popen", no_compiler)
    assert compile_c(source) == first
    assert load_library(first) is load_library(str(first))


def test_flags_are_part_of_the_key() -> None:
    source = emit_c(parse(RANK0))
    assert compile_c(source) != compile_c(source, flags=(*runtime.DEFAULT_FLAGS, "-g"))


def test_compiler_error_raises_with_stderr() -> None:
    with pytest.raises(RuntimeError, match="undeclared_thing"):
        compile_c("void f(void) { undeclared_thing = 1; }\n")
    leftovers = [p for p in cache_dir().iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_concurrent_compiles_from_two_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLC_CACHE_DIR", str(tmp_path))  # empty cache: both processes miss
    source = emit_c(parse(RANK0))
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        paths = pool.map(compile_c, [source, source])
    assert paths[0] == paths[1] and paths[0].parent == tmp_path
    assert [p for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    (op,) = parse(RANK0).ops
    assert isinstance(op, FuncOp)
    fn = CFunction.from_func(load_library(paths[0]), op)
    out = np.array(0.0)
    fn(np.ones(5), np.array(2.0), out)
    assert out == 10.0


SPLIT_MODEL = """model m {
  input x: f64[2, 7, 7, 3]
  input y: f64[2, 5]
  param w: f64[3, 3, 3, 4] = glorot
  param v: f64[36, 5] = glorot
  h = relu(conv2d(x, w, stride=2, padding=same))
  loss = mse(dense(flatten(maxpool2d(h, size=2, stride=1)), v), y)
  output loss
}
"""


def test_a_function_over_several_translation_units_gives_the_same_bits() -> None:
    """A training step whose loop nests are outlined into 1, 2 and 3 translation units (compiled
    in parallel processes, linked into one library) computes the bits of the function as one;
    the outlined nests are not exported."""
    from mlc.backends.c.emitter import CPrinter, translation_units
    from mlc.passes.pipelines import training_pipeline
    from mlc.runtime.lowering import load_module, make_context, run_pipeline

    ctx = make_context()
    module = load_module(SPLIT_MODEL, ctx)
    run_pipeline(module, training_pipeline("adam"), ctx, keep="m_step")
    (step,) = module.ops
    assert isinstance(step, FuncOp)
    results = [_run_step(step, load_library(compile_c(emit_c(module))))]  # below SPLIT_OPS: one function
    assert "nest0" not in emit_c(module)
    for units in (1, 2, 3):
        out = io.StringIO()
        CPrinter(stream=out, units=units, split_ops=50).print_module(module)
        assert len(translation_units(out.getvalue())) == units
        library = load_library(compile_c(out.getvalue()))
        assert "mlc_m_step_nest0" in out.getvalue() and not hasattr(library, "mlc_m_step_nest0")
        results.append(_run_step(step, library))
    for arrays in results[1:]:
        for got, want in zip(arrays, results[0]):
            np.testing.assert_array_equal(got, want)


def _run_step(step: FuncOp, library: object) -> list[np.ndarray]:
    fn = CFunction.from_func(library, step)  # type: ignore[arg-type]
    rng = np.random.default_rng(3)
    arrays = [np.asarray(rng.normal(size=a.shape) * 0.1, dtype=a.dtype) for a in fn.args]
    fn(*arrays)
    return arrays
