"""Binary layers and XNOR-Net end to end: mlc's bit-packed kernels against its float lowering and PyTorch fp32.

    python benchmarks/binary.py [--repeats 15] [--threads 1 2]

Layers: each `binconv2d(mode=xnor)` (3x3 `same`, pad_value +1 and 0) or `bindense(mode=xnor)`
row is one whole program: the sign and packing of the input, the XOR/popcount sum
(`mlc-bitpack`), the K map (or β) and α. Columns:
- `frozen`: `mlc.freeze(program, params)`, as deployed: the weights' signs, packed words and α
  computed once (`mlc-split-params`), each call does the rest;
- `per call`: the plain program, which also packs the weights and computes α on every call (as a
  training step's forward must, its weights changing every step);
- `float frozen`: the same layer through mlc's float lowering (the pipeline without
  `mlc-bitpack`: a float conv on ±1 values), frozen too, so the two differ only in the kernel;
  checked bitwise equal to the bit kernel before timing;
- `torch`: PyTorch's fp32 `conv2d` / `linear` of the same shape (oneDNN; convs channels-last),
  which computes only the convolution.
XNOR-Net: `examples/xnor_net.mlc` at batch 1 and 32, its inference forward (bits and float,
each frozen and through `Program.run`, whose Python part is larger) and, at batch 32, its Adam
training step, bits against float. Times are medians of `--repeats` timings of 5
calls after a warm-up, in ms, in one process on the same threads; ratios are the other's time
over the frozen bit kernel's (above 1: the bit kernel is faster).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from timing import median_seconds

import mlc
import mlc.passes.pipelines as pipelines
from mlc.passes.pipelines import BITPACK, DEFAULT_PIPELINE

CONVS = [(1, 14, 256), (1, 28, 128), (1, 56, 64), (8, 14, 256)]  # (batch, size, channels in = out)
DENSES = [(1, 1024, 1024), (8, 1024, 1024)]  # (batch, in, out)
FLOAT_PIPELINE = DEFAULT_PIPELINE.replace(f"{BITPACK},", "")
XNOR_NET = Path(__file__).resolve().parents[1] / "examples" / "xnor_net.mlc"

CONV = """model layer {{
  input x: f32[{n}, {s}, {s}, {c}]
  param w: f32[3, 3, {c}, {c}] = glorot
  y = binconv2d(x, w, stride=1, padding=same, mode=xnor, pad_value={pad_value})
  output y
}}"""

DENSE = """model layer {{
  input x: f32[{n}, {i}]
  param w: f32[{i}, {o}] = glorot
  y = bindense(x, w, mode=xnor)
  output y
}}"""


def timed(fn, repeats: int) -> float:
    return median_seconds(fn, repeats, calls=5) * 1e3


def layer_row(label: str, source: str, torch_fn, repeats: int) -> list[str]:
    bits, floats = mlc.compile(source), mlc.compile(source, pipeline=FLOAT_PIPELINE)
    params = bits.init_params(0)
    spec = bits.signature.inputs[0]
    x = np.random.default_rng(0).standard_normal(spec.shape).astype(np.float32)
    frozen, frozen_floats = mlc.freeze(bits, params), mlc.freeze(floats, params)
    y = frozen.run({"x": x})["y"]
    assert y.tobytes() == frozen_floats.run({"x": x})["y"].tobytes() == bits.run(params, {"x": x})["y"].tobytes()
    fn_torch = torch_fn(x, params["w"])
    times = [timed(fn, repeats) for fn in (lambda: frozen.run({"x": x}), lambda: bits.run(params, {"x": x}),
                                           lambda: frozen_floats.run({"x": x}), fn_torch)]
    t_frozen, t_call, t_float, t_torch = times
    return [label, *(f"{t:.3f}" for t in times), f"{t_torch / t_frozen:.2f}", f"{t_torch / t_call:.2f}",
            f"{t_float / t_frozen:.2f}"]


def conv_torch(x: np.ndarray, w: np.ndarray):
    tx = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
    tw = torch.from_numpy(w).permute(3, 2, 0, 1).contiguous(memory_format=torch.channels_last)
    return lambda: F.conv2d(tx, tw, padding=1)


def dense_torch(x: np.ndarray, w: np.ndarray):
    tx, tw = torch.from_numpy(x), torch.from_numpy(np.ascontiguousarray(w.T))
    return lambda: F.linear(tx, tw)


def xnor_net_rows(repeats: int) -> list[list[str]]:
    rows = []
    for batch in (1, 32):
        source = XNOR_NET.read_text().replace("[32,", f"[{batch},")
        rng = np.random.default_rng(batch)
        data = {"x": rng.standard_normal((batch, 8, 8, 1)).astype(np.float32),
                "y": np.eye(10, dtype=np.float32)[rng.integers(0, 10, batch)]}
        bits, floats = mlc.compile(source), mlc.compile(source, pipeline=FLOAT_PIPELINE)
        params = bits.init_params(0)
        frozen, frozen_floats = mlc.freeze(bits, params), mlc.freeze(floats, params)
        assert frozen.run(data)["logits"].tobytes() == floats.run(params, data)["logits"].tobytes()
        t_frozen, t_float_frozen, t_call, t_float = (timed(fn, repeats) for fn in (
            lambda: frozen.run(data), lambda: frozen_floats.run(data), lambda: bits.run(params, data),
            lambda: floats.run(params, data)))
        rows.append([f"xnor_net b{batch} forward", f"{t_frozen:.3f}", f"{t_float_frozen:.3f}", f"{t_call:.3f}",
                     f"{t_float:.3f}", f"{t_float_frozen / t_frozen:.2f}", f"{t_float / t_call:.2f}"])
        if batch == 1:  # batch norm trains on more than one value per channel
            continue
        step_bits = bits.trainer("adam")
        saved, pipelines.BITPACK = pipelines.BITPACK, "dce"  # the training pipeline without mlc-bitpack
        try:
            step_floats = floats.trainer("adam")
        finally:
            pipelines.BITPACK = saved
        p_bits, p_floats = bits.init_params(0), bits.init_params(0)
        t_step_bits = timed(lambda: step_bits.step(p_bits, data), repeats)
        t_step_floats = timed(lambda: step_floats.step(p_floats, data), repeats)
        rows.append([f"xnor_net b{batch} Adam step", "", "", f"{t_step_bits:.3f}", f"{t_step_floats:.3f}", "",
                     f"{t_step_floats / t_step_bits:.2f}"])
    return rows


def table(header: list[str], rows: list[list[str]]) -> None:
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    for threads in args.threads:
        torch.set_num_threads(threads)
        mlc.set_num_threads(threads)
        print(f"\n{threads} thread(s); ms, medians of {args.repeats}\n")
        rows = []
        for n, size, channels in CONVS:
            for pad_value in (1, 0):
                rows.append(layer_row(f"conv {n}x{size}x{size} {channels}->{channels} pad {pad_value}",
                                      CONV.format(n=n, s=size, c=channels, pad_value=pad_value), conv_torch, args.repeats))
        for n, i, o in DENSES:
            rows.append(layer_row(f"dense {n}x{i} -> {o}", DENSE.format(n=n, i=i, o=o), dense_torch, args.repeats))
        table(["layer", "frozen", "per call", "float frozen", "torch", "torch/frozen", "torch/per call", "float/frozen"],
              rows)
        print()
        table(["program", "bits frozen", "float frozen", "bits", "float", "float/bits frozen", "float/bits"],
              xnor_net_rows(args.repeats))


if __name__ == "__main__":
    main()
