"""`torch.compile(backend="mlc")` against eager PyTorch and Inductor on the model zoo of the
backend's tests (tests/torch_zoo.py), in one process with the same threads.

For each model and batch: a training step (forward, backward, SGD with momentum) and a
forward under no_grad, as milliseconds per call (the median of `--runs` runs, each the mean of
`--iters` calls, the three contenders interleaved run by run), the ratios eager/mlc and
inductor/mlc, and the first call's time (compilation) of mlc and Inductor. mlc's first call
runs the quick tier of a large program (`mlc.backends.c.tiers`); the timed calls run after its
optimised build.

    .venv/bin/python benchmarks/torch_backend.py [--models lenet5,resnet] [--batches 1,8,64]
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from torch_zoo import ZOO  # noqa: E402

from mlc.backends.c.tiers import wait_for_optimised_builds  # noqa: E402

Step = Callable[[], object]


def training_step(model: Callable, params: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> Step:
    opt = torch.optim.SGD(params.parameters(), lr=0.01, momentum=0.9)

    def step() -> object:
        loss, _ = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    return step


def forward(model: Callable, x: torch.Tensor, y: torch.Tensor) -> Step:
    def run() -> object:
        with torch.no_grad():
            return model(x, y)

    return run


def first_call(step: Step) -> float:
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def measure(steps: dict[str, Step], runs: int, iters: int) -> dict[str, float]:
    """Median milliseconds per call of each step, the steps interleaved run by run."""
    for step in steps.values():
        for _ in range(3):
            step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(runs):
        for name, step in steps.items():
            start = time.perf_counter()
            for _ in range(iters):
                step()
            times[name].append((time.perf_counter() - start) / iters * 1e3)
    return {name: statistics.median(t) for name, t in times.items()}


def contenders(name: str, batch: int, mode: str) -> tuple[dict[str, Step], dict[str, float]]:
    torch._dynamo.reset()  # Dynamo keeps 8 graphs per function: past that it runs eager, silently
    torch.manual_seed(0)
    eager = ZOO[name]()
    if mode == "forward":
        eager.eval()
    x, y = ZOO[name].inputs(batch, torch.float32)
    models = {"eager": eager, "inductor": copy.deepcopy(eager), "mlc": copy.deepcopy(eager)}
    compiled = {"eager": eager, "inductor": torch.compile(models["inductor"]),
                "mlc": torch.compile(models["mlc"], backend="mlc", options={"fallback": "error"})}
    steps = {k: training_step(compiled[k], models[k], x, y) if mode == "train" else forward(compiled[k], x, y)
             for k in models}
    firsts = {k: first_call(steps[k]) for k in ("inductor", "mlc")}
    wait_for_optimised_builds()  # the timed calls run mlc's optimised libraries, not the quick tier
    return steps, firsts


def python_overhead(name: str, batch: int, runs: int, iters: int) -> tuple[float, float, float]:
    """(µs of a compiled forward call under no_grad, µs of its C function within that call, µs
    of the same call through a backend that returns its outputs at once): the first less the
    second is the Python around one call, the third is Dynamo's part of it (its guards, the
    module call), which any backend pays."""
    from mlc.backends.c.runtime import CFunction

    torch._dynamo.reset()
    torch.manual_seed(0)
    model = ZOO[name]().eval()
    x, y = ZOO[name].inputs(batch, torch.float32)
    call = forward(torch.compile(model, backend="mlc", options={"fallback": "error"}), x, y)
    call()
    wait_for_optimised_builds()

    def answer_at_once(gm: torch.fx.GraphModule, example_inputs: list) -> Callable:
        results = gm(*example_inputs)
        return lambda *args: results

    dynamo = forward(torch.compile(copy.deepcopy(model), backend=answer_at_once), x, y)
    c_seconds: list[float] = []
    original = CFunction.call_slots

    def timed(self: CFunction, slots: object) -> None:
        start = time.perf_counter()
        original(self, slots)  # type: ignore[arg-type]
        c_seconds.append(time.perf_counter() - start)

    CFunction.call_slots = timed  # type: ignore[method-assign]
    try:  # the C time inside the timed calls themselves: run apart, hot in cache, it is less
        ms = measure({"call": call, "dynamo": dynamo}, runs, iters)
    finally:
        CFunction.call_slots = original  # type: ignore[method-assign]
    return ms["call"] * 1e3, statistics.median(c_seconds) * 1e6, ms["dynamo"] * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(ZOO))
    parser.add_argument("--batches", default="1,8,64")
    parser.add_argument("--modes", default="overhead,train,forward")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--warm-cache", action="store_true",
                        help="keep mlc's and Inductor's build caches (first calls then load)")
    args = parser.parse_args()
    if not args.warm_cache:  # first calls compile, as on a fresh machine: mlc's and Inductor's caches both empty
        os.environ["MLC_CACHE_DIR"] = tempfile.mkdtemp(prefix="mlc-bench-cache-")
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="inductor-bench-cache-")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; ms per call, median of {args.runs} runs of "
          f"{args.iters}")
    if "overhead" in args.modes.split(","):
        print(f"{'model':<12} {'batch':>5} {'call us':>9} {'C us':>9} {'python us':>10} {'dynamo us':>10} "
              f"{'mlc us':>8}")
        for name in args.models.split(","):
            call, c, dynamo = python_overhead(name, 1, args.runs, args.iters * 10)
            print(f"{name:<12} {1:>5} {call:>9.1f} {c:>9.1f} {call - c:>10.1f} {dynamo:>10.1f} {call - c - dynamo:>8.1f}",
                  flush=True)
    modes = [m for m in args.modes.split(",") if m != "overhead"]
    if modes:
        print(f"{'model':<12} {'mode':<8} {'batch':>5} {'eager':>8} {'inductor':>9} {'mlc':>8} {'eager/mlc':>10} "
              f"{'ind/mlc':>8} {'mlc 1st s':>10} {'ind 1st s':>10}")
    for name in args.models.split(","):
        for mode in modes:
            for batch in (int(b) for b in args.batches.split(",")):
                steps, firsts = contenders(name, batch, mode)
                ms = measure(steps, args.runs, args.iters)
                print(f"{name:<12} {mode:<8} {batch:>5} {ms['eager']:>8.3f} {ms['inductor']:>9.3f} {ms['mlc']:>8.3f} "
                      f"{ms['eager'] / ms['mlc']:>9.2f}x {ms['inductor'] / ms['mlc']:>7.2f}x {firsts['mlc']:>10.2f} "
                      f"{firsts['inductor']:>10.2f}", flush=True)


if __name__ == "__main__":
    main()
