"""Tiered builds (`mlc.backends.c.tiers`): a program starts on the quick build (-Og), the
optimised build replaces it in the background, and both compute the same bits."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import mlc
from mlc.backends.c import tiers
from mlc.backends.c.runtime import build_flags, compile_c, library_key

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "lenet5.mlc"


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(tiers, "QUICK_TIER_BYTES", 0)  # tier the small test programs too


def _data(program: mlc.Program) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    rng = np.random.default_rng(1)
    inputs = {name: rng.standard_normal(shape).astype(dtype) for name, (shape, dtype) in program.inputs.items()}
    return program.init_params(3), inputs


def _hold_optimised_builds(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Optimised builds wait until the returned event is set (the quick one runs meanwhile)."""
    release = threading.Event()
    original = tiers.load_compiled

    def held(source: str, *, flags: tuple[str, ...] | None = None):  # noqa: ANN202
        if flags == build_flags():
            release.wait(60)
        return original(source, flags=flags)

    monkeypatch.setattr(tiers, "load_compiled", held)
    return release


def test_a_tiered_program_runs_the_quick_build_then_the_optimised_one_with_the_same_bits(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reference = mlc.compile(EXAMPLE, pipeline=None)
    params, inputs = _data(reference)
    expected = reference.run(params, inputs)
    release = _hold_optimised_builds(monkeypatch)
    monkeypatch.setenv("MLC_CACHE_DIR", str(tmp_path / "tiered"))  # nothing cached there
    program = mlc.compile(EXAMPLE, tiered=True)
    source = program.c_source
    quick = library_key(source, tiers.quick_flags(build_flags()))
    assert Path(program.library_path).name == f"{quick}.so"  # the -Og build
    quick_out = program.run(params, inputs)
    release.set()
    assert program.wait_optimised() is program
    assert Path(program.library_path) == compile_c(source)  # the -O2 build, from the cache
    optimised_out = program.run(params, inputs)
    for name, value in expected.items():
        assert np.array_equal(quick_out[name], value) and np.array_equal(optimised_out[name], value), name
    again = mlc.compile(EXAMPLE, tiered=True)  # cached: straight to the optimised library
    assert again._optimising is None and Path(again.library_path) == compile_c(source)
    step = again.trainer("sgd", lr=0.1).program  # a variant of a tiered program is tiered too
    assert step._optimising is not None and step.wait_optimised().library_path == compile_c(step.c_source)


def test_a_failed_optimised_build_warns_and_the_quick_build_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    original, release = tiers.load_compiled, threading.Event()

    def failing(source: str, *, flags: tuple[str, ...] | None = None):  # noqa: ANN202
        if flags == build_flags():
            release.wait(60)
            raise RuntimeError("C compiler failed (exit 1)")
        return original(source, flags=flags)

    monkeypatch.setattr(tiers, "load_compiled", failing)
    program = mlc.compile(EXAMPLE, tiered=True)
    quick = program.library_path
    with pytest.warns(RuntimeWarning, match="optimised build of @lenet5 failed .*C compiler failed.*quick build"):
        release.set()
        program.wait_optimised()
    assert program.library_path == quick
    params, inputs = _data(program)
    assert np.isfinite(program.run(params, inputs)["logits"]).all()


def test_a_process_may_exit_while_its_optimised_build_runs(tmp_path: Path) -> None:
    script = (f"import mlc\nfrom mlc.backends.c import tiers\ntiers.QUICK_TIER_BYTES = 0\n"
              f"p = mlc.compile({str(EXAMPLE)!r}, tiered=True)\nassert p._optimising is not None\nprint('ok')\n")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "MLC_CACHE_DIR": str(tmp_path / "c")})
    assert run.returncode == 0 and run.stdout == "ok\n" and "Traceback" not in run.stderr, run.stderr
