"""Compile time of every example, cold (empty cache) and cached, with where the cold time goes.

    python benchmarks/compile_times.py [--repeats 3]

"cold" is `mlc.compile(path)` from text to a loaded library with an empty cache directory;
"cached" is the same call again in the same process. The stage columns time the same work done
step by step (frontend, pass pipeline, C emission, C compiler). Medians over the repeats.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def measure(path: Path) -> dict[str, float]:
    import mlc
    from mlc.api import make_context, load_module, run_pipeline, select_model
    from mlc.backends.c.emitter import emit_c
    from mlc.backends.c.runtime import compile_c
    from mlc.passes.pipelines import DEFAULT_PIPELINE

    row: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as cache:
        os.environ["MLC_CACHE_DIR"] = cache
        t0 = time.perf_counter()
        mlc.compile(path)
        row["cold"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        mlc.compile(path)
        row["cached"] = time.perf_counter() - t0

    with tempfile.TemporaryDirectory() as cache:
        os.environ["MLC_CACHE_DIR"] = cache
        ctx = make_context()
        t0 = time.perf_counter()
        module = load_module(path, ctx)
        select_model(module, None)
        t1 = time.perf_counter()
        run_pipeline(module, DEFAULT_PIPELINE, ctx)
        t2 = time.perf_counter()
        source = emit_c(module)
        t3 = time.perf_counter()
        compile_c(source)
        t4 = time.perf_counter()
    row.update(frontend=t1 - t0, passes=t2 - t1, emit=t3 - t2, cc=t4 - t3, c_lines=source.count("\n"))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import mlc  # noqa: F401  (import time is not compile time)

    columns = ["cold", "cached", "frontend", "passes", "emit", "cc"]
    print(f"{'model':24s}" + "".join(f"{c:>10s}" for c in columns) + f"{'C lines':>9s}")
    for path in sorted(EXAMPLES.glob("*.mlc")):
        rows = [measure(path) for _ in range(args.repeats)]
        med = {c: statistics.median(r[c] for r in rows) for c in columns}
        cells = "".join(f"{med[c] * 1e3:9.1f}ms" if c != "cached" else f"{med[c] * 1e3:8.2f}ms" for c in columns)
        print(f"{path.stem:24s}{cells}{int(rows[0]['c_lines']):9d}")


if __name__ == "__main__":
    main()
