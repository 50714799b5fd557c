"""Generated code under AddressSanitizer and UndefinedBehaviorSanitizer (`MLC_SANITIZE`).

Child processes, started as `sanitized_environment` says (ASan preloaded), build every
example's forward, gradient and training-step programs and a sample of random programs with
`-fsanitize=address,undefined`, run them, and save what they computed: each must exit cleanly
(a sanitizer report aborts it), and their values must be bitwise the unsanitized ones computed
here (the flags never change a value: no -ffast-math, no FMA contraction). Negative controls
show that the same setup catches an out-of-bounds write and a signed overflow.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from random_programs import generate

import mlc
from mlc.backends.c.runtime import compiler_command
from mlc.backends.c.sanitizers import SanitizerError, sanitized_environment, sanitizer_flags

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.mlc"))
RANDOM_SEEDS = range(8)

CHILD = """
import sys, numpy as np, mlc
from pathlib import Path
sys.path.insert(0, {tests!r})
from test_sanitizers import exercise
np.savez(sys.argv[1], **exercise(sys.argv[2:]))
"""


def programs() -> list[tuple[str, str]]:
    return [(p.stem, p.read_text()) for p in EXAMPLES] + \
           [(f"random-{seed}", generate(seed, "f64").text) for seed in RANDOM_SEEDS]


def exercise(names: list[str] | None = None) -> dict[str, np.ndarray]:
    """Forward, gradient and (for the examples) two Adam steps of the named programs (default:
    all), by name."""
    results: dict[str, np.ndarray] = {}
    for name, text in programs():
        if names is not None and name not in names:
            continue
        program = mlc.compile(text)
        rng = np.random.default_rng(0)
        inputs = {k: rng.uniform(0, 1, size=s).astype(d) for k, (s, d) in program.inputs.items()}
        params = program.init_params(0)
        for out, value in program.run({k: v.copy() for k, v in params.items()}, inputs).items():
            results[f"{name}/run/{out}"] = value
        if not program.params or program.signature.outputs[0].shape != ():
            continue
        _, grads = program.grad({k: v.copy() for k, v in params.items()}, inputs)
        results.update({f"{name}/grad/{k}": v for k, v in grads.items()})
        if name.startswith("random-"):
            continue
        trainer = program.trainer("adam", lr=1e-3)
        for step in range(2):
            results[f"{name}/step{step}/loss"] = np.asarray(trainer.step(params, inputs)[program.outputs[0]])
        results.update({f"{name}/trained/{k}": v for k, v in params.items()})
    return results


@pytest.fixture(scope="module")
def environment(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    env = sanitized_environment(compiler=compiler_command())
    probe = subprocess.run([sys.executable, "-c", "print(1)"], env=env, capture_output=True, text=True)
    if probe.returncode != 0 or not Path(env["LD_PRELOAD"].split()[0]).exists():
        pytest.skip(f"this compiler's AddressSanitizer runtime cannot be preloaded: {probe.stderr[-500:]}")
    return env


def test_every_example_and_random_programs_run_clean_and_unchanged(environment: dict[str, str],
                                                                   tmp_path: Path) -> None:
    """One child per example (and one for the random programs), as many at once as there are
    cores: building with the sanitizers is most of the time."""
    names = [p.stem for p in EXAMPLES]
    jobs = [[n] for n in names] + [[n for n, _ in programs() if n not in names]]

    def sanitized_run(k: int) -> dict[str, np.ndarray]:
        saved = tmp_path / f"sanitized-{k}.npz"
        child = subprocess.run([sys.executable, "-c", CHILD.format(tests=str(ROOT / "tests")), str(saved), *jobs[k]],
                               env=environment, capture_output=True, text=True, timeout=1500)
        assert child.returncode == 0, child.stderr[-6000:]
        assert "runtime error" not in child.stderr and "Sanitizer" not in child.stderr, child.stderr[-6000:]
        return dict(np.load(saved))

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        sanitized = {k: v for part in pool.map(sanitized_run, range(len(jobs))) for k, v in part.items()}
    plain = exercise()
    assert sorted(sanitized) == sorted(plain)
    assert sum(k.endswith("/step1/loss") for k in plain) == len(EXAMPLES)
    for key, value in plain.items():
        np.testing.assert_array_equal(sanitized[key], value, err_msg=key)


BAD_C = {
    "heap-buffer-overflow": "void bad(float *x, long n) { for (long i = 0; i <= n; i++) x[i] = 1; }",
    "signed integer overflow": "void bad(float *x, long n) { int k = (int)n; k += 2147483647; x[0] = (float)k; }",
}

BAD_CHILD = """
import ctypes, numpy as np
from mlc.backends.c.runtime import compile_c, load_library
bad = load_library(compile_c({source!r})).bad
x = np.zeros(4, np.float32)
bad(ctypes.c_void_p(x.ctypes.data), ctypes.c_long(4))
print("not caught")
"""


@pytest.mark.parametrize("report", sorted(BAD_C))
def test_the_sanitizers_catch_what_they_should(environment: dict[str, str], report: str) -> None:
    """The negative controls: the same environment aborts on a bad library, with the report."""
    code = BAD_CHILD.format(source=BAD_C[report] + "\n")
    child = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True, timeout=300)
    assert child.returncode != 0 and report in child.stderr and "not caught" not in child.stdout, child.stderr[-3000:]


def test_the_option_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLC_SANITIZE", "address,thread")
    with pytest.raises(SanitizerError, match="unknown sanitizer 'thread'"):
        sanitizer_flags()
    monkeypatch.setenv("MLC_SANITIZE", "undefined")
    assert sanitizer_flags()[0] == "-fsanitize=undefined"


def test_without_the_preload_the_error_says_what_to_do() -> None:
    env = {**sanitized_environment(("address",)), "LD_PRELOAD": ""}
    child = subprocess.run([sys.executable, "-c", f"import mlc; mlc.compile({str(ROOT / 'examples' / 'mlp.mlc')!r})"],
                           env=env, capture_output=True, text=True, timeout=600)
    assert child.returncode != 0 and "LD_PRELOAD=$(cc -print-file-name=libasan.so)" in child.stderr, child.stderr[-2000:]
