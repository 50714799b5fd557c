"""Schedules change how a program runs, never what it computes.

Every comparison here is bitwise (`np.array_equal`), not within a tolerance: a schedule keeps
each sum's order of accumulation and each scalar function's operations (`mlc/schedule.py`), so
any difference is a bug. Compared:

- random models (`random_programs.py`) and every example, with their gradients: no schedule,
  the automatic one and random legal ones (`random_schedules.py`);
- every example's training step after a few Adam steps: no schedule and the automatic one;
- 1 and 2 threads on programs with parallel loops;
- mlc's own vector `expf`/`logf`/`tanhf`/`erff` and their scalar forms, on ~100k values each.
"""

from __future__ import annotations

import ctypes
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import scipy.special
from random_programs import generate
from random_schedules import set_random_schedules
from xdsl.dialects import func
from xdsl.ir.affine import AffineExpr, AffineMap

import mlc
from mlc.api import build_program, load_module, make_context, run_pipeline
from mlc.backends.c import mathlib
from mlc.backends.c.runtime import DEFAULT_FLAGS, load_compiled, set_num_threads
from mlc.loops.affine import simplify_within
from mlc.loops.schedule import ScheduleError, schedule_from_text
from mlc.passes.pipelines import LOWER_TO_C, SCHEDULE, training_pipeline
from mlc.trainer import Trainer

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
DIFFERENTIATE = "mlc-lower-graph,mlc-autodiff{wrt=all},mlc-scatter-to-gather"


def _unscheduled(pipeline: str) -> str:
    return pipeline.replace(f"{SCHEDULE},", "")


def _arrays(specs: dict[str, tuple[tuple[int, ...], np.dtype]], seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {k: rng.uniform(-1.0, 1.0, shape).astype(dtype) for k, (shape, dtype) in specs.items()}


def _grad_module(text: str, schedules: str | int | None, vector_bytes: int = 0):
    """The model and its gradients at the index level, with no schedules (None), the automatic
    ones ("auto", for vectors of `vector_bytes`, by default the host's), or random ones (a
    seed); then lowered like the API does."""
    ctx = make_context()
    module = load_module(text, ctx)
    run_pipeline(module, DIFFERENTIATE, ctx)
    if schedules == "auto":
        run_pipeline(module, f"{SCHEDULE}{{vector_bytes={vector_bytes}}}", ctx)
    elif isinstance(schedules, int):
        set_random_schedules(module, schedules)
    for op in [o for o in module.ops if not (isinstance(o, func.FuncOp) and o.sym_name.data.endswith("_grad"))]:
        module.body.block.detach_op(op)
    return module


RANDOM_PROGRAMS = int(os.environ.get("MLC_SCHEDULE_PROGRAMS", "16"))
"""Random programs whose gradients run under random schedules: a fixed-seed sample (seeds
0..15); `MLC_SCHEDULE_PROGRAMS=200 pytest tests/test_schedules.py` sweeps further."""


@pytest.mark.parametrize("seed", range(RANDOM_PROGRAMS))
def test_random_schedules_keep_values_and_gradients(seed: int) -> None:
    model = generate(seed, "f32" if seed % 2 else "f64")
    results = []
    for schedules in (None, "auto", 1000 + seed, 2000 + seed):
        program = build_program(_grad_module(model.text, schedules), None, LOWER_TO_C)
        arrays = _arrays({s.name: (s.shape, s.dtype) for s in program.signature.args}, seed)
        results.append(program._call(arrays))  # noqa: SLF001
    for other in results[1:]:
        for name, value in results[0].items():
            assert np.array_equal(value, other[name], equal_nan=True), (seed, name)


@pytest.mark.parametrize("example", sorted(p.stem for p in EXAMPLES.glob("*.mlc")))
def test_examples_gradients_under_random_schedules(example: str) -> None:
    """Every example's loss and gradients: no schedule and a random one (the automatic ones:
    `test_examples_train_the_same_with_and_without_schedules`, whose step holds the gradient)."""
    text = (EXAMPLES / f"{example}.mlc").read_text()
    results = []
    for schedules in (None, sum(map(ord, example))):
        program = build_program(_grad_module(text, schedules), None, LOWER_TO_C)
        arrays = _arrays({s.name: (s.shape, s.dtype) for s in program.signature.args}, 3)
        results.append(program._call(arrays))  # noqa: SLF001
    for other in results[1:]:
        assert all(np.array_equal(results[0][k], other[k], equal_nan=True) for k in results[0])


@pytest.mark.parametrize("example", sorted(p.stem for p in EXAMPLES.glob("*.mlc")))
def test_examples_train_the_same_with_and_without_schedules(example: str) -> None:
    text = (EXAMPLES / f"{example}.mlc").read_text()
    prog = mlc.compile(text)
    inputs = {k: v for k, v in _arrays(prog.inputs, 1).items()}
    runs = []
    for pipeline in (training_pipeline("adam"), _unscheduled(training_pipeline("adam"))):
        trainer = Trainer(build_program(text, None, pipeline, "_step"), "adam", {"lr": 1e-2})
        params = prog.init_params(0)
        outputs = [trainer.step(params, inputs) for _ in range(3)]
        runs.append((outputs, params))
    (outs_a, params_a), (outs_b, params_b) = runs
    for a, b in zip(outs_a, outs_b):
        assert all(np.array_equal(a[k], b[k]) for k in a)
    assert all(np.array_equal(params_a[k], params_b[k]) for k in params_a)


@pytest.mark.parametrize(("dtype", "vector_bytes", "helpers"), [
    ("f32", 64, ("mlc_load_prefix_v8f32", "mlc_store_prefix_v16f32")),
    ("f64", 32, ("mlc_load_prefix_v4f64", "mlc_store_prefix_v4f64")),
    ("f32", 16, ("mlc_load_prefix_v4f32", "mlc_store_prefix_v4f32")),
])
def test_partial_vectors_give_the_same_bits_on_every_x86(dtype: str, vector_bytes: int, helpers: tuple[str, ...],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """LeNet-5's 6-channel convolutions and 10-wide output layer run partial vectors (6 and 10
    lanes active: masked loads and stores). Compiled for AVX-512 (masked moves), for AVX without
    AVX-512 (`vmaskmov`) and for SSE only (the `memcpy` fallback), the loss and every gradient
    are the bits of the unscheduled scalar program. The schedules are made for the given vector
    width on any host (a build for an ISA the host lacks takes the next one down: the C is
    correct on every machine)."""
    text = (EXAMPLES / "lenet5.mlc").read_text().replace("[32,", "[2,").replace("f32", dtype)
    arrays = None
    results = []
    lowering = LOWER_TO_C.replace("mlc-lower-loops", f"mlc-lower-loops{{vector_bytes={vector_bytes}}}")
    for schedules, flags in ((None, DEFAULT_FLAGS), ("auto", DEFAULT_FLAGS), ("auto", (*DEFAULT_FLAGS, "-mno-avx512f")),
                             ("auto", (*DEFAULT_FLAGS, "-mno-avx"))):
        monkeypatch.setattr(mlc.api, "load_compiled", lambda source, flags=flags: load_compiled(source, flags=flags))
        program = build_program(_grad_module(text, schedules, vector_bytes=vector_bytes), None, lowering)
        if schedules == "auto":
            assert all(helper in program.c_source for helper in helpers)
        arrays = arrays or _arrays({s.name: (s.shape, s.dtype) for s in program.signature.args}, 5)
        results.append(program._call(arrays))  # noqa: SLF001
    for other in results[1:]:
        assert all(np.array_equal(results[0][k], other[k]) for k in results[0])


ONE_CHANNEL = """
model one_channel {
  input  x: f32[3, 9, 10, 1]
  input  t: f32[3, 9, 10, 1]
  param  w: f32[3, 3, 1, 1]
  param  b: f32[1]
  y = sigmoid(conv2d(x, w, padding=same) + b)
  loss = bce(y, t) + bce_logits(x, t)
  output loss, y
}
"""


@pytest.mark.parametrize("vector_bytes", [16, 32])
def test_one_channel_images_and_loss_terms_run_in_vectors(vector_bytes: int) -> None:
    """A one-channel NHWC image vectorizes along its width (its vectors load and store consecutive
    elements across the one-element channel dim; 10 columns: full vectors and a partial one),
    and a loss's terms, which call `log` and `exp`, run in vectors before their scalar sum. The
    loss and the gradients are the unscheduled program's bits."""
    lowering = LOWER_TO_C.replace("mlc-lower-loops", f"mlc-lower-loops{{vector_bytes={vector_bytes}}}")
    results = []
    for schedules in (None, "auto"):
        module = _grad_module(ONE_CHANNEL, schedules, vector_bytes=vector_bytes)
        if schedules == "auto":
            assert len(re.findall(r"order\(d0, d1, d3, d2[^)]*\), vectorize\(d2", str(module))) >= 3
        program = build_program(module, None, lowering)
        results.append(program._call(_arrays({s.name: (s.shape, s.dtype) for s in program.signature.args}, 7)))  # noqa: SLF001
    assert all(np.array_equal(results[0][k], results[1][k]) for k in results[0])


def test_one_and_two_threads_give_the_same_bits() -> None:
    text = (EXAMPLES / "digits_cnn.mlc").read_text().replace("[32,", "[64,")
    prog = mlc.compile(text)
    grad = prog.grad_program()
    assert "#pragma omp parallel for" in grad.c_source
    params, inputs = prog.init_params(0), _arrays(prog.inputs, 2)
    if "y" in inputs:
        inputs["y"] = np.eye(10, dtype=np.float32)[np.arange(inputs["y"].shape[0]) % 10]
    results = []
    for threads in (1, 2, 1):
        set_num_threads(threads)
        results.append(prog.grad(params, inputs))
    set_num_threads(2)
    for outs, grads in results[1:]:
        assert all(np.array_equal(outs[k], results[0][0][k]) for k in outs)
        assert all(np.array_equal(grads[k], results[0][1][k]) for k in grads)


def test_vector_math_is_the_scalar_math(tmp_path: Path) -> None:
    """mlc's f32 exp, log, tanh and erf: each lane of the vector form gives the scalar form's bits,
    and both are within 2 ulp (erf: 1 ulp) of the correctly rounded value (float64 libm or SciPy,
    rounded)."""
    parts = ["#include <stdint.h>", "#include <string.h>", "#include <math.h>",
             "typedef float mlc_v16f32 __attribute__((vector_size(64)));",
             "typedef int32_t mlc_v16i32 __attribute__((vector_size(64)));", mathlib.SCALAR_BITS]
    for flavour in (mathlib.Flavour(1), mathlib.Flavour(16)):
        parts += [mathlib.expf(flavour), mathlib.logf(flavour), mathlib.tanhf(flavour), mathlib.erff(flavour)]
    for name in ("exp", "log", "tanh", "erf"):
        parts.append(f"""void run_{name}(const float* x, float* scalar, float* vector, int n) {{
  for (int i = 0; i < n; i++) scalar[i] = mlc_{name}f(x[i]);
  for (int i = 0; i < n; i += 16) {{ mlc_v16f32 v; memcpy(&v, x + i, sizeof v);
    v = mlc_{name}f_v16f32(v); memcpy(vector + i, &v, sizeof v); }}
}}""")
    source, library = tmp_path / "m.c", tmp_path / "m.so"
    source.write_text("\n".join(parts))
    subprocess.run(["cc", "-O2", "-march=native", "-ffp-contract=off", "-std=c99", "-fPIC", "-shared", str(source),
                    "-o", str(library)], check=True)
    lib = ctypes.CDLL(str(library))
    rng = np.random.default_rng(0)
    special = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -1e-45, 1e-38, 88.7, 88.8, -103.9, -104.0, 0.6249, 0.625,
               0.75, -0.75, 1.5, -1.5, 3.9, 4.0, -4.0]
    ranges = {"exp": (-110.0, 95.0), "log": (0.0, 1e30), "tanh": (-12.0, 12.0), "erf": (-6.0, 6.0)}
    exact_of = {"exp": np.exp, "log": np.log, "tanh": np.tanh, "erf": scipy.special.erf}
    bound = {"exp": 2.0, "log": 2.0, "tanh": 2.0, "erf": 1.0}
    for name, (lo, hi) in ranges.items():
        x = np.concatenate([rng.uniform(lo, hi, 50_000), np.exp(rng.uniform(-80, 60, 50_000)) * rng.choice([-1, 1], 50_000),
                            special, [0.0] * 2]).astype(np.float32)
        x = x[: len(x) // 16 * 16]
        scalar, vector = np.empty_like(x), np.empty_like(x)
        getattr(lib, f"run_{name}")(*(a.ctypes.data_as(ctypes.c_void_p) for a in (x, scalar, vector)), ctypes.c_int(len(x)))
        assert np.array_equal(scalar.view(np.int32), vector.view(np.int32)), name
        with np.errstate(all="ignore"):
            exact = exact_of[name](x.astype(np.float64))
        finite = np.isfinite(exact) & (np.abs(exact) > 1.2e-38) & (np.abs(exact) < 3e38)
        ulp = np.abs(np.spacing(exact[finite].astype(np.float32))).astype(np.float64)  # negative for negative values
        assert np.max(np.abs(scalar[finite] - exact[finite]) / ulp) <= bound[name], name
        assert np.array_equal(np.isnan(scalar), np.isnan(exact)), name
        inf = np.isinf(exact)
        assert np.array_equal(scalar[inf], exact[inf].astype(np.float32)), name


def test_parallel_loops_do_not_race(tmp_path: Path) -> None:
    """`data/predcom_race.c` is mlc's C for a random model's gradient whose schedule has a parallel
    loop storing two rows per iteration. Compiled with GCC 12.2's predictive commoning, some
    threads stored stale values into other threads' elements (1 call in 80 on 2 threads); with
    the runtime's flags every call gives the same bits."""
    source = Path(__file__).with_name("data") / "predcom_race.c"
    driver = tmp_path / "driver.c"
    driver.write_text("""#include <stdio.h>
#include <string.h>
#include <stdint.h>
void random_182_grad(const double* x, const double* b, double* loss, double* gx, double* gb, uint8_t* arena);
static uint8_t arena[4096] __attribute__((aligned(64)));
int main(void) {
  double x[36], b[2] = {0.5, -0.2}, loss, gx[36], first[36], gb[2];
  for (int i = 0; i < 36; i++) x[i] = (i % 7) * 0.1;
  random_182_grad(x, b, &loss, first, gb, arena);
  int bad = 0;
  for (int r = 0; r < 20000; r++) {
    random_182_grad(x, b, &loss, gx, gb, arena);
    bad += memcmp(gx, first, sizeof gx) != 0;
  }
  printf("%d\\n", bad);
  return 0;
}""")
    flags = [f for f in DEFAULT_FLAGS if f not in ("-shared", "-fPIC")]
    binary = tmp_path / "race"
    subprocess.run(["cc", *flags, str(source), str(driver), "-o", str(binary), "-lm"], check=True)
    result = subprocess.run([str(binary)], capture_output=True, text=True, check=True,
                            env={"OMP_NUM_THREADS": "2"})
    assert result.stdout.strip() == "0"


def test_divisions_resolve_where_the_ranges_keep_them_in_one_block() -> None:
    """`simplify_within` on random `(c0 d0 + c1 d1 + c2 d2 + k) floordiv/mod D` agrees with the
    expression at every point of random small boxes, and drops the division where a vector's
    lanes stay in one block: `(64 d0 + d1) floordiv 16` with d1 in [16, 31] is `4 d0 + 1`."""
    rng = np.random.default_rng(0)
    d = [AffineExpr.dimension(k) for k in range(3)]
    for _ in range(400):
        coeffs = rng.choice([0, 1, 2, 3, 4, 8, 16, 32, 64, -16], 3)
        form = d[0] * int(coeffs[0]) + d[1] * int(coeffs[1]) + d[2] * int(coeffs[2]) + int(rng.integers(-20, 40))
        lows = rng.integers(-5, 40, 3)
        ranges = [(int(lo), int(lo + rng.choice([0, 1, 3, 7, 15]))) for lo in lows]
        divisor = int(rng.choice([2, 3, 4, 8, 12, 16, 64]))
        for expr in (form // divisor, form % divisor):
            simple = simplify_within(expr, ranges)
            grid = np.stack(np.meshgrid(*[np.arange(lo, hi + 1) for lo, hi in ranges], indexing="ij"), -1).reshape(-1, 3)
            for point in grid[rng.permutation(len(grid))[:40]]:
                at = [int(v) for v in point]
                assert AffineMap(3, 0, (expr,)).eval(at, []) == AffineMap(3, 0, (simple,)).eval(at, []), (expr, simple, at)
    assert str(simplify_within((d[0] * 64 + d[1]) // 16, [(0, 3), (16, 31), (0, 0)])) == "((d0 * 4) + 1)"
    assert str(simplify_within((d[0] * 64 + d[1]) % 128, [(0, 3), (16, 31), (0, 0)])) == "(((d0 mod 2) * 64) + d1)"


def test_vectorize_names_its_lanes() -> None:
    schedule = schedule_from_text("split(d3, 16), vectorize(d3i, 4)")
    assert (schedule.vectorize, schedule.lanes) == ("d3i", 4) and str(schedule) == "split(d3, 16), vectorize(d3i, 4)"
    assert schedule_from_text("vectorize(d1)").lanes == 0
    with pytest.raises(ScheduleError, match="3 lanes"):
        schedule_from_text("vectorize(d1, 3)")
