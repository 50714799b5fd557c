"""The `mlc-opt` driver: registration, pipeline selection, and clean user errors (no tracebacks)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlc.cli import MlcOptMain
from mlc.passes.pipelines import DEFAULT_PIPELINE
from mlc.universe import MLC_UNIVERSE

MODULE = """\
func.func @f(%a: i32) -> i32 {
  %c0 = arith.constant 0 : i32
  %r = arith.addi %a, %c0 : i32
  func.return %r : i32
}
"""


def mlc_opt(*args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("mlc-opt")
    cmd = str(exe) if exe.exists() else shutil.which("mlc-opt")
    assert cmd is not None, "mlc-opt is not installed in this environment (`make venv`)"
    return subprocess.run([cmd, *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def module_file(tmp_path: Path) -> Path:
    path = tmp_path / "f.mlir"
    path.write_text(MODULE)
    return path


def assert_clean_error(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stderr.strip(), "an error must say what is wrong"


# -- what works ----------------------------------------------------------------------------------


def test_runs_xdsl_passes(module_file: Path) -> None:
    result = mlc_opt(str(module_file), "-p", "canonicalize,cse")
    assert result.returncode == 0, result.stderr
    assert "arith.addi" not in result.stdout
    assert "func.return %a : i32" in result.stdout


def test_output_file(module_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mlir"
    result = mlc_opt(str(module_file), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert "arith.addi" in out.read_text()


def test_help_lists_mlc_passes() -> None:
    result = mlc_opt("--help")
    assert result.returncode == 0, result.stderr
    assert "mlc passes:" in result.stdout
    for name in MLC_UNIVERSE.all_passes:  # one line each in the "mlc passes:" listing
        assert re.search(rf"^  {re.escape(name)}( |$)", result.stdout, re.MULTILINE), name
    assert DEFAULT_PIPELINE in result.stdout


def test_version() -> None:
    result = mlc_opt("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("mlc-opt ") and "xdsl 0.74.0" in result.stdout


def test_registers_mlc_universe(module_file: Path) -> None:
    main = MlcOptMain(args=[str(module_file)])
    assert set(MLC_UNIVERSE.all_passes) <= set(main.available_passes)
    assert set(MLC_UNIVERSE.all_targets) <= set(main.available_targets)
    assert set(MLC_UNIVERSE.all_dialects) <= set(main.ctx.registered_dialect_names)
    assert "mlc" in main.available_frontends and "mlir" in main.available_frontends


def test_no_pipeline_by_default(module_file: Path) -> None:
    assert MlcOptMain(args=[str(module_file)]).pipeline.passes == ()


def test_explicit_empty_pipeline_with_c_target(module_file: Path) -> None:
    """`-p ''` opts out of the default pipeline (for input that is already at loop level)."""
    assert MlcOptMain(args=[str(module_file), "-t", "c", "-p", ""]).pipeline.passes == ()


def test_c_target_without_p_runs_default_pipeline(module_file: Path) -> None:
    for module in ("mlc.passes.lower_graph", "mlc.passes.lower_loops", "mlc.passes.plan_memory"):
        pytest.importorskip(module)
    main = MlcOptMain(args=[str(module_file), "-t", "c"])
    assert ",".join(p.name for p in main.pipeline.passes) == DEFAULT_PIPELINE


# -- user errors: exit 1, a message, no traceback -------------------------------------------------


def test_unknown_pass(module_file: Path) -> None:
    result = mlc_opt(str(module_file), "-p", "bogus-pass")
    assert_clean_error(result)
    assert result.stderr.strip() == (
        "mlc-opt: error: unknown pass 'bogus-pass'; `mlc-opt --help` lists the passes"
    )
    assert result.stdout == ""


def test_unknown_pass_suggests_close_name(module_file: Path) -> None:
    result = mlc_opt(str(module_file), "-p", "canonicalize,mlc-lower-grap")
    assert_clean_error(result)
    assert "did you mean 'mlc-lower-graph'?" in result.stderr


def test_bad_pass_option(module_file: Path) -> None:
    result = mlc_opt(str(module_file), "-p", "cse{nope=1}")
    assert_clean_error(result)
    assert "nope" in result.stderr


def test_malformed_pipeline(module_file: Path) -> None:
    result = mlc_opt(str(module_file), "-p", "cse{")
    assert_clean_error(result)


def test_missing_input_file(tmp_path: Path) -> None:
    result = mlc_opt(str(tmp_path / "nope.mlir"))
    assert_clean_error(result)
    assert "nope.mlir" in result.stderr


def test_unknown_extension(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_text(MODULE)
    result = mlc_opt(str(path))
    assert_clean_error(result)
    assert "'txt'" in result.stderr


def test_mlir_parse_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.mlir"
    path.write_text("func.func @f( {\n")
    result = mlc_opt(str(path))
    assert_clean_error(result)
    assert "bad.mlir:1:" in result.stderr


def test_verifier_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.mlir"
    path.write_text('"test.op"() : () -> ()\n%x = "arith.addi"() : () -> i32\n')
    result = mlc_opt(str(path), "--allow-unregistered-dialect")
    assert_clean_error(result)


def test_mlc_compile_error_is_clean(tmp_path: Path) -> None:
    """A user error in a .mlc file is `FILE:LINE:COL: error: ...` on stderr, exit 1."""
    pytest.importorskip("mlc.errors")
    frontend = pytest.importorskip("mlc.frontend")
    if not hasattr(frontend, "parse_mlc"):
        pytest.skip("mlc.frontend.parse_mlc is not written yet")
    path = tmp_path / "bad.mlc"
    path.write_text("model m {\n  input x: f32[2, 3]\n  y = relu(undefined_name)\n  output y\n}\n")
    result = mlc_opt(str(path))
    assert_clean_error(result)
    assert result.stderr.startswith(f"{path}:3:"), result.stderr
    assert ": error: " in result.stderr.splitlines()[0]
    assert result.stdout == ""
