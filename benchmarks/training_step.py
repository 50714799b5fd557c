"""Time per training step of every example at several batch sizes: mlc against PyTorch eager and
torch.compile, in one process.

    python benchmarks/training_step.py [--batches 1,8,64] [--models a,b] [--steps 20] [--repeats 10]
                                       [--threads 2] [--no-compile]

All three run the same model (the example's source with its batch dimension replaced), the same
parameters, batch and optimizer (Adam, lr 1e-3), on `--threads` threads each:

- mlc: `Trainer.step` (forward, backward and update in one generated C function);
- eager: `mlc.testing.torch_reference.TorchModel` (plain PyTorch ops), autograd, `torch.optim.Adam`;
- compile: the same with the model function under `torch.compile` (Inductor; forward and
  backward compiled, the optimizer eager); compile time is reported apart and not in the step.

Each repeat times `--steps` steps after a warm-up; the table shows the median repeat per step,
and the speed-ups eager/mlc and compile/mlc (above 1: mlc is faster).
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

import numpy as np
import torch

import mlc
from timing import median_seconds
from mlc.testing.torch_reference import TorchModel

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def with_batch(source: str, batch: int) -> str:
    """The model with the batch (first) dimension of every input replaced."""
    return re.sub(r"(^\s*input\s+\w+\s*:\s*f(?:32|64)\[)\s*\d+", lambda m: f"{m.group(1)}{batch}", source, flags=re.M)


def batch_for(prog: mlc.Program, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Inputs of the right shapes: one-hot rows for labels (`y`), uniform [0, 1) elsewhere."""
    batch = {}
    for name, (shape, dtype) in prog.inputs.items():
        if name == "y":
            batch[name] = np.eye(shape[-1], dtype=dtype)[rng.integers(0, shape[-1], size=shape[0])]
        else:
            batch[name] = rng.uniform(0.0, 1.0, size=shape).astype(dtype)
    return batch


def torch_step(source: str, prog: mlc.Program, batch: dict[str, np.ndarray], compiled: bool):
    """One PyTorch training step function on the model (and, compiled, its compile seconds)."""
    reference = TorchModel.from_source(source, training=True)  # train(): running statistics update
    leaves = {k: torch.tensor(v, requires_grad=k in prog.params) for k, v in prog.init_params(seed=0).items()}
    tensors = {k: torch.from_numpy(v) for k, v in batch.items()}
    optimizer = torch.optim.Adam([v for k, v in leaves.items() if k in prog.params], lr=1e-3)
    loss_name = prog.outputs[0]
    def forward(args: dict[str, torch.Tensor]) -> torch.Tensor:
        return reference(args)[loss_name]

    if compiled:
        torch._dynamo.reset()  # a fresh compile per model and batch (not a recompile of the last)
        forward = torch.compile(forward)

    def step() -> None:
        optimizer.zero_grad()
        forward({**leaves, **tensors}).backward()
        optimizer.step()

    start = time.perf_counter()
    step()
    return step, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", default="1,8,64")
    parser.add_argument("--models", default="")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-compile", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    mlc.set_num_threads(args.threads)
    wanted = set(filter(None, args.models.split(",")))
    batches = [int(b) for b in args.batches.split(",")]
    print(f"Adam, lr 1e-3; ms per step, median of {args.repeats} x {args.steps} steps; {args.threads} threads each\n")
    print("| model | batch | mlc ms | eager ms | compile ms | eager / mlc | compile / mlc | mlc compile s | torch.compile s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for path in sorted(EXAMPLES.glob("*.mlc")):
        if wanted and path.stem not in wanted:
            continue
        for size in batches:
            source = with_batch(path.read_text(), size)
            start = time.perf_counter()
            prog = mlc.compile(source)
            trainer = prog.trainer("adam", lr=1e-3)
            mlc_compile = time.perf_counter() - start
            params = prog.init_params(seed=0)
            batch = batch_for(prog, np.random.default_rng(0))
            mlc_s = median_seconds(lambda: trainer.step(params, batch), args.repeats, args.steps)
            eager, _ = torch_step(source, prog, batch, compiled=False)
            eager_s = median_seconds(eager, args.repeats, args.steps)
            cells = [path.stem, str(size), f"{mlc_s * 1e3:.3f}", f"{eager_s * 1e3:.3f}"]
            if args.no_compile:
                cells += ["-", f"{eager_s / mlc_s:.2f}x", "-", f"{mlc_compile:.1f}", "-"]
            else:
                compiled, compile_s = torch_step(source, prog, batch, compiled=True)
                compiled_s = median_seconds(compiled, args.repeats, args.steps)
                cells += [f"{compiled_s * 1e3:.3f}", f"{eager_s / mlc_s:.2f}x", f"{compiled_s / mlc_s:.2f}x",
                          f"{mlc_compile:.1f}", f"{compile_s:.1f}"]
            print("| " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
