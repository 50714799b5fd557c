"""Compile time of every example's forward program and Adam training step: cold, cached, and where
the cold time goes.

    python benchmarks/compile_times.py [--repeats 3] [--models a,b] [--passes]

"cold" is the API call from text to a loaded library with an empty cache directory
(`mlc.compile(text)`, or `Program.trainer("adam").program` for the step); "cached" the same call
again in a new Program (the cache hit reads the library and its record); "tiered" the cold call
with `tiered=True`, until the program runs (on the quick -Og build, when its C is large enough:
`mlc.backends.c.tiers`). The stage columns time the same work step by step: frontend, passes
(the pipeline on the entry function, as the API runs it), C emission, the C compiler at -O2
("cc") and at -Og ("cc -Og"). `--passes` adds each pass's share, what
`mlc-opt --time-passes` prints. Medians over the repeats.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def measure(path: Path, kind: str) -> dict[str, float]:
    import xdsl.passes

    import mlc
    from mlc.runtime.program import build_program, load_module, make_context, select_model
    from mlc.backends.c.emitter import emit_c
    from mlc.backends.c.runtime import build_flags, compile_c, unit_count
    from mlc.backends.c.tiers import quick_flags, wait_for_optimised_builds
    from mlc.passes.pipelines import DEFAULT_PIPELINE, training_pipeline
    from mlc.universe import MLC_UNIVERSE
    from xdsl.transforms import get_all_passes

    pipeline, suffix = (DEFAULT_PIPELINE, "") if kind == "forward" else (training_pipeline("adam"), "_step")
    text = path.read_text()
    row: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as cache:
        os.environ["MLC_CACHE_DIR"] = cache
        t0 = time.perf_counter()
        build_program(text, None, pipeline, suffix)
        row["cold"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        build_program(text, None, pipeline, suffix)
        row["cached"] = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as cache:
        os.environ["MLC_CACHE_DIR"] = cache
        t0 = time.perf_counter()
        build_program(text, None, pipeline, suffix, tiered=True)
        row["tiered"] = time.perf_counter() - t0
        wait_for_optimised_builds()  # not timed: it compiles in the background

    with tempfile.TemporaryDirectory() as cache:
        os.environ["MLC_CACHE_DIR"] = cache
        ctx = make_context()
        t0 = time.perf_counter()
        module = load_module(text, ctx)
        name = select_model(module, None).sym_name.data + suffix
        t1 = time.perf_counter()
        available = {**get_all_passes(), **MLC_UNIVERSE.all_passes}
        for spec in xdsl.passes.parse_pipeline(pipeline):
            start = time.perf_counter()
            available[spec.name]().from_pass_spec(spec).apply(ctx, module)
            row[spec.name] = row.get(spec.name, 0.0) + time.perf_counter() - start
            for op in [o for o in module.ops if o.sym_name.data != name] if any(o.sym_name.data == name for o in module.ops) else []:
                module.body.block.detach_op(op)
        t2 = time.perf_counter()
        source = emit_c(module, units=unit_count())  # as the API emits it
        t3 = time.perf_counter()
        compile_c(source)
        t4 = time.perf_counter()
        compile_c(source, flags=quick_flags(build_flags()))
        row["cc -Og"] = time.perf_counter() - t4
    del mlc
    row.update(frontend=t1 - t0, passes=t2 - t1, emit=t3 - t2, cc=t4 - t3, c_lines=source.count("\n"))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", default="")
    parser.add_argument("--passes", action="store_true", help="also the time of each pass")
    args = parser.parse_args()
    import mlc  # noqa: F401  (import time is not compile time)

    wanted = set(filter(None, args.models.split(",")))
    columns = ["cold", "cached", "tiered", "frontend", "passes", "emit", "cc", "cc -Og"]
    print(f"medians of {args.repeats}; ms\n")
    print("| model | program | " + " | ".join(columns) + " | C lines |" + (" passes (ms) |" if args.passes else ""))
    print("|---|---|" + "---|" * len(columns) + "---|" + ("---|" if args.passes else ""))
    for path in sorted(EXAMPLES.glob("*.mlc")):
        if wanted and path.stem not in wanted:
            continue
        for kind in ("forward", "step"):
            rows = [measure(path, kind) for _ in range(args.repeats)]
            med = {c: statistics.median(r[c] for r in rows) for c in rows[0]}
            cells = [f"{med[c] * 1e3:.1f}" if c != "cached" else f"{med[c] * 1e3:.2f}" for c in columns]
            extra = ""
            if args.passes:
                shares = {k: v for k, v in med.items() if k.startswith(("mlc-", "cse", "canonicalize"))}
                extra = " " + ", ".join(f"{k} {v * 1e3:.0f}" for k, v in shares.items()) + " |"
            print(f"| {path.stem} | {kind} | " + " | ".join(cells) + f" | {int(med['c_lines'])} |" + extra, flush=True)


if __name__ == "__main__":
    main()
