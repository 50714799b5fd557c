"""Compile every example model and run it on real data (scikit-learn's 8x8 digits).

    python examples/demo.py                 # all models in examples/*.mlc
    python examples/demo.py vae lenet5      # some of them
    python examples/demo.py --cached        # reuse compiled libraries from earlier runs

For each model this prints its outputs (name, shape, mean/std/min/max), the cold compile time of
`mlc.compile` (xDSL passes + C emission + the C compiler: the demo points the runtime's library
cache, `MLC_CACHE_DIR`, at an empty temporary folder unless `--cached` is given) and the run time
of `Program.run`.

Only forward evaluation for now (training will be added when the optimizer lands). Inputs are
chosen from each input's name and shape:
- `y`: one-hot labels;
- `eps`: standard-normal noise (VAEs), fixed seed;
- `mask`: Bernoulli(0.75) keep-masks (denoising autoencoder), fixed seed;
- anything else: the digit images scaled to [0, 1], as NHWC images, flattened to [N, 64], or
  resized with bilinear interpolation to the model's height and width (28x28 for LeNet-5).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

import mlc

EXAMPLES = Path(__file__).resolve().parent
SEED = 0
RUNS = 5


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """Images [n, 8, 8, 1] in [0, 1] and integer labels [n]."""
    from sklearn.datasets import load_digits as sklearn_digits

    digits = sklearn_digits()
    images = (digits.images / 16.0).astype(np.float32)[..., None]
    return images, digits.target.astype(np.int64)


def resize_bilinear(images: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize NHWC images with bilinear interpolation (half-pixel centres, edges clamped).

    Output pixel i samples the input at s = (i + 0.5) * H_in / H_out - 0.5, clamped to
    [0, H_in - 1], and mixes the two neighbours floor(s) and floor(s) + 1 with weights
    1 - (s - floor(s)) and s - floor(s); the same along the width. This is what
    PIL and torch (align_corners=False, no antialiasing) do when enlarging.
    """

    def axis(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        s = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0.0, n_in - 1)
        lo = np.floor(s).astype(np.int64)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, (s - lo).astype(images.dtype)

    r0, r1, rw = axis(height, images.shape[1])
    c0, c1, cw = axis(width, images.shape[2])
    rows = images[:, r0] * (1 - rw)[None, :, None, None] + images[:, r1] * rw[None, :, None, None]
    return rows[:, :, c0] * (1 - cw)[None, None, :, None] + rows[:, :, c1] * cw[None, None, :, None]


def numpy_dtype(dtype: object) -> np.dtype:
    return np.dtype({"f32": np.float32, "f64": np.float64}.get(str(dtype), dtype))  # type: ignore[arg-type]


def make_inputs(prog: mlc.Program, images: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(SEED)
    inputs: dict[str, np.ndarray] = {}
    for name, (shape, dtype) in prog.inputs.items():
        shape = tuple(int(d) for d in shape)
        batch = shape[0]
        if name == "y":
            value = np.eye(shape[1])[labels[:batch]]
        elif name == "eps":
            value = rng.standard_normal(shape)
        elif name == "mask":
            value = rng.random(shape) < 0.75
        else:
            x = images[:batch]
            if len(shape) == 4 and shape[1:3] != x.shape[1:3]:
                x = resize_bilinear(x, shape[1], shape[2])
            value = x.reshape(shape)
        inputs[name] = np.ascontiguousarray(value, dtype=numpy_dtype(dtype))
    return inputs


def describe(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def demo(path: Path, images: np.ndarray, labels: np.ndarray, compile_kind: str) -> None:
    print(f"== {path.stem} ({path.relative_to(EXAMPLES.parent)})")

    start = time.perf_counter()
    prog = mlc.compile(str(path))
    compile_s = time.perf_counter() - start

    params = prog.init_params(seed=SEED)
    n_values = sum(int(np.prod(shape)) for shape, _ in prog.params.values())
    print("   inputs: " + ", ".join(f"{n} {describe(tuple(s))}" for n, (s, _) in prog.inputs.items()))
    print(f"   params: {len(prog.params)} tensors, {n_values:,} values")

    inputs = make_inputs(prog, images, labels)
    start = time.perf_counter()
    outs = prog.run(params, inputs)
    first_s = time.perf_counter() - start
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        prog.run(params, inputs)
        times.append(time.perf_counter() - start)

    print(
        f"   compile {compile_s:.2f} s ({compile_kind}); run {1e3 * first_s:.2f} ms first, "
        f"{1e3 * float(np.median(times)):.2f} ms median of {RUNS}"
    )
    width = max(len(name) for name in prog.outputs)
    for name in prog.outputs:
        value = np.asarray(outs[name])
        stats = (
            f"mean {value.mean():+.4f}  std {value.std():.4f}  min {value.min():+.4f}  max {value.max():+.4f}"
        )
        print(f"   {name.ljust(width)}  {describe(value.shape):<16} {stats}")
    loss = np.asarray(outs[prog.outputs[0]])
    if loss.shape != () or not np.isfinite(loss):
        raise RuntimeError(f"the first output should be a finite scalar loss, got shape {loss.shape}: {loss}")


def main(argv: list[str]) -> int:
    cached = "--cached" in argv
    wanted = {a for a in argv if a != "--cached"}
    paths = sorted(p for p in EXAMPLES.glob("*.mlc") if not wanted or p.stem in wanted)
    unknown = wanted - {p.stem for p in paths}
    if unknown:
        print(f"unknown example(s): {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="mlc-demo-cache-") as cold_cache:
        if not cached:
            os.environ["MLC_CACHE_DIR"] = cold_cache
        return run_all(paths, "library cache allowed" if cached else "cold")


def run_all(paths: list[Path], compile_kind: str) -> int:
    images, labels = load_digits()
    print(f"scikit-learn digits: {len(images)} images of 8x8, {len(paths)} models\n")
    failed: list[str] = []
    for path in paths:
        try:
            demo(path, images, labels, compile_kind)
        except Exception as e:  # keep going: show every model's state
            failed.append(path.stem)
            if type(e).__name__ == "CompileError":  # a user error: its text says where and what
                print(str(e))
            else:
                traceback.print_exc(file=sys.stdout)
        print()
    if failed:
        print(f"FAILED: {', '.join(failed)}")
        return 1
    print(f"all {len(paths)} models compiled and ran")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
