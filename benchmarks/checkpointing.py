"""Memory against recomputation on a 16-block chain: mlc-checkpoint next to PyTorch's checkpointing.

The model (the same in both): `h = x @ w_k; h = tanh(h) * sigmoid(h) + h` for k = 1..16, loss
`mean(h * h)`, gradients of every weight. At budgets of 100%, 50% and 25% of each system's own
keep-all figure this prints, per configuration, the peak memory, the recomputed multiply-adds and
the forward+backward time (median of `--repeats` runs after warm-up, 2 threads for PyTorch; mlc's
C is single-threaded):

- mlc: `grad_program(budget="P%")`; memory = the arena the runtime allocates (every value the
  step computes; parameters, inputs and gradients of the weights are the caller's); recompute =
  `memory_report()["recompute_macs"]` (iteration points of recomputed ops: M*N*K for a matmul, one
  per element for the rest); solve = the time of the mlc-checkpoint pass alone.
- PyTorch (`benchmarks/torch_checkpointing.py`): eager, `torch.utils.checkpoint` with the
  cheapest uniform segmentation that fits, and AOTAutograd's min-cut partitioner with
  `activation_memory_budget`; saved bytes, the peak of live tensor bytes in fwd+bwd, and
  multiply-adds counted the same way as mlc's.

    .venv/bin/python benchmarks/checkpointing.py [--blocks 16 --d 128 --batch 64]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import mlc
from timing import median_seconds
from mlc.runtime.program import load_module, make_context, run_pipeline
from mlc.passes.checkpoint import CheckpointPass


def chain_source(blocks: int, d: int, batch: int) -> str:
    """The benchmark's chain in the mlc language."""
    lines = [f"model chain{blocks} {{", f"  input  x: f32[{batch}, {d}]"]
    lines += [f"  param  w{k}: f32[{d}, {d}] = glorot" for k in range(1, blocks + 1)]
    lines.append("  h = x")
    for k in range(1, blocks + 1):
        lines += [f"  h = matmul(h, w{k})", "  h = tanh(h) * sigmoid(h) + h"]
    lines += ["  loss = mean(h * h)", "  output loss", "}"]
    return "\n".join(lines)


def solve_seconds(source: str, budget: str) -> float:
    """Wall time of mlc-checkpoint alone on the differentiated chain."""
    ctx = make_context()
    module = load_module(source, ctx)
    run_pipeline(module, "mlc-lower-graph,mlc-autodiff,mlc-scatter-to-gather", ctx)
    start = time.perf_counter()
    CheckpointPass(budget=budget).apply(ctx, module)
    return time.perf_counter() - start


def measure_mlc(blocks: int, d: int, batch: int, budgets: tuple[float | int, ...], repeats: int) -> list[dict]:
    """One row per budget: a share of keep-all (float) or bytes (int)."""
    source = chain_source(blocks, d, batch)
    prog = mlc.compile(source)
    rng = np.random.default_rng(0)
    params = {k: (rng.standard_normal(shape) / np.sqrt(d)).astype(dtype) for k, (shape, dtype) in prog.params.items()}
    inputs = {"x": rng.standard_normal((batch, d)).astype(np.float32)}
    rows, reference = [], None
    for budget in budgets:
        text = str(budget) if isinstance(budget, int) else f"{budget * 100:g}%"
        variant = prog.grad_program(budget=text)
        report = variant.memory_report()
        _, grads = prog.grad(params, inputs, budget=text)
        reference = reference or grads
        assert all(np.array_equal(grads[k], reference[k]) for k in reference), "gradients differ from keep-all"
        seconds = median_seconds(lambda: variant.run(params, inputs), repeats=repeats)
        rows.append({"config": f"mlc budget={text}", "budget": budget, "peak_bytes": report["arena"],
                     "recompute_macs": report["recompute_macs"], "step_ms": seconds * 1e3,
                     "solve_ms": solve_seconds(source, text) * 1e3})
    return rows


def kib(n: float) -> str:
    return f"{n / 1024:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=16)
    parser.add_argument("--d", type=int, default=128)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    budgets = (1.0, 0.5, 0.25)
    from torch_checkpointing import measure_torch

    ours = measure_mlc(args.blocks, args.d, args.batch, budgets, args.repeats)
    theirs = measure_torch(args.blocks, args.d, args.batch, budgets, args.repeats)
    print(f"chain of {args.blocks} blocks, d={args.d}, batch={args.batch}; memory in KiB, recompute in Mmac\n")
    print("| budget | config | peak KiB | saved KiB | recompute Mmac | step ms | fits | solve ms |")
    print("|---|---|---|---|---|---|---|---|")
    for budget in budgets:
        for row in [r for r in ours if r["budget"] == budget] + [r for r in theirs if r["budget"] == budget]:
            saved = kib(row["saved_bytes"]) if "saved_bytes" in row else "-"
            solve = f"{row['solve_ms']:.0f}" if "solve_ms" in row else "-"
            fits = "yes" if row.get("fits", True) else "no"
            print(f"| {budget:.0%} | {row['config']} | {kib(row['peak_bytes'])} | {saved} | "
                  f"{row['recompute_macs'] / 1e6:.2f} | {row['step_ms']:.2f} | {fits} | {solve} |")
    print("\nratios at each budget (PyTorch / mlc): peak memory, recomputed multiply-adds")
    for budget in budgets:
        mine = next(r for r in ours if r["budget"] == budget)
        for row in [r for r in theirs if r["budget"] == budget and not r["config"].startswith("eager")]:
            rec = "n/a (mlc recomputes nothing)" if mine["recompute_macs"] == 0 else f"{row['recompute_macs'] / mine['recompute_macs']:.2f}x"
            print(f"  {budget:.0%} {row['config']}: peak {row['peak_bytes'] / mine['peak_bytes']:.2f}x, recompute {rec}")
    print("\nat equal memory: mlc given each PyTorch configuration's peak as its budget in bytes")
    print("| PyTorch config | peak KiB | PyTorch recompute Mmac | mlc peak KiB | mlc recompute Mmac |")
    print("|---|---|---|---|---|")
    peaks = sorted({r["peak_bytes"] for r in theirs}, reverse=True)
    matched = {r["budget"]: r for r in measure_mlc(args.blocks, args.d, args.batch, tuple(peaks), 3)}
    for row in {r["config"]: r for r in theirs}.values():
        mine = matched[row["peak_bytes"]]
        print(f"| {row['config']} | {kib(row['peak_bytes'])} | {row['recompute_macs'] / 1e6:.2f} | "
              f"{kib(mine['peak_bytes'])} | {mine['recompute_macs'] / 1e6:.2f} |")


if __name__ == "__main__":
    main()
