"""Fuzzing: generated and mutated programs compile, run and match PyTorch, or are refused with a
located CompileError; never a traceback, a C compiler error, a crash or a hang.

The property is `fuzz_property.check_program` (see its docstring for what "matches" means);
the programs are `mutations.fuzz_case(SEED, i)`, the same cases `tools/fuzz.py` runs for any
count. Here a fixed sample of `MLC_FUZZ_PROGRAMS` (default 150) runs in one worker process,
and so does every program a fuzz run ever failed on (tests/data/fuzz_regressions/, named
`<kind>-<seed>-<index>.mlc`; the index is also the seed of its inputs), which must now pass.
"""

from __future__ import annotations

import os
import random
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from fuzz_property import Outcome, Worker
from mutations import HUGE, fuzz_case, mutate_bytes

from random_programs import generate

SEED = 2026
COUNT = int(os.environ.get("MLC_FUZZ_PROGRAMS", "150"))
REGRESSIONS = sorted((Path(__file__).parent / "data" / "fuzz_regressions").glob("*.mlc"))
OPEN_BUGS: dict[str, str] = {}
"""Saved failures not fixed yet: expected to fail (strictly, so a fix is noticed), with what is known."""


@pytest.fixture(scope="module")
def worker() -> Iterator[Worker]:
    w = Worker()
    yield w
    w.close()


def _report(name: str, outcome: Outcome) -> str:
    return f"{name}: {outcome.kind}\n{outcome.detail}"


def test_fuzz_sample(worker: Worker) -> None:
    """Every case of the sample passes, and the sample exercises both sides of the property."""
    counts: Counter[str] = Counter()
    failures = []
    for index in range(COUNT):
        case = fuzz_case(SEED, index)
        outcome = worker.check(case.data, index)
        counts[outcome.kind] += 1
        counts["gradients"] += outcome.gradients
        if outcome.failed:
            failures.append(f"{_report(case.name, outcome)}\n--- program ({case.origin}):\n"
                            f"{case.data.decode('utf-8', errors='replace')}")
    assert not failures, "\n\n".join(failures)
    assert counts["matched"] >= COUNT // 10 and counts["gradients"] > 0, counts
    assert counts["refused"] >= COUNT // 2, counts


@pytest.mark.parametrize("path", [
    pytest.param(p, marks=pytest.mark.xfail(strict=True, reason=OPEN_BUGS[p.stem])) if p.stem in OPEN_BUGS else p
    for p in REGRESSIONS], ids=[p.stem for p in REGRESSIONS])
def test_fuzz_regression(worker: Worker, path: Path) -> None:
    """A program that once failed the property (its `.txt` says how) now passes it."""
    found = re.fullmatch(r"[a-z-]+-\d+-(\d+)", path.stem)
    outcome = worker.check(path.read_bytes(), int(found.group(1)) if found else 0)
    assert not outcome.failed, _report(path.name, outcome)


def test_mutations_cover_the_targeted_kinds() -> None:
    """The mutator makes wrong and huge dimensions, unknown names and invalid UTF-8 (checked on
    the mutants' text, so no compile is needed)."""
    rng = random.Random(5)
    texts = [mutate_bytes(generate(seed).text, rng) for seed in range(300)]
    assert any(b"\xff" in t or not _is_utf8(t) for t in texts), "no invalid UTF-8"
    assert any(str(h).encode() in t for t in texts for h in HUGE), "no huge dimension"
    assert any(re.search(rb"f64\[[^\]]*\b0\b", t) for t in texts), "no zero dimension"
    assert any(b"undefined_name" in t for t in texts), "no unknown name"


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
