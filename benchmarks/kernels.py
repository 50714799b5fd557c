"""conv2d, conv2d_transpose and dense, forward and both gradients: mlc's scheduled C against PyTorch (oneDNN/MKL).

    python benchmarks/kernels.py [--repeats 10] [--threads 2] [--quick]

Each kernel is compiled on its own, as it appears in a training step: the forward from
`mlc-lower-graph`, the input and weight gradients from `mlc-autodiff`'s adjoints and
`mlc-scatter-to-gather`, all through the default schedule (`mlc-auto-schedule`) and lowering.
PyTorch runs `F.conv2d`, `torch.nn.grad.conv2d_input` / `conv2d_weight` (channels-last, its
fastest layout for these shapes) and `F.linear` with its gradients, in the same process, on the
same number of threads. Shapes: 3x3 `same` convolutions with C = F from 16 to 256 channels at
batch 1, 8 and 32; the transposed 3x3 stride-2 convolutions that upsample those inputs to twice
their size (padding 1, output padding 1), whose forward is a chain of gathers (one per stride
phase and their interleave) differentiated through the chain, against PyTorch's
`conv_transpose2d` and its backward (`aten.convolution_backward`); and dense layers. Columns: GFLOP/s (2 flops per multiply-add), medians of
`--repeats` timings after a warm-up, and mlc / PyTorch throughput (above 1: mlc is faster). mlc's
results are checked against PyTorch's before timing.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F
from xdsl.builder import ImplicitBuilder
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp, TensorType, f32

from timing import median_seconds

import mlc
from mlc.runtime.program import make_context, run_pipeline
from mlc.backends.c.runtime import compile_module
from mlc.dialects import ix, nn
from mlc.passes.autodiff import adjoint_of_read, total_adjoint
from mlc.passes.pipelines import LOWER_TO_C, SCHEDULE

CONVS = [  # (batch, size, channels)
    (1, 56, 16), (8, 56, 16), (32, 28, 16),
    (1, 56, 32), (8, 28, 32), (32, 28, 32),
    (1, 56, 64), (8, 28, 64), (32, 14, 64),
    (1, 28, 128), (8, 14, 128), (32, 14, 128),
    (1, 14, 256), (8, 14, 256), (32, 7, 256),
]
DENSES = [(1, 784, 256), (8, 784, 256), (32, 784, 256), (64, 512, 512), (256, 1024, 1024)]  # (batch, in, out)


def kernel_functions(forward: func.FuncOp, op: type) -> list[func.FuncOp]:
    """The forward and, for each operand, the gradient `d forward / d operand` as a function of
    (operands..., dy), in the form mlc-autodiff gives it."""
    core = next(o for o in forward.body.block.ops if isinstance(o, ix.ComputeOp) and o.reduction.data == "sum")
    found = [forward]
    for read, name in ((0, "dx"), (1, "dw")):
        types = [*forward.function_type.inputs, core.result.type]
        g = func.FuncOp(name, (types, []))
        args = g.body.block.args
        clone = core.clone(value_mapper=dict(zip(forward.body.block.args, args)))
        g.body.block.add_op(clone)
        with ImplicitBuilder(g.body):
            grad = adjoint_of_read(clone, read, args[-1], None)
            assert grad is not None
            func.ReturnOp(grad)
        if not clone.result.uses:  # the adjoint needs the forward's operands, not its result
            clone.detach()
            clone.erase()
        g.function_type = func.FunctionType.from_lists(types, [grad.type])
        found.append(g)
    return found


def chain_gradients(forward: func.FuncOp) -> list[func.FuncOp]:
    """Like `kernel_functions` for a forward that is a chain of compute ops (a transposed conv's
    phase gathers and their interleave): the adjoints propagated from the result back through
    every op, the contributions of several reads summed."""
    found = [forward]
    for operand, name in ((0, "dx"), (1, "dw")):
        types = [*forward.function_type.inputs, *forward.function_type.outputs]
        g = func.FuncOp(name, (types, []))
        args = g.body.block.args
        mapping = dict(zip(forward.body.block.args, args))
        ops = []
        for original in forward.body.block.ops:
            if isinstance(original, ix.ComputeOp):
                ops.append(original.clone(value_mapper=mapping))
                mapping[original.result] = ops[-1].result
                g.body.block.add_op(ops[-1])
        with ImplicitBuilder(g.body):
            adjoints = {ops[-1].result: [args[-1]]}
            for o in reversed(ops):
                if o.result not in adjoints:
                    continue
                dy = total_adjoint(adjoints[o.result], o.result)
                for k, read in enumerate(o.reads):
                    if read.value is args[operand] or read.value.owner in ops:
                        adjoints.setdefault(read.value, []).append(adjoint_of_read(o, k, dy, None))
            grad = total_adjoint(adjoints[args[operand]], args[operand])
            func.ReturnOp(grad)
        for o in reversed(ops):  # the adjoints of linear gathers need their operands, not their values
            if not o.result.uses:
                o.detach()
                o.erase()
        g.function_type = func.FunctionType.from_lists(types, [grad.type])
        found.append(g)
    return found


def compiled(functions: list[func.FuncOp]) -> dict:
    module = ModuleOp([f.clone() for f in functions])
    run_pipeline(module, f"mlc-scatter-to-gather,{SCHEDULE},{LOWER_TO_C}", make_context())
    return compile_module(module)


def graph_function(name: str, types: list[TensorType], build) -> func.FuncOp:
    f = func.FuncOp(name, (types, []))
    with ImplicitBuilder(f.body) as args:
        out = build(*args)
        func.ReturnOp(out)
    f.function_type = func.FunctionType.from_lists(types, [out.type])
    module = ModuleOp([f])
    run_pipeline(module, "mlc-lower-graph", make_context())
    return module.body.block.first_op  # pyright: ignore[reportReturnType]


def row(label: str, flops: float, ours: list[float], theirs: list[float]) -> str:
    cells = [label]
    for a, b in zip(ours, theirs):
        cells += [f"{flops / a / 1e9:.1f}", f"{flops / b / 1e9:.1f}", f"{b / a:.2f}"]
    return "| " + " | ".join(cells) + " |"


def bench_conv(n: int, h: int, c: int, repeats: int, rng: np.random.Generator, groups: int = 1) -> str:
    """3x3 `same` conv [n, h, h, c] -> [n, h, h, c] in `groups` groups (filters [3, 3, c / groups, c])."""
    types = [TensorType(f32, [n, h, h, c]), TensorType(f32, [3, 3, c // groups, c])]
    forward = graph_function("forward", types, lambda x, w: nn.Conv2DOp(x, w, padding=(1, 1, 1, 1), groups=groups).out)
    fns = compiled(kernel_functions(forward, nn.Conv2DOp))
    x = rng.standard_normal((n, h, h, c)).astype(np.float32)
    w = (rng.standard_normal((3, 3, c // groups, c)) / np.sqrt(9 * c // groups)).astype(np.float32)
    dy = rng.standard_normal((n, h, h, c)).astype(np.float32)
    y, dx, dw = np.empty_like(dy), np.empty_like(x), np.empty_like(w)
    ours = [median_seconds(lambda: fns["forward"](x, w, y), repeats),
            median_seconds(lambda: fns["dx"](x, w, dy, dx), repeats),
            median_seconds(lambda: fns["dw"](x, w, dy, dw), repeats)]
    tx = torch.from_numpy(x).permute(0, 3, 1, 2)  # channels-last memory, NCHW view
    tw = torch.from_numpy(w).permute(3, 2, 0, 1).contiguous(memory_format=torch.channels_last)
    tdy = torch.from_numpy(dy).permute(0, 3, 1, 2)
    options = dict(padding=1, groups=groups)
    with torch.no_grad():
        ref = [F.conv2d(tx, tw, **options), torch.nn.grad.conv2d_input(tx.shape, tw, tdy, **options),
               torch.nn.grad.conv2d_weight(tx, tw.shape, tdy, **options)]
        for mine, theirs, perm in ((y, ref[0], (0, 2, 3, 1)), (dx, ref[1], (0, 2, 3, 1)), (dw, ref[2], (2, 3, 1, 0))):
            assert np.allclose(mine, theirs.permute(*perm).numpy(), rtol=1e-3, atol=1e-3 * max(1.0, float(theirs.abs().max())))
        theirs = [median_seconds(lambda: F.conv2d(tx, tw, **options), repeats),
                  median_seconds(lambda: torch.nn.grad.conv2d_input(tx.shape, tw, tdy, **options), repeats),
                  median_seconds(lambda: torch.nn.grad.conv2d_weight(tx, tw.shape, tdy, **options), repeats)]
    kind = "conv" if groups == 1 else "depthwise conv" if groups == c else f"conv {groups} groups"
    return row(f"{kind} 3x3 {c}->{c}, {h}x{h}, batch {n}", 2.0 * n * h * h * c * c // groups * 9, ours, theirs)


def bench_conv_transpose(n: int, h: int, c: int, repeats: int, rng: np.random.Generator) -> str:
    """conv2d_transpose 3x3, stride 2, padding 1, output padding 1: [n, h, h, c] -> [n, 2h, 2h, c]."""
    types = [TensorType(f32, [n, h, h, c]), TensorType(f32, [3, 3, c, c])]
    forward = graph_function("forward", types, lambda x, w: nn.Conv2DTransposeOp(
        x, w, stride=(2, 2), padding=(1, 1, 1, 1), output_padding=(1, 1)).out)
    fns = compiled(chain_gradients(forward))
    x = rng.standard_normal((n, h, h, c)).astype(np.float32)
    w = (rng.standard_normal((3, 3, c, c)) / np.sqrt(9 * c)).astype(np.float32)
    dy = rng.standard_normal((n, 2 * h, 2 * h, c)).astype(np.float32)
    y, dx, dw = np.empty_like(dy), np.empty_like(x), np.empty_like(w)
    ours = [median_seconds(lambda: fns["forward"](x, w, y), repeats),
            median_seconds(lambda: fns["dx"](x, w, dy, dx), repeats),
            median_seconds(lambda: fns["dw"](x, w, dy, dw), repeats)]
    tx = torch.from_numpy(x).permute(0, 3, 1, 2)  # channels-last memory, NCHW view
    tw = torch.from_numpy(w).permute(3, 2, 0, 1).contiguous(memory_format=torch.channels_last)  # [C, F, KH, KW]
    tdy = torch.from_numpy(dy).permute(0, 3, 1, 2)
    options = dict(stride=2, padding=1, output_padding=1)

    def backward(mask: list[bool]):
        return torch.ops.aten.convolution_backward(tdy, tx, tw, None, [2, 2], [1, 1], [1, 1], True, [1, 1], 1, mask)

    with torch.no_grad():
        ref = [F.conv_transpose2d(tx, tw, **options), backward([True, False, False])[0], backward([False, True, False])[1]]
        for mine, theirs, perm in ((y, ref[0], (0, 2, 3, 1)), (dx, ref[1], (0, 2, 3, 1)), (dw, ref[2], (2, 3, 1, 0))):
            assert np.allclose(mine, theirs.permute(*perm).numpy(), rtol=1e-3, atol=1e-3 * max(1.0, float(theirs.abs().max())))
        theirs = [median_seconds(lambda: F.conv_transpose2d(tx, tw, **options), repeats),
                  median_seconds(lambda: backward([True, False, False]), repeats),
                  median_seconds(lambda: backward([False, True, False]), repeats)]
    return row(f"conv_transpose 3x3/2 {c}->{c}, {h}x{h}->{2 * h}x{2 * h}, batch {n}", 2.0 * n * h * h * c * c * 9, ours, theirs)


def bench_dense(n: int, i: int, o: int, repeats: int, rng: np.random.Generator) -> str:
    types = [TensorType(f32, [n, i]), TensorType(f32, [i, o])]
    forward = graph_function("forward", types, lambda x, w: nn.MatmulOp(x, w).out)
    fns = compiled(kernel_functions(forward, nn.MatmulOp))
    x = rng.standard_normal((n, i)).astype(np.float32)
    w = (rng.standard_normal((i, o)) / np.sqrt(i)).astype(np.float32)
    dy = rng.standard_normal((n, o)).astype(np.float32)
    y, dx, dw = np.empty_like(dy), np.empty_like(x), np.empty_like(w)
    ours = [median_seconds(lambda: fns["forward"](x, w, y), repeats),
            median_seconds(lambda: fns["dx"](x, w, dy, dx), repeats),
            median_seconds(lambda: fns["dw"](x, w, dy, dw), repeats)]
    tx, tw, tdy = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(dy)
    with torch.no_grad():
        for mine, theirs in ((y, tx @ tw), (dx, tdy @ tw.T), (dw, tx.T @ tdy)):
            assert np.allclose(mine, theirs.numpy(), rtol=1e-3, atol=1e-3 * max(1.0, float(theirs.abs().max())))
        theirs = [median_seconds(lambda: tx @ tw, repeats), median_seconds(lambda: tdy @ tw.T, repeats),
                  median_seconds(lambda: tx.T @ tdy, repeats)]
    return row(f"dense {i}->{o}, batch {n}", 2.0 * n * i * o, ours, theirs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="one shape per channel count")
    parser.add_argument("--only", choices=["conv", "depthwise", "grouped", "transpose", "dense"], help="one family of rows")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    mlc.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    print(f"{args.threads} threads each; GFLOP/s, medians of {args.repeats}; ratio = mlc / PyTorch throughput\n")
    print("| kernel | fwd mlc | fwd torch | fwd ratio | dx mlc | dx torch | dx ratio | dw mlc | dw torch | dw ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    convs = CONVS[1::3] if args.quick else CONVS
    families = {
        "conv": (convs, lambda n, h, c: bench_conv(n, h, c, args.repeats, rng)),
        "depthwise": (convs, lambda n, h, c: bench_conv(n, h, c, args.repeats, rng, groups=c)),
        "grouped": (convs, lambda n, h, c: bench_conv(n, h, c, args.repeats, rng, groups=4)),
        "transpose": (convs, lambda n, h, c: bench_conv_transpose(n, h, c, args.repeats, rng)),
        "dense": (DENSES[1:3] if args.quick else DENSES, lambda n, i, o: bench_dense(n, i, o, args.repeats, rng)),
    }
    for family, (shapes, bench) in families.items():
        if args.only in (None, family):
            for shape in shapes:
                print(bench(*shape), flush=True)

if __name__ == "__main__":
    main()
