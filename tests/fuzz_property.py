"""The fuzz property, shared by `tests/test_fuzz.py` and `tools/fuzz.py`: what one program must do.

Every program (file bytes) either
- compiles, and then runs and matches the PyTorch reference (`TorchModel`): every forward output,
  and, when the first output is a scalar and the model has parameters, d(first output)/d(param)
  of `Program.grad` against PyTorch autograd (training mode on both sides); or
- is refused with a located `mlc.CompileError`: every diagnostic has a location in the file, and
  renders as `FILE:LINE:COL: error: ...`, the source line as the file has it, and a caret.

Anything else is a failure, by kind: `traceback` (any other exception), `unlocated` (a
CompileError without a usable location), `c-compiler` (the emitted C does not compile),
`mismatch`, `reference` (mlc accepted a program the PyTorch reference cannot evaluate), `crash` (the process died) and `hang` (over the time limit). Each
program runs in a worker process (`Worker`), so a crash or a hang costs one program.

What "matches" means, and why it is fair. Values are compared as in `test_random_programs`
(|mlc - torch| <= TOL * max(max|torch|, 1)): forward outputs with the TOL of the program's
dtype, gradients always in f64 (an f32 program's gradients are those of its f64 twin, the same
text with `f64` for each `f32` type), as that test compares them.

A mutant is not kept numerically sane the way the generator's models are, so it may compute
NaN or inf (the log of a negative number after a sign flip, an exp that overflows): those are
compared by position and value (NaN where the reference has NaN, inf of the same sign where it
has inf), and the tolerance applies to the finite values, scaled by the largest finite reference
value. Kinks (relu or sign at a value that is 0 in exact arithmetic, a max of tied values) have
no one right answer within rounding: where a value differs, the reference is evaluated again at
inputs moved by a few ulps, with the operands of every max, min and clamp moved as well (a tie can
be structural, which moving the inputs alone keeps: `_probe`), and only the elements that jump
there are excused (`unstable`); the count is reported. (So it is with mlc's f32 gradients of examples/resnet.mlc in case
mismatch-3-3555: one relu input of the first block is -1.5e-7 in f64, and f32 rounding gives it
either sign; that one element moves the gradients upstream by up to 3%.)

A program that compiles but needs more than `RUN_BYTES` of tensors and arena is
counted as `too-big` and not run (its gradient program is still compiled): its size is within
the documented limits (dimensions <= 2**31 - 1, tensors <= 2**40 elements, both now checked on
built-in results too), and compiling it quickly, without allocating it, is what is checked.
"""

from __future__ import annotations

import importlib
import math
import multiprocessing
import re
import tempfile
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np

TIMEOUT_S = 30.0
"""Per program: compile, run, gradient compile and run (a normal one takes well under 5 s)."""
RUN_BYTES = 256 * 2**20
"""Compiled programs needing more memory than this (tensors and arena) are not run."""
MEMORY_LIMIT = 8 * 2**30
"""Address space of a worker: an attempt to allocate a huge tensor fails instead of swapping."""

PASSES = ("matched", "refused", "too-big", "model-choice")
"""`model-choice`: `mlc.compile` of a source without exactly one model (a mutant that lost its
`model` line or duplicated it) raises the runtime's ValueError "pass model=NAME", not a located
CompileError; `select_model` (mlc/runtime) is outside this fuzzer's remit, so it is counted apart."""
FAILURES = ("traceback", "unlocated", "c-compiler", "mismatch", "reference", "crash", "hang")



@dataclass(frozen=True)
class Outcome:
    """What happened to one program; `detail` explains a failure (or quotes the error)."""

    kind: str
    detail: str = ""
    gradients: bool = False
    kinks: int = 0
    """Output and gradient elements excused as sitting on a kink (`unstable`)."""

    @property
    def failed(self) -> bool:
        return self.kind in FAILURES


def located_problem(error: BaseException, path: Path, data: bytes) -> str | None:
    """Why `error` is not a properly located diagnostic about file `path` (None when it is)."""
    from mlc.errors import CompileError

    assert isinstance(error, CompileError)
    lines = data.decode("utf-8", errors="replace").split("\n")
    for diag in error.diagnostics:
        loc = diag.loc
        if loc is None:
            return f"a diagnostic without a location: {diag.message}"
        if loc.file != str(path):
            return f"located in {loc.file!r}, not in {str(path)!r}"
        if not 1 <= loc.line <= len(lines) or loc.col < 1:
            return f"location {loc} is outside the file ({len(lines)} lines)"
        rendered = diag.render(error.source).split("\n")
        if len(rendered) != 3 or not re.match(r"[^\n]+:\d+:\d+: (error|warning|note): \S", rendered[0]):
            return f"not header, source line and caret:\n{diag.render(error.source)}"
        if rendered[1].strip() != lines[loc.line - 1].rstrip("\r").strip() or "^" not in rendered[2]:
            return f"the quoted line is not line {loc.line} of the file:\n{diag.render(error.source)}"
    return None


def compare(got: np.ndarray, ref: np.ndarray, tol: float, what: str) -> str | None:
    """Why `got` does not match `ref` (None when it does): shapes, NaN and inf positions, then
    |got - ref| <= tol * max(max|finite ref|, 1) on the finite values."""
    got, ref = np.asarray(got, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    if got.shape != ref.shape:
        return f"{what}: shape {got.shape}, reference {ref.shape}"
    if not np.array_equal(np.isnan(got), np.isnan(ref)):
        return f"{what}: NaN at other places than the reference's\nmlc:   {got.ravel()[:8]}\ntorch: {ref.ravel()[:8]}"
    inf = np.isinf(ref)
    if not np.array_equal(np.isinf(got), inf) or not np.array_equal(got[inf], ref[inf]):
        return f"{what}: infinities differ from the reference's\nmlc:   {got.ravel()[:8]}\ntorch: {ref.ravel()[:8]}"
    finite = np.isfinite(ref)
    if not finite.any():
        return None
    scale = max(float(np.max(np.abs(ref[finite]))), 1.0)
    err = float(np.max(np.abs(got[finite] - ref[finite])))
    if err <= tol * scale:
        return None
    return (f"{what}: max |mlc - torch| = {err:.3g} > {tol:g} * {scale:.3g}\n"
            f"mlc:   {np.array2string(got.ravel()[:8], precision=6)}\ntorch: {np.array2string(ref.ravel()[:8], precision=6)}")


def _run_bytes(program) -> int:  # noqa: ANN001 - an mlc.Program
    tensors = [*program.inputs.values(), *program.params.values(), *program.states.values()]
    size = sum(math.prod(shape) * np.dtype(dt).itemsize for shape, dt in tensors)
    outputs = sum(math.prod(s.shape) * np.dtype(s.dtype).itemsize for s in program.signature.outputs)
    return size + outputs + program.arena_bytes


def _has_gradient(program) -> bool:  # noqa: ANN001 - an mlc.Program
    """The first output is a scalar loss and there are parameters to differentiate it by."""
    outputs = program.signature.outputs
    return bool(program.params) and bool(outputs) and tuple(outputs[0].shape) == ()


F32_TYPE = re.compile(r"\bf32(\s*\[)")
"""An f32 tensor type, however spaced (`f32 [10]` is one): the f64 twin spells each `f64`."""


def _differential(program, path: Path, data: bytes, seed: int) -> Outcome:  # noqa: ANN001 - an mlc.Program
    """Forward outputs (in the program's precision), then gradients (in f64) against PyTorch."""
    from mlc.testing.torch_reference import TorchModel

    text = data.decode("utf-8")
    single = F32_TYPE.search(text) is not None or any(np.dtype(dt) == np.float32 for _, dt in (*program.inputs.values(), *program.params.values()))
    rng = np.random.default_rng(seed)
    inputs = {name: rng.uniform(-1.0, 1.0, size=shape).astype(dt) for name, (shape, dt) in program.inputs.items()}
    params = program.init_params(seed)
    with np.errstate(all="ignore"):
        got = program.run({k: v.copy() for k, v in params.items()}, inputs)
        try:
            reference = TorchModel.from_source(text)
            ref = reference.run({k: v.copy() for k, v in params.items()}, inputs)
        except Exception:
            return Outcome("reference", traceback.format_exc())
    if list(got) != list(ref):
        return Outcome("mismatch", f"outputs {list(got)}, reference {list(ref)}")
    dtype = "f32" if single else "f64"
    problem, kinks = _matches_where_stable(got, ref, dtype, "output {}", lambda: unstable(
        _probe(text, training=False, dtype=dtype), params, inputs, ref, dtype))
    if problem is not None:
        return Outcome("mismatch", problem)
    if not _has_gradient(program):
        return Outcome("matched", f"{kinks} output elements at a kink" if kinks else "", kinks=kinks)
    if single:  # gradients in f64, as test_random_programs compares them: the program's f64 twin
        import mlc

        data = F32_TYPE.sub(r"f64\1", text).encode()
        path = path.with_name("fuzz64.mlc")
        path.write_bytes(data)
        program = mlc.compile(path)
        params = {k: v.astype(np.float64) for k, v in params.items()}
        inputs = {k: v.astype(np.float64) for k, v in inputs.items()}
    outcome = _gradients(program, path, data, params, inputs)
    return outcome if outcome.failed or not kinks else \
        Outcome(outcome.kind, f"{kinks} output elements at a kink; {outcome.detail}", outcome.gradients, outcome.kinks + kinks)


def _gradients(program, path: Path, data: bytes, params: dict[str, np.ndarray],  # noqa: ANN001 - an mlc.Program
               inputs: dict[str, np.ndarray]) -> Outcome:
    """d(first output)/d(params) of `Program.grad` against PyTorch autograd, in f64."""
    from test_random_programs import reference_gradients

    from mlc.errors import CompileError
    from mlc.testing.torch_reference import TorchModel

    try:
        reference = TorchModel.from_source(data.decode(), training=True)
        expected = reference_gradients(reference, params, inputs)
    except Exception:
        return Outcome("reference", traceback.format_exc())
    try:
        with np.errstate(all="ignore"):
            _, grads = program.grad({k: v.copy() for k, v in params.items()}, inputs)
    except CompileError as error:  # a gradient the language does not define is a refusal, if located
        if (problem := located_problem(error, path, data)) is not None:
            return Outcome("unlocated", f"gradient: {problem}")
        return Outcome("matched", f"gradient refused: {error}")
    if set(grads) != set(expected):
        return Outcome("mismatch", f"gradients of {sorted(grads)}, reference {sorted(expected)}")
    problem, kinks = _matches_where_stable(grads, expected, "f64", "d loss / d {}", lambda: unstable(
        _probe(data.decode(), training=True, dtype="f64"), params, inputs, expected))
    if problem is not None:
        return Outcome("mismatch", problem)
    return Outcome("matched", f"{kinks} gradient elements at a kink" if kinks else "", gradients=True, kinks=kinks)


KINK_PROBES = 8
"""Perturbed reference evaluations that decide whether a value is at a kink."""
NUDGE = {"f64": 1e-9, "f32": 1e-6}
"""The relative perturbation of every input and parameter, a few ulps of the dtype's."""


def _probe(text: str, training: bool, dtype: str) -> Callable[[dict[str, np.ndarray], dict[str, np.ndarray]], dict[str, np.ndarray]]:
    """The reference as `unstable` evaluates it: forward outputs (or, `training`, the gradients of
    the first), with the operands of every max, min and clamp moved by a few ulps as well, so
    that values tied in exact arithmetic are ranked anew by each probe. Moving the inputs
    alone cannot do that where the tie is structural: the max pool of a binary conv over a
    region that relu and batchnorm made constant (case mismatch-19-2931, where mlc's rounding
    and PyTorch's rank such a tie differently in 21 of 16384 windows)."""
    from test_random_programs import reference_gradients

    from mlc.testing.torch_reference import TorchModel

    model = TorchModel.from_source(text, training=training, tie_jitter=NUDGE[dtype])
    if training:
        return lambda p, i: reference_gradients(model, p, i)
    return lambda p, i: model.run({k: v.copy() for k, v in p.items()}, i)


def unstable(evaluate: Callable[[dict[str, np.ndarray], dict[str, np.ndarray]], dict[str, np.ndarray]],
             params: dict[str, np.ndarray], inputs: dict[str, np.ndarray], expected: dict[str, np.ndarray],
             dtype: str = "f64") -> dict[str, np.ndarray]:
    """Per element of the reference's `evaluate(params, inputs)` (= `expected`): does it jump when
    every input and parameter is moved by a few ulps (and, by `_probe`, every operand of a max)? Such an element sits on a kink within
    rounding (abs, sign, relu or max of a value that is zero or tied in exact arithmetic: the
    sign of tanh(a) - tanh(a) that overlapping pooling windows give a binary conv, the sum of
    batch-normalised values), where no answer is more right than another; only those elements
    are excused, the rest must still match."""
    from test_random_programs import TOL

    rng = np.random.default_rng(0)
    moved = {name: np.zeros(np.shape(v), dtype=bool) for name, v in expected.items()}
    for _ in range(KINK_PROBES):
        def nudge(a: np.ndarray) -> np.ndarray:
            return (a * (1 + NUDGE[dtype] * rng.uniform(-1, 1, size=np.shape(a)))).astype(a.dtype)
        with np.errstate(all="ignore"):
            probe = evaluate({k: nudge(v) for k, v in params.items()}, {k: nudge(v) for k, v in inputs.items()})
        for name, value in probe.items():
            want = np.asarray(expected[name], dtype=np.float64)
            value = np.asarray(value, dtype=np.float64)
            finite = np.isfinite(want)
            scale = max(float(np.max(np.abs(want[finite]), initial=0.0)), 1.0)
            same = (np.abs(value - want) <= TOL[dtype] * scale * 1e3) | (value == want) | (np.isnan(value) & np.isnan(want))
            moved[name] |= ~same
    return moved


def _matches_where_stable(got: dict[str, np.ndarray], want: dict[str, np.ndarray], dtype: str, what: str,
                          find_unstable: Callable[[], dict[str, np.ndarray]]) -> tuple[str | None, int]:
    """(why `got` does not match `want` where the reference is stable, or None; the number of
    elements excused as unstable): `find_unstable` runs only if something differs."""
    from test_random_programs import TOL

    unstable_parts: dict[str, np.ndarray] | None = None
    for name, ref in want.items():
        if compare(got[name], ref, TOL[dtype], what.format(name)) is None:
            continue
        if np.shape(got[name]) != np.shape(ref):
            return compare(got[name], ref, TOL[dtype], what.format(name)), 0
        unstable_parts = unstable_parts or find_unstable()
        stable = ~unstable_parts[name]
        if (problem := compare(np.asarray(got[name])[stable], np.asarray(ref)[stable], TOL[dtype],
                               what.format(name) + " (stable part)")) is not None:
            return problem, 0
    return None, sum(int(m.sum()) for m in unstable_parts.values()) if unstable_parts else 0


def check_program(data: bytes, seed: int, workdir: Path) -> Outcome:
    """The property for one program, in this process (see the module docstring)."""
    import mlc
    from mlc.errors import CompileError

    path = workdir / "fuzz.mlc"
    path.write_bytes(data)
    try:
        program = mlc.compile(path)
    except CompileError as error:
        problem = located_problem(error, path, data)
        return Outcome("refused", str(error)) if problem is None else Outcome("unlocated", problem)
    except ValueError as error:
        if re.match(r"the source defines \d+ models", str(error)):  # the API's deliberate refusal
            return Outcome("model-choice", str(error))
        return Outcome("traceback", traceback.format_exc())
    except RuntimeError as error:
        if str(error).startswith("C compiler failed"):
            return Outcome("c-compiler", str(error)[-3000:])
        return Outcome("traceback", traceback.format_exc())
    except Exception:
        return Outcome("traceback", traceback.format_exc())
    try:
        if _run_bytes(program) > RUN_BYTES:  # not run, but its gradient must compile quickly too
            if _has_gradient(program):
                try:
                    program.grad_program()
                except CompileError as error:  # a gradient refused: fine when located
                    problem = located_problem(error, path, data)
                    return Outcome("too-big", str(error)) if problem is None else Outcome("unlocated", problem)
            return Outcome("too-big", f"{_run_bytes(program)} bytes")
        return _differential(program, path, data, seed)
    except CompileError as error:  # only the f64 twin of a compiled f32 program gets here
        return Outcome("mismatch", f"the f32 program compiles, its f64 twin does not:\n{error}")
    except Exception:
        return Outcome("traceback", traceback.format_exc())


# -- isolation: one worker process per job -----------------------------------------------------
def _serve(conn: Connection) -> None:
    """Worker loop: (data, seed) in, the Outcome's fields out, until None."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    warnings.simplefilter("ignore")
    for module in ("mlc.runtime.program", "test_random_programs", "mlc.testing.torch_reference"):
        importlib.import_module(module)  # once, before the first program's time starts

    with tempfile.TemporaryDirectory(prefix="mlc-fuzz-") as workdir:
        while (job := conn.recv()) is not None:
            data, seed = job
            outcome = check_program(data, seed, Path(workdir))
            conn.send((outcome.kind, outcome.detail, outcome.gradients, outcome.kinks))


class Worker:
    """A process that checks programs one at a time; a hang or a crash is reported and the
    process replaced."""

    def __init__(self, timeout_s: float = TIMEOUT_S) -> None:
        self.timeout_s = timeout_s
        self._context = multiprocessing.get_context("spawn")  # no fork of a process with OpenMP threads
        self._start()

    def _start(self) -> None:
        self._conn, child = self._context.Pipe()
        self._process = self._context.Process(target=_serve, args=(child,), daemon=True)
        self._process.start()
        child.close()
        self._fresh = True

    def check(self, data: bytes, seed: int) -> Outcome:
        # a fresh worker first imports mlc and torch: give it that time on top of the limit
        timeout = self.timeout_s + (60.0 if self._fresh else 0.0)
        self._fresh = False
        self._conn.send((data, seed))
        try:
            if self._conn.poll(timeout):
                return Outcome(*self._conn.recv())
        except (EOFError, ConnectionError):
            self._process.join(5)
            code = self._process.exitcode
            self._restart()
            return Outcome("crash", f"the worker died (exit code {code})")
        self._restart()
        return Outcome("hang", f"no result after {timeout:.0f} s")

    def _restart(self) -> None:
        self._process.kill()
        self._process.join()
        self._conn.close()
        self._start()

    def close(self) -> None:
        try:
            self._conn.send(None)
        except (BrokenPipeError, OSError):
            pass
        self._process.join(10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
