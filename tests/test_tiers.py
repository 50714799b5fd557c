"""Tiered builds (`mlc.backends.c.tiers`): a program starts on the quick build (-Og), the
optimised build replaces it in the background, and both compute the same bits."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import mlc
from mlc.backends.c import tiers
from mlc.backends.c.runtime import build_flags, compile_c, library_key, load_library
from mlc.backends.cstyle.names import c_symbol

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "lenet5.mlc"


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(tiers, "QUICK_TIER_BYTES", 0)  # tier the small test programs too


def _data(program: mlc.Program) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    rng = np.random.default_rng(1)
    inputs = {name: rng.standard_normal(shape).astype(dtype) for name, (shape, dtype) in program.inputs.items()}
    return program.init_params(3), inputs


def _entry(program: mlc.Program) -> int:
    """The address the program's function calls (its packed entry point)."""
    return ctypes.cast(program.function._packed, ctypes.c_void_p).value  # type: ignore[return-value]


def _entry_in(program: mlc.Program, library: Path | str) -> int:
    """The address of the program's packed entry point in `library`."""
    symbol = getattr(load_library(library), c_symbol(program.name) + "_packed")
    return ctypes.cast(symbol, ctypes.c_void_p).value  # type: ignore[return-value]


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
    assert _entry(program) == _entry_in(program, program.library_path)
    quick_out = program.run(params, inputs)
    release.set()
    assert program.wait_optimised() is program
    assert Path(program.library_path) == compile_c(source)  # the -O2 build, from the cache
    assert _entry(program) == _entry_in(program, compile_c(source)) != _entry_in(program, tmp_path / "tiered" / f"{quick}.so")
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


def test_a_tiered_program_is_verified_after_its_optimised_build_and_a_failure_warns(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from xdsl.dialects.builtin import ModuleOp

    release = _hold_optimised_builds(monkeypatch)
    verified: list[str] = []

    def failing_verify(module: ModuleOp, *args: object, **kwargs: object) -> None:
        verified.append(next(iter(module.ops)).sym_name.data)  # type: ignore[attr-defined]
        raise ValueError("an op the verifier rejects")

    monkeypatch.setattr(ModuleOp, "verify", failing_verify)
    program = mlc.compile(EXAMPLE, tiered=True)
    assert verified == []  # the first call does not wait for the verify
    params, inputs = _data(program)
    assert np.isfinite(program.run(params, inputs)["logits"]).all()
    with pytest.warns(RuntimeWarning, match="internal error: the lowered IR of @lenet5 does not verify .*rejects"):
        release.set()
        program.wait_optimised()
    assert verified == ["lenet5"]


def test_a_process_that_exits_during_its_optimised_build_leaves_the_library_in_the_cache(tmp_path: Path) -> None:
    script = (f"import mlc\nfrom mlc.backends.c import tiers\nfrom mlc.backends.c.runtime import build_flags, library_key\n"
              f"tiers.QUICK_TIER_BYTES = 0\np = mlc.compile({str(EXAMPLE)!r}, tiered=True)\n"
              f"assert p._optimising is not None and not p._optimising._done.is_set()\n"
              f"print(library_key(p.c_source, build_flags()))\n")
    cache = tmp_path / "c"
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "MLC_CACHE_DIR": str(cache)})
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr
    key = run.stdout.strip()
    assert (cache / f"{key}.so").is_file() and (cache / f"{key}.so.sha256").is_file()  # published at exit
    assert not [p.name for p in cache.iterdir() if p.name.startswith(".")]  # no temporary left


def test_waiting_returns_even_when_a_callback_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    release = _hold_optimised_builds(monkeypatch)
    program = mlc.compile(EXAMPLE, tiered=True)
    build = program._optimising
    assert build is not None

    def raising(_: tiers.OptimisedBuild) -> None:
        raise RuntimeError("a callback that fails")

    build.then(raising)
    seen: list[BaseException] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: seen.append(args.exc_value))
    release.set()
    tiers.wait_for_optimised_builds()
    assert build._done.is_set() and [str(e) for e in seen] == ["a callback that fails"]
