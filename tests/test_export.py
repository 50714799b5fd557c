"""Deployment: `mlc.freeze(program, params)` runs bitwise as `Program.run`, and `export_c` writes a C
library that `cc` builds with a tiny C `main`, whose output for one image is `Program.run`'s;
binary weights are baked as packed words (a bit each)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

import mlc
from mlc.passes.pipelines import DEFAULT_PIPELINE, in_training_mode

BINARY_NET = """model tiny_bnn {
  input x: f32[1, 8, 8, 3]
  param w1: f32[3, 3, 3, 64] = glorot
  param g: f32[64] = ones
  param be: f32[64] = zeros
  state m: f32[64] = zeros
  state v: f32[64] = ones
  param w2: f32[3, 3, 64, 64] = glorot
  param w3: f32[1024, 10] = glorot
  h = relu(conv2d(x, w1, padding=same))
  h = batchnorm(h, g, be, mean=m, var=v)
  h = maxpool2d(binconv2d(h, w2, padding=same, mode=xnor, pad_value=1), size=2)
  logits = bindense(flatten(h), w3, mode=xnor)
  output logits
}"""

MAIN = r"""#include <stdio.h>
#include <stdlib.h>
#include "tiny_bnn.h"

int main(int argc, char** argv) {
  static float x[1 * 8 * 8 * 3], logits[10];
  FILE* f = fopen(argv[1], "rb");
  if (!f || fread(x, sizeof x, 1, f) != 1) return 2;
  fclose(f);
  int status = tiny_bnn_run(x, logits, NULL);
  f = fopen(argv[2], "wb");
  fwrite(logits, sizeof logits, 1, f);
  fclose(f);
  return status;
}
"""


def trained_like(program: mlc.Program, seed: int) -> dict[str, np.ndarray]:
    """Parameters as after training: initialised, then running statistics and scales moved."""
    params = program.init_params(seed)
    rng = np.random.default_rng(seed)
    params["m"] = rng.normal(0, 0.1, 64).astype(np.float32)
    params["v"] = rng.uniform(0.5, 2, 64).astype(np.float32)
    params["g"] = rng.uniform(0.5, 1.5, 64).astype(np.float32)
    return params


def test_frozen_program_runs_bitwise_as_the_program() -> None:
    program = mlc.compile(BINARY_NET)
    params = trained_like(program, 1)
    frozen = mlc.freeze(program, params)
    assert any(name.startswith("prepared.") for name in frozen.values)
    assert "w2" not in frozen.values and "w3" not in frozen.values  # only their packed words and scales
    x = np.random.default_rng(2).standard_normal((1, 8, 8, 3)).astype(np.float32)
    assert frozen.run({"x": x})["logits"].tobytes() == program.run(params, {"x": x})["logits"].tobytes()


def test_exported_c_library_runs_one_image_from_c(tmp_path: Path) -> None:
    program = mlc.compile(BINARY_NET)
    params = trained_like(program, 3)
    written = mlc.freeze(program, params).export_c(tmp_path)
    assert written.source == tmp_path / "tiny_bnn.c" and written.header == tmp_path / "tiny_bnn.h"
    header = written.header.read_text()
    assert "int tiny_bnn_run(const float* x, float* logits, void* workspace);" in header
    assert "/* input x: float[1][8][8][3] */" in header
    (tmp_path / "main.c").write_text(MAIN)
    build = subprocess.run(["cc", "-std=c99", "-O2", "-o", "main", "main.c", "tiny_bnn.c", "-lm"], cwd=tmp_path,
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    x = np.random.default_rng(4).standard_normal((1, 8, 8, 3)).astype(np.float32)
    x.tofile(tmp_path / "image.bin")
    subprocess.run(["./main", "image.bin", "logits.bin"], cwd=tmp_path, check=True)
    got = np.fromfile(tmp_path / "logits.bin", dtype=np.float32)
    assert got.tobytes() == program.run(params, {"x": x})["logits"].tobytes()


def test_binary_weights_are_baked_as_bits(tmp_path: Path) -> None:
    """A 3x3 64->64 binary conv's 36864 weights bake as 576 words of 64 bits (plus its 64 scales):
    32x smaller than their floats."""
    source = """model layer {
  input x: f32[1, 6, 6, 64]
  param w: f32[3, 3, 64, 64] = glorot
  y = binconv2d(x, w, padding=same, mode=xnor, pad_value=1)
  output y
}"""
    program = mlc.compile(source)
    written = mlc.freeze(program, program.init_params(0)).export_c(tmp_path)
    assert written.parameter_bytes == 3 * 3 * 64 * 64 * 4
    assert written.baked_bytes == 3 * 3 * 64 * 8 + 64 * 4
    assert written.parameter_bytes / written.baked_bytes > 30


def test_training_programs_and_bad_names_are_refused(tmp_path: Path) -> None:
    program = mlc.compile(BINARY_NET)
    with pytest.raises(ValueError, match="parameter"):
        mlc.freeze(program, {"w1": np.zeros((3, 3, 3, 64), np.float32)})
    with pytest.raises(ValueError, match="not a C identifier"):
        mlc.freeze(program, program.init_params(0)).export_c(tmp_path, name="tiny-bnn")
    training = mlc.compile(BINARY_NET, pipeline=in_training_mode(DEFAULT_PIPELINE))
    with pytest.raises(ValueError, match="inference program"):
        mlc.freeze(training, training.init_params(0))


def test_frozen_calls_from_threads_each_get_their_own_arena() -> None:
    from concurrent.futures import ThreadPoolExecutor

    program = mlc.compile(BINARY_NET)
    params = trained_like(program, 5)
    frozen = mlc.freeze(program, params)
    images = [np.random.default_rng(k).standard_normal((1, 8, 8, 3)).astype(np.float32) for k in range(8)]
    want = [program.run(params, {"x": x})["logits"].tobytes() for x in images]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda x: [frozen.run({"x": x})["logits"].tobytes() for _ in range(20)], images))
    assert all(set(runs) == {w} for runs, w in zip(got, want))


def test_names_c_keeps_for_itself_are_exported_positionally(tmp_path: Path) -> None:
    """An input named `args`, `workspace` or `int` would clash with the entry point's own names
    or with C: then every parameter is named by its position (the header says which is which)."""
    source = """model mlc_net {
  input int: f32[2, 64]
  input workspace: f32[2, 64]
  input unused: f32[3]
  param w: f32[64, 5] = glorot
  y = bindense(int + workspace, w)
  output y
}"""
    program = mlc.compile(source)
    frozen = mlc.freeze(program, program.init_params(0))
    rng = np.random.default_rng(6)
    inputs = {"int": rng.standard_normal((2, 64)).astype(np.float32),
              "workspace": rng.standard_normal((2, 64)).astype(np.float32), "unused": np.zeros(3, np.float32)}
    assert frozen.run(inputs)["y"].tobytes() == program.run(program.init_params(0), inputs)["y"].tobytes()
    written = frozen.export_c(tmp_path)
    assert "int mlc_net_run(const float* arg0, const float* arg1, const float* arg2, float* arg3, void* workspace);" \
        in written.header.read_text()
    check = subprocess.run(["cc", "-std=c99", "-fsyntax-only", "mlc_net.c"], cwd=tmp_path, capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


def test_parameters_are_checked_when_frozen() -> None:
    program = mlc.compile(BINARY_NET)
    params = trained_like(program, 7)
    params["w1"] = params["w1"].astype(np.float64)
    with pytest.raises(ValueError, match="param 'w1' must have dtype float32"):
        mlc.freeze(program, params)
    params["w1"] = np.asfortranarray(trained_like(program, 7)["w1"])  # copied contiguous, same values
    x = np.random.default_rng(8).standard_normal((1, 8, 8, 3)).astype(np.float32)
    assert mlc.freeze(program, params).run({"x": x})["logits"].tobytes() == program.run(params, {"x": x})["logits"].tobytes()
