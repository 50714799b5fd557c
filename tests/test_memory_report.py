"""The memory planner's report (`mlc.memory`), and an AddressSanitizer proof that the arena it
sizes is enough: generated training steps run under ASan with every buffer malloc'd at its exact
size and the arena at exactly `mlc.arena_bytes`."""

from __future__ import annotations

import math
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from xdsl.dialects import arith, func, memref
from xdsl.dialects.builtin import IntegerAttr, MemRefType, ModuleOp

import mlc
from mlc.api import load_module, make_context, run_pipeline, select_model
from mlc.backends.c.emitter import c_type, emit_c
from mlc.backends.c.runtime import aligned_arena, compiler_command
from mlc.passes.pipelines import checkpoint_pass, training_pipeline
from mlc.passes.plan_memory import REPORT_KEYS, byte_size, live_buffers, memory_report, saved_activations
from mlc.signature import ModelSignature

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
MLP = EXAMPLES / "mlp.mlc"
DIGITS_CNN = EXAMPLES / "digits_cnn.mlc"

STRIDED_CNN = """model strided_cnn {
  input  x: f32[2, 7, 7, 3]
  input  y: f32[2, 4]
  param  w1: f32[3, 3, 3, 4] = glorot
  param  b1: f32[4] = zeros
  param  w2: f32[3, 3, 4, 6] = glorot
  param  w3: f32[3, 3, 6, 8] = glorot
  param  w4: f32[32, 4] = glorot
  h = relu(conv2d(x, w1, padding=same) + b1)                  # [2, 7, 7, 4]
  h = tanh(conv2d(h, w2, stride=2, padding=same))              # [2, 4, 4, 6]: strided, padded
  h = relu(conv2d(h, w3, padding=(2, 1, 2, 1), dilation=2))    # [2, 3, 3, 8]: dilated, asymmetric
  h = maxpool2d(h, size=2, stride=1)                           # [2, 2, 2, 8]: overlapping windows
  logits = dense(flatten(h), w4)
  loss = softmax_cross_entropy(logits, y)
  output loss, logits
}
"""
"""Strides, dilation and asymmetric padding: the adjoints' gathers guard their reads."""


def mlc_opt(*args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("mlc-opt")
    cmd = str(exe) if exe.exists() else shutil.which("mlc-opt")
    assert cmd is not None, "mlc-opt is not installed in this environment (`make venv`)"
    return subprocess.run([cmd, *args], check=False, capture_output=True, text=True, timeout=300)


def nbytes(shape: tuple[int, ...], dtype: np.dtype) -> int:
    return math.prod(shape) * dtype.itemsize


def lowered_step(source: str | Path, optimizer: str = "adam", plan: bool = True, checkpoint: str = "") -> func.FuncOp:
    """The loop-level `@<model>_step` alone in its module (as the API compiles it)."""
    pipeline = training_pipeline(optimizer, checkpoint=checkpoint)
    if not plan:
        pipeline = pipeline.removesuffix(",mlc-plan-memory")
        assert not pipeline.endswith("mlc-plan-memory")
    ctx = make_context()
    module = load_module(source, ctx)
    name = select_model(module, None).sym_name.data
    run_pipeline(module, pipeline, ctx)
    step = next(op for op in module.ops if isinstance(op, func.FuncOp) and op.sym_name.data == f"{name}_step")
    for op in list(module.ops):
        if op is not step:
            module.body.block.detach_op(op)
    return step


# ---------------------------------------------------------------------------------------------
# The report's numbers
# ---------------------------------------------------------------------------------------------
def test_mlp_adam_step_report_by_hand():
    prog = mlc.compile(MLP)
    step = prog.trainer("adam").program
    report = step.memory_report()
    assert list(report) == list(REPORT_KEYS)

    params = sum(nbytes(shape, dtype) for shape, dtype in prog.params.values())
    assert params == 4 * (64 * 128 + 128 + 128 * 64 + 64 + 64 * 10 + 10) == 68904
    assert report["params"] == params
    assert report["optimizer_state"] == 2 * params  # Adam: m and v per parameter
    assert report["inputs"] == 4 * (32 * 64 + 32 * 10) + 4 * 6  # x, y and six f32 hyper-parameters
    assert report["outputs"] == 4 + 4 * 32 * 10  # loss, logits: p, m and v are updated in place
    assert step.signature.outputs == tuple(s for s in step.signature.outputs if not s.name.startswith("new."))
    assert report["total_peak"] == sum(report[k] for k in ("params", "optimizer_state", "inputs", "outputs", "arena"))
    assert report["arena"] == step.arena_bytes > 0
    assert report["peak_saved"] + report["peak_temporaries"] <= report["arena"]

    # Saved activations include what the backward must read: the relu outputs h1 [32, 128] and
    # h2 [32, 64] (dW2 = h1^T dy2, dW3 = h2^T dlogits) and the pre-activations relu' tests.
    buffers = live_buffers(lowered_step(MLP, plan=False))
    saved = saved_activations(buffers)
    # The peak point by hand: the first position where the most bytes are live, split in saved
    # activations and the rest.
    live = {p: [b for b in buffers if b.start <= p <= b.end] for p in range(max(b.end for b in buffers) + 1)}
    peak = max(live, key=lambda p: (sum(b.size for b in live[p]), -p))
    at_peak_saved = sum(b.size for b in live[peak] if any(b is s for s in saved))
    assert report["peak_saved"] == at_peak_saved
    assert report["peak_temporaries"] == sum(b.size for b in live[peak]) - at_peak_saved
    shapes = sorted(tuple(b.alloc.memref.type.get_shape()) for b in saved)
    assert shapes.count((32, 128)) >= 2 and shapes.count((32, 64)) >= 2, shapes
    assert sum(b.size for b in saved) >= 4 * 2 * (32 * 128 + 32 * 64)
    assert report["peak_saved"] <= sum(b.size for b in saved)
    # Every saved activation is a forward buffer; every backward buffer is a temporary.
    assert all(b.phase == "forward" for b in saved)
    assert {b.phase for b in buffers} == {"forward", "backward"}

    # The forward function alone: no optimizer state, no saved activations.
    forward = prog.memory_report()
    assert forward["params"] == params and forward["optimizer_state"] == 0
    assert forward["peak_saved"] == 0 and forward["peak_temporaries"] <= forward["arena"] == prog.arena_bytes
    assert forward["outputs"] == 4 + 4 * 32 * 10


def test_runtime_allocates_exactly_the_arena():
    step = mlc.compile(MLP).trainer("adam").program
    arena = step.memory_report()["arena"]
    fn = step._fn  # the runtime's view of the arena is what this test checks
    assert fn.arena_bytes == arena
    arrays = [np.ones(spec.shape, spec.dtype) for spec in fn.args]
    fn(*arrays)
    [(owned, _)] = fn._pool
    assert owned is not None and owned.nbytes == arena
    fn(*arrays, arena=aligned_arena(arena))  # exactly `arena` bytes are accepted
    with pytest.raises(ValueError, match=f"needs {arena} bytes"):
        fn(*arrays, arena=aligned_arena(arena - 1))


def test_report_survives_the_program_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MLC_CACHE_DIR", str(tmp_path))
    built = mlc.compile(MLP)
    assert built.module is not None  # compiled here, not loaded
    loaded = mlc.compile(MLP)
    assert loaded.module is None  # loaded from the JSON record
    assert loaded.memory_report() == built.memory_report() == memory_report(
        next(op for op in built.module.ops if isinstance(op, func.FuncOp))
    )


def test_mlc_opt_prints_the_report_on_stderr():
    pipeline = training_pipeline("adam").removesuffix("mlc-plan-memory") + "mlc-plan-memory{report=true}"
    result = mlc_opt(str(MLP), "-p", pipeline)
    assert result.returncode == 0, result.stderr
    blocks = re.split(r"^mlc-plan-memory: memory of @", result.stderr, flags=re.MULTILINE)
    by_function = {b.split("\n", 1)[0]: b for b in blocks[1:]}
    assert list(by_function) == ["mlp", "mlp_grad", "mlp_step"]
    expected = mlc.compile(MLP).trainer("adam").program.memory_report()
    lines = by_function["mlp_step"].strip().splitlines()[1:]
    assert [line.split()[0] for line in lines] == list(REPORT_KEYS)
    for line in lines:
        name, value, human = re.fullmatch(r"\s+(\w+)\s+(\d+)\s+\((.+)\)", line).groups()  # type: ignore[union-attr]
        assert int(value) == expected[name], line
        unit = r"multiply-adds" if name.endswith("_macs") else r"\d+ B|\d+\.\d KiB|\d+\.\d\d MiB"
        assert re.fullmatch(unit, human), line
    assert "arena" in result.stdout and "mlc.memory = {arena = " in result.stdout  # the IR keeps the attribute
    # Without the option, nothing goes to stderr.
    quiet = mlc_opt(str(MLP), "-p", training_pipeline("adam"))
    assert quiet.returncode == 0 and "memory of" not in quiet.stderr


# ---------------------------------------------------------------------------------------------
# AddressSanitizer: the generated step inside exactly-sized buffers
# ---------------------------------------------------------------------------------------------
ASAN_FLAGS = ("-fsanitize=address", "-fno-omit-frame-pointer", "-O1", "-std=c99")
ASAN_ENV = {**os.environ, "ASAN_OPTIONS": "detect_leaks=1:halt_on_error=1:abort_on_error=0"}

HYPER_VALUES = {  # adam's step scalars at t = 1, lr = 1e-3
    "step_size": 1e-3 / (1 - 0.9), "beta1": 0.9, "beta2": 0.999, "eps": 1e-8,
    "bc2_sqrt": math.sqrt(1 - 0.999), "weight_decay": 0.0,
}


def asan_unavailable(tmp: Path) -> str | None:
    """Why ASan programs cannot be built and run here, or None when they can."""
    probe = tmp / "probe.c"
    probe.write_text("#include <stdlib.h>\nint main(void) { char *p = malloc(4); p[0] = 1; free(p); return 0; }\n")
    try:
        build = subprocess.run([*compiler_command(), *ASAN_FLAGS, str(probe), "-o", str(tmp / "probe")],
                               check=False, capture_output=True, text=True, timeout=120)
    except FileNotFoundError as e:
        return f"no C compiler: {e}"
    if build.returncode != 0:
        return f"the C compiler cannot build with -fsanitize=address: {build.stderr.strip()[:500]}"
    run = subprocess.run([str(tmp / "probe")], check=False, capture_output=True, text=True, timeout=60, env=ASAN_ENV)
    if run.returncode != 0:
        return f"an ASan program cannot run here (exit {run.returncode}): {run.stderr.strip()[:500]}"
    return None


def asan_driver(step: func.FuncOp, arena_bytes: int) -> str:
    """A `main()` that allocates every argument at its exact size (and the arena at
    `arena_bytes`), fills the inputs, runs the step twice (copying the updated parameters and
    state back in between, as the trainer does), prints the losses and frees everything."""
    sig = ModelSignature.of(step)
    args = list(step.body.block.args)
    args.pop()  # the arena
    planned = step.attributes["mlc.arena_bytes"].value.data  # type: ignore[attr-defined]
    specs = [*sig.args, *sig.outputs]
    assert len(specs) == len(args)
    name = sig.name
    lines = [
        "#define _POSIX_C_SOURCE 200112L",
        '#include "step.c"',
        "#include <stdio.h>",
        "",
        "static void *alloc_exact(size_t n) {",
        "  void *p = NULL;",
        "  if (posix_memalign(&p, 64, n ? n : 1) != 0) { fprintf(stderr, \"out of memory\\n\"); exit(3); }",
        "  return p;",
        "}",
        "",
        "int main(void) {",
        f"  if ({name}_arena_bytes != {planned}u) return 2;  /* the C file's own figure */",
    ]
    names = []
    for k, (spec, arg) in enumerate(zip(specs, args)):
        t = arg.type
        assert isinstance(t, MemRefType)
        ctype, size, var = c_type(t.get_element_type()), byte_size(t), f"a{k}"
        count = math.prod(t.get_shape())
        names.append(var)
        lines.append(f"  {ctype} *{var} = alloc_exact({size});  /* {spec.kind} {spec.name} */")
        if spec.kind == "hyper":
            lines.append(f"  {var}[0] = ({ctype}){HYPER_VALUES[spec.name.removeprefix('hyper.')]!r};")
        elif spec.kind == "optimizer_state" or spec.kind == "output":
            lines.append(f"  memset({var}, 0, {size});")
        else:
            lines.append(f"  for (size_t i = 0; i < {count}; i++) {var}[i] = ({ctype})((int)(i * 37 % 101) - 50) / 100;")
    lines.append(f"  uint8_t *arena = alloc_exact({arena_bytes});  /* exactly the planned arena, not more */")
    lines.append(f"  memset(arena, 0xA5, {arena_bytes});")
    by_name = {spec.name: var for spec, var in zip(specs, names)}
    call = f"  {name}({', '.join(names)}, arena);"
    copy_back = [
        f"  memcpy({by_name[s.name.removeprefix('new.')]}, {by_name[s.name]}, {nbytes(s.shape, s.dtype)});"
        for s in sig.outputs if s.name.startswith("new.")
    ]
    loss = by_name[sig.outputs[0].name]
    lines += [call, f'  printf("%.9g\\n", (double){loss}[0]);', *copy_back, call, f'  printf("%.9g\\n", (double){loss}[0]);']
    lines += [f"  free({v});" for v in names] + ["  free(arena);", "  return 0;", "}", ""]
    return "\n".join(lines)


def highest_arena_byte(step: func.FuncOp) -> int:
    """One past the last byte any view of the arena spans (the arena rounds it up to 64)."""
    end = 0
    for op in step.walk():
        if isinstance(op, memref.ViewOp):
            offset = op.byte_shift.owner
            assert isinstance(offset, arith.ConstantOp) and isinstance(offset.value, IntegerAttr)
            end = max(end, offset.value.value.data + byte_size(op.result.type))  # type: ignore[arg-type]
    return end


def run_under_asan(step: func.FuncOp, arena_bytes: int, tmp: Path) -> subprocess.CompletedProcess[str]:
    (tmp / "step.c").write_text(emit_c(ModuleOp([step.clone()])))
    (tmp / "driver.c").write_text(asan_driver(step, arena_bytes))
    exe = tmp / "driver"
    argv = [*compiler_command(), *ASAN_FLAGS, str(tmp / "driver.c"), "-o", str(exe), "-lm"]
    build = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=600, cwd=tmp)
    assert build.returncode == 0, f"{shlex.join(argv)}\n{build.stderr}"
    return subprocess.run([str(exe)], check=False, capture_output=True, text=True, timeout=600, env=ASAN_ENV)


@pytest.fixture(scope="module")
def asan_dir(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("asan")
    reason = asan_unavailable(tmp)
    if reason is not None:
        pytest.skip(reason)
    return tmp


@pytest.mark.parametrize("source, checkpoint", [
    (MLP, ""), (DIGITS_CNN, ""), (STRIDED_CNN, ""),
    (DIGITS_CNN, checkpoint_pass("80%")), (STRIDED_CNN, checkpoint_pass(policy="recompute-all")),
], ids=["mlp", "digits_cnn", "strided_cnn", "digits_cnn_budget_80", "strided_cnn_recompute_all"])
def test_adam_step_is_clean_under_asan_with_the_exact_arena(source, checkpoint, asan_dir, tmp_path):
    """Also with recomputation: mlc-checkpoint's clones live in the same arena."""
    step = lowered_step(source, "adam", checkpoint=checkpoint)
    arena = memory_report(step)["arena"]  # type: ignore[index]
    assert arena == step.attributes["mlc.arena_bytes"].value.data  # type: ignore[attr-defined]
    result = run_under_asan(step, arena, tmp_path)
    assert result.returncode == 0 and "AddressSanitizer" not in result.stderr, result.stderr[-4000:]
    losses = [float(v) for v in result.stdout.split()]
    assert len(losses) == 2 and all(math.isfinite(v) for v in losses), result.stdout


def test_asan_catches_an_arena_one_byte_short(asan_dir, tmp_path):
    """The negative control: the same driver with the arena cut one byte below the highest byte a
    buffer spans is an ASan heap-buffer-overflow, so the clean runs above do check the arena."""
    step = lowered_step(MLP, "adam")
    arena = memory_report(step)["arena"]  # type: ignore[index]
    used = highest_arena_byte(step)
    assert arena - 64 < used <= arena  # the planner rounds the top buffer up to the 64-byte alignment
    result = run_under_asan(step, used - 1, tmp_path)
    assert result.returncode != 0 and "heap-buffer-overflow" in result.stderr, result.stderr[-2000:]
