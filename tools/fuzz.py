"""Fuzz mlc: random and mutated programs through the fuzz property (tests/fuzz_property.py).

    python tools/fuzz.py --count 1000 --seed 7 --jobs 2

Case `i` of run `S` is `mutations.fuzz_case(S, i)` (a generated model or a fixed program, mutated
or not), checked in a worker process with a per-program time limit: it must compile, run and
match PyTorch (outputs and gradients), or be refused with a located CompileError. Each failing
program is written to tests/data/fuzz_regressions/<kind>-<seed>-<index>.mlc (with the failure in
a `.txt` beside it), where tests/test_fuzz.py runs it as a regression case. C builds go to a
temporary MLC_CACHE_DIR, not the user's cache, unless one is set; mlc's own eviction
(MLC_CACHE_MAX, 1 GiB by default) bounds its size.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from fuzz_property import FAILURES, PASSES, TIMEOUT_S, Outcome, Worker  # noqa: E402
from mutations import FuzzCase, fuzz_case  # noqa: E402

REGRESSIONS = ROOT / "tests" / "data" / "fuzz_regressions"


def save_failure(case: FuzzCase, outcome: Outcome, folder: Path = REGRESSIONS) -> Path:
    """The failing program as a regression file, and what went wrong beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{outcome.kind}-{case.seed}-{case.index}.mlc"
    path.write_bytes(case.data)
    path.with_suffix(".txt").write_text(f"{case.origin}\n{outcome.kind}\n{outcome.detail}\n")
    return path


def table(counts: Counter[str], total: int, elapsed: float) -> str:
    rows = [("generated", total), ("compiled and matched", counts["matched"]),
            ("  of which gradients compared", counts["gradients"]),
            ("  output and gradient elements excused at a kink", counts["kinks"]),
            ("compiled, too large to run", counts["too-big"]), ("refused with a located error", counts["refused"]),
            ("refused: not one model (ValueError)", counts["model-choice"]),
            ("failures", sum(counts[k] for k in FAILURES))]
    rows += [(f"  {kind}", counts[kind]) for kind in FAILURES]
    width = max(len(name) for name, _ in rows)
    lines = [f"{name:<{width}}  {value:>8}" for name, value in rows]
    lines.append(f"{'rate':<{width}}  {total / elapsed if elapsed else 0:>8.2f} programs/s ({elapsed:.0f} s)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100, help="programs to check")
    parser.add_argument("--seed", type=int, default=0, help="the run's seed (cases are seed-index)")
    parser.add_argument("--start", type=int, default=0, help="first case index (to split a run)")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes")
    parser.add_argument("--timeout", type=float, default=TIMEOUT_S, help="seconds per program")
    parser.add_argument("--no-save", action="store_true", help="do not write failing programs")
    args = parser.parse_args(argv)

    own_cache = "MLC_CACHE_DIR" not in os.environ
    cache = Path(tempfile.mkdtemp(prefix="mlc-fuzz-cache-")) if own_cache else Path(os.environ["MLC_CACHE_DIR"])
    os.environ["MLC_CACHE_DIR"] = str(cache)  # inherited by the workers
    counts: Counter[str] = Counter()
    lock = threading.Lock()
    local = threading.local()
    workers: list[Worker] = []
    done = [0]
    started = time.monotonic()

    def check(index: int) -> None:
        if not hasattr(local, "worker"):
            local.worker = Worker(args.timeout)
            with lock:
                workers.append(local.worker)
        case = fuzz_case(args.seed, index)
        outcome = local.worker.check(case.data, index)
        with lock:
            counts[outcome.kind] += 1
            counts["gradients"] += outcome.gradients
            counts["kinks"] += outcome.kinks
            done[0] += 1
            if outcome.failed:
                where = "" if args.no_save else f" -> {save_failure(case, outcome)}"
                print(f"[{case.name}] {outcome.kind} ({case.origin}){where}\n  {outcome.detail.splitlines()[-1:]}",
                      flush=True)
            if done[0] % 100 == 0:
                rate = done[0] / (time.monotonic() - started)
                summary = " ".join(f"{k}={counts[k]}" for k in (*PASSES, *FAILURES) if counts[k])
                print(f"{done[0]}/{args.count} ({rate:.1f}/s) {summary}", flush=True)

    try:
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            list(pool.map(check, range(args.start, args.start + args.count)))
    finally:
        for worker in workers:
            worker.close()
        if own_cache:
            shutil.rmtree(cache, ignore_errors=True)
    print(table(counts, done[0], time.monotonic() - started))
    return 1 if any(counts[k] for k in FAILURES) else 0


if __name__ == "__main__":
    sys.exit(main())
