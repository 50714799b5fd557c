"""conv2d input and weight gradients: mlc's generated C against mlc's own forward and PyTorch.

    python benchmarks/conv_gradients.py [--repeats 7] [--batch 4] [--size 16]

For 3x3 convolutions (NHWC, `same` padding) with C = F in {16, 32, 64, 128} at stride 1 and 2,
each gradient kernel is compiled on its own, exactly as `mlc-autodiff` + `mlc-scatter-to-gather`
produce it inside a training step: dx from (dy, w), dw from (dy, x). PyTorch runs
`F.conv2d`, `torch.nn.grad.conv2d_input` and `conv2d_weight` in the same process (NCHW, its
preferred layout). Times are medians over the repeats; the ratios are what to read.
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

from mlc.api import make_context, run_pipeline
from mlc.backends.c.emitter import emit_c
from mlc.backends.c.runtime import compile_module
from mlc.dialects import ix, nn
from mlc.passes.autodiff import adjoint_of_read
from mlc.passes.pipelines import LOWER_TO_C


def conv_function(n: int, h: int, c: int, stride: int) -> tuple[func.FuncOp, list[TensorType]]:
    """`y = conv2d(x, w)` at the index level, and the argument types (x, w)."""
    pads = nn.same_padding(h, 3, stride, 1)
    types = [TensorType(f32, [n, h, h, c]), TensorType(f32, [3, 3, c, c])]
    f = func.FuncOp("forward", (types, []))
    with ImplicitBuilder(f.body) as (x, w):
        y = nn.Conv2DOp(x, w, stride=(stride, stride), padding=(*pads, *pads))
        func.ReturnOp(y.out)
    f.function_type = func.FunctionType.from_lists(types, [y.out.type])
    module = ModuleOp([f])
    run_pipeline(module, "mlc-lower-graph", make_context())
    return f, types


def gradient_function(forward: func.FuncOp, read: int, name: str) -> func.FuncOp:
    """d forward / d (argument `read`) as a function of (x, w, dy), in scatter form."""
    conv = next(op for op in forward.body.block.ops if isinstance(op, ix.ComputeOp) and op.reduction.data == "sum")
    types = [*forward.function_type.inputs, conv.result.type]
    g = func.FuncOp(name, (types, []))
    args = g.body.block.args
    clone = conv.clone(value_mapper=dict(zip(forward.body.block.args, args)))
    g.body.block.add_op(clone)
    with ImplicitBuilder(g.body):
        grad = adjoint_of_read(clone, read, args[-1], None)
        assert grad is not None
        func.ReturnOp(grad)
    g.function_type = func.FunctionType.from_lists(types, [grad.type])
    return g


def compile_functions(functions: list[func.FuncOp]) -> dict:
    module = ModuleOp([f.clone() for f in functions])
    ctx = make_context()
    # the forward is already index-level; the gradients get the gather conversion
    run_pipeline(module, "mlc-scatter-to-gather," + LOWER_TO_C, ctx)
    return compile_module(module), emit_c(module)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--size", type=int, default=16)
    args = parser.parse_args()
    n, h = args.batch, args.size
    rng = np.random.default_rng(0)
    print(f"conv2d 3x3, NHWC, batch {n}, {h}x{h}, same padding; ms (median of {args.repeats}); torch threads {torch.get_num_threads()}")
    header = ["C", "stride", "mlc fwd", "mlc dx", "dx/fwd", "mlc dw", "dw/fwd", "torch fwd", "torch dx", "torch dw", "dx vs torch", "dw vs torch"]
    print("".join(f"{c:>12s}" for c in header))
    for c in (16, 32, 64, 128):
        for stride in (1, 2):
            forward, (xt, wt) = conv_function(n, h, c, stride)
            fns, _ = compile_functions([forward, gradient_function(forward, 0, "dx"), gradient_function(forward, 1, "dw")])
            x = rng.standard_normal(xt.get_shape()).astype(np.float32)
            w = rng.standard_normal(wt.get_shape()).astype(np.float32)
            ho = -(-h // stride)
            y = np.empty((n, ho, ho, c), np.float32)
            dy = rng.standard_normal(y.shape).astype(np.float32)
            dx, dw = np.empty_like(x), np.empty_like(w)
            t_fwd = median_seconds(lambda: fns["forward"](x, w, y), args.repeats)
            t_dx = median_seconds(lambda: fns["dx"](x, w, dy, dx), args.repeats)
            t_dw = median_seconds(lambda: fns["dw"](x, w, dy, dw), args.repeats)

            xt_, wt_ = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(w).permute(3, 2, 0, 1).contiguous()
            dyt = torch.from_numpy(dy).permute(0, 3, 1, 2).contiguous()
            pad = nn.same_padding(h, 3, stride, 1)
            xp = F.pad(xt_, (pad[0], pad[1], pad[0], pad[1]))
            with torch.no_grad():
                p_fwd = median_seconds(lambda: F.conv2d(xp, wt_, stride=stride), args.repeats)
                p_dx = median_seconds(lambda: torch.nn.grad.conv2d_input(xp.shape, wt_, dyt, stride=stride), args.repeats)
                p_dw = median_seconds(lambda: torch.nn.grad.conv2d_weight(xp, wt_.shape, dyt, stride=stride), args.repeats)
            # the gradients agree with PyTorch (unpadded region of dx)
            ref_dx = torch.nn.grad.conv2d_input(xp.shape, wt_, dyt, stride=stride)[:, :, pad[0] : pad[0] + h, pad[0] : pad[0] + h]
            assert np.allclose(dx, ref_dx.permute(0, 2, 3, 1).numpy(), rtol=1e-3, atol=1e-3)
            ms = [t * 1e3 for t in (t_fwd, t_dx, t_dw, p_fwd, p_dx, p_dw)]
            cells = [f"{c}", f"{stride}", f"{ms[0]:.2f}", f"{ms[1]:.2f}", f"{ms[1] / ms[0]:.2f}x", f"{ms[2]:.2f}",
                     f"{ms[2] / ms[0]:.2f}x", f"{ms[3]:.2f}", f"{ms[4]:.2f}", f"{ms[5]:.2f}", f"{ms[1] / ms[4]:.1f}x", f"{ms[2] / ms[5]:.1f}x"]
            print("".join(f"{cell:>12s}" for cell in cells), flush=True)


if __name__ == "__main__":
    main()
