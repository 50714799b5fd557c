"""Time per training step of every example: mlc's compiled step against PyTorch eager.

    python benchmarks/training_step.py [--steps 20] [--repeats 5] [--models a,b]

Both sides run in this process on the same parameters and batch: mlc's `Trainer.step` (forward,
backward and Adam update in one generated C function) and the same model in eager PyTorch
(`mlc.testing.torch_reference.TorchModel`, autograd, `torch.optim.Adam`). Each repeat times
`--steps` steps; the table shows the median repeat per step, and the ratio torch / mlc (above 1:
mlc is faster).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

import mlc
from timing import median_seconds
from mlc.testing.torch_reference import TorchModel

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def batch_for(prog: mlc.Program, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Inputs of the right shapes: one-hot rows for labels (`y`), uniform [0, 1) elsewhere."""
    batch = {}
    for name, (shape, dtype) in prog.inputs.items():
        if name == "y":
            batch[name] = np.eye(shape[-1], dtype=dtype)[rng.integers(0, shape[-1], size=shape[0])]
        else:
            batch[name] = rng.uniform(0.0, 1.0, size=shape).astype(dtype)
    return batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--models", default="")
    args = parser.parse_args()
    wanted = set(filter(None, args.models.split(",")))
    print(f"Adam, lr 1e-3; ms per step, median of {args.repeats} x {args.steps} steps; torch threads {torch.get_num_threads()}")
    print(f"{'model':24s}{'mlc ms':>10s}{'torch ms':>10s}{'torch/mlc':>11s}")
    for path in sorted(EXAMPLES.glob("*.mlc")):
        if wanted and path.stem not in wanted:
            continue
        source = path.read_text()
        prog = mlc.compile(source)
        trainer = prog.trainer("adam", lr=1e-3)
        params = prog.init_params(seed=0)
        batch = batch_for(prog, np.random.default_rng(0))
        mlc_s = median_seconds(lambda: trainer.step(params, batch), args.repeats, args.steps)

        reference = TorchModel.from_source(source)
        leaves = {k: torch.tensor(v, requires_grad=True) for k, v in prog.init_params(seed=0).items()}
        tensors = {k: torch.from_numpy(v) for k, v in batch.items()}
        optimizer = torch.optim.Adam(leaves.values(), lr=1e-3)
        loss_name = prog.outputs[0]

        def torch_step() -> None:
            optimizer.zero_grad()
            reference({**leaves, **tensors})[loss_name].backward()
            optimizer.step()

        torch_s = median_seconds(torch_step, args.repeats, args.steps)
        print(f"{path.stem:24s}{mlc_s * 1e3:10.2f}{torch_s * 1e3:10.2f}{torch_s / mlc_s:10.2f}x", flush=True)


if __name__ == "__main__":
    main()
