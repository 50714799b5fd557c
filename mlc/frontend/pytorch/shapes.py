"""Shape ops and reductions: view/reshape/flatten, permute/transpose (free: they change a
value's layout only), squeeze/unsqueeze, expand, cat/stack, slicing, split/chunk,
sum/mean/amax/amin, softmax/log_softmax."""

from __future__ import annotations

import operator
from typing import Any

import torch
import torch.nn.functional as F
from torch.fx import Node

from mlc.frontend.pytorch.graph import Unsupported, Value, tensor, tup
from mlc.frontend.pytorch.importer import Importer, handles


@handles("view", "reshape", torch.reshape, torch.flatten, "flatten", "unsqueeze", torch.unsqueeze, "squeeze", torch.squeeze,
         "contiguous", "view_as", "reshape_as")
def reshape(imp: Importer, node: Node, args: tuple, kwargs: dict) -> Value:
    """Any change of shape that keeps the row-major order: an mlc reshape of the value in
    PyTorch's order (nothing at all when the shape does not change)."""
    x = tensor(node, args[0])
    out = imp.out_shape(node)
    if out == x.shape:
        return x
    if out == ():  # one element as a scalar: its sum (the language's reshape takes no empty shape)
        return imp.state.bind(node.name, f"sum({x.name})", out)
    return imp.state.bind(node.name, f"reshape({imp.state.torch_order(x)}, {tup(out)})", out)


@handles("permute", torch.permute, "transpose", torch.transpose, "t", torch.t, "swapaxes", "swapdims")
def permute(imp: Importer, node: Node, args: tuple, kwargs: dict) -> Value:
    """`y = x.permute(p)` with x held as transpose(x, q) is held as transpose(y, r), r[d] =
    p^-1[q[d]]: the same mlc value under another name for its order, no copy."""
    x = tensor(node, args[0])
    rank = x.rank
    if rank < 2:  # a 0-d or 1-d tensor's transpose (dims 0 and -1) is itself
        return x
    name = str(getattr(node.target, "__name__", node.target))
    rest = list(args[1:]) or list(kwargs.values())
    if name == "permute":
        dims = rest[0] if len(rest) == 1 and isinstance(rest[0], list | tuple) else rest
        p = [d % rank for d in dims]
    else:
        p = list(range(rank))
        if name != "t" or rank == 2:
            i, j = (0, 1) if name == "t" else (rest[0] % rank, rest[1] % rank)
            p[i], p[j] = p[j], p[i]
    inverse = [p.index(d) for d in range(rank)]
    order = tuple(inverse[d] for d in x.order)
    return Value(x.name, imp.out_shape(node), None if order == tuple(range(rank)) else order)


@handles("expand", "expand_as", torch.broadcast_to, "broadcast_to")
def expand(imp: Importer, node: Node, args: tuple, kwargs: dict) -> Value:
    """`x.expand(sizes)`: mlc's `broadcast_to` of the value in PyTorch's order (a view in
    PyTorch, a copy in mlc; its gradient sums over the repeated dims)."""
    x = tensor(node, args[0])
    out = imp.out_shape(node)
    if out == x.shape:
        return x
    return imp.state.bind(node.name, f"broadcast_to({imp.state.torch_order(x)}, {tup(out)})", out)


@handles(torch.cat, torch.concat, torch.concatenate)
def cat(imp: Importer, node: Node, args: tuple, kwargs: dict) -> Value:
    """Concatenation in the parts' common layout when they share one (channels of NHWC
    values stay NHWC), else in PyTorch's order."""
    parts = [tensor(node, p) for p in args[0]]
    dim = (args[1] if len(args) > 1 else kwargs.get("dim", 0)) % parts[0].rank
    perm = parts[0].perm if all(p.perm == parts[0].perm for p in parts) else None
    order = perm or tuple(range(parts[0].rank))
    exprs = ", ".join(imp.state.as_perm(p, perm) for p in parts)
    return imp.state.bind(node.name, f"concat({exprs}, axis={order.index(dim)})", imp.out_shape(node), perm)


@handles(torch.stack)
def stack(imp: Importer, node: Node, args: tuple, kwargs: dict) -> Value:
    parts = [tensor(node, p) for p in args[0]]
    out = imp.out_shape(node)
    dim = (args[1] if len(args) > 1 else kwargs.get("dim", 0)) % len(out)
    one = out[:dim] + (1,) + out[dim + 1:]
    exprs = ", ".join(f"reshape({imp.state.torch_order(p)}, {tup(one)})" for p in parts)
    return imp.state.bind(node.name, f"concat({exprs}, axis={dim})", out)


@handles(operator.getitem)
def getitem(imp: Importer, node: Node, args: tuple, kwargs: dict) -> Value:
    """Basic indexing: slices (with steps), integers (a slice, then a reshape), None and `...`."""
    x = tensor(node, args[0])
    index = args[1] if isinstance(args[1], tuple) else (args[1],)
    if any(isinstance(i, Value | list | torch.Tensor) for i in index):
        raise Unsupported(node, "indexing with tensors (advanced indexing)")
    if sum(i is Ellipsis for i in index) > 1:
        raise Unsupported(node, "more than one '...'")
    used = sum(1 for i in index if i is not None and i is not Ellipsis)
    expanded: list[Any] = []
    for i in index:
        expanded.extend([slice(None)] * (x.rank - used) if i is Ellipsis else [i])
    st = imp.state
    expr = st.torch_order(x)
    axis = 0
    for i in expanded:
        if i is None:
            continue
        if isinstance(i, int):
            i = slice(i, i + 1 if i != -1 else None)
        if not isinstance(i, slice):
            raise Unsupported(node, f"an index of type {type(i).__name__}")
        if i != slice(None):
            bounds = [f"start={i.start}"] * (i.start is not None) + [f"stop={i.stop}"] * (i.stop is not None)
            step = [f"step={i.step}"] if i.step not in (None, 1) else []
            expr = f"slice({expr}, {', '.join([f'axis={axis}', *bounds, *step])})"
        axis += 1
    out = imp.out_shape(node)
    if expr == st.torch_order(x) and out == x.shape:
        return x
    return st.bind(node.name, f"reshape({expr}, {tup(out)})", out)


@handles(torch.split, "split", torch.chunk, "chunk", torch.unbind, "unbind")
def split(imp: Importer, node: Node, args: tuple, kwargs: dict) -> tuple[Value, ...]:
    """A tuple of slices along `dim` (shapes from the meta run)."""
    x = tensor(node, args[0])
    name = str(getattr(node.target, "__name__", node.target))
    dim = (args[2] if len(args) > 2 else kwargs.get("dim", 0)) if name != "unbind" else (args[1] if len(args) > 1 else kwargs.get("dim", 0))
    dim %= x.rank
    pieces = imp.meta[node]
    parts, start = [], 0
    for k, piece in enumerate(pieces):
        size = piece.shape[dim] if name != "unbind" else 1
        sliced = f"slice({imp.state.torch_order(x)}, axis={dim}, start={start}, stop={start + size})"
        parts.append(imp.state.bind(f"{node.name}_{k}", f"reshape({sliced}, {tup(piece.shape)})", tuple(piece.shape)))
        start += size
    return tuple(parts)


REDUCTIONS = {torch.sum: "sum", "sum": "sum", torch.mean: "mean", "mean": "mean", torch.amax: "max", "amax": "max",
              torch.amin: "min", "amin": "min"}


@handles(*REDUCTIONS)
def reduce(imp: Importer, node: Node, args: tuple, kwargs: dict) -> Value:
    """sum/mean/amax/amin over `dim` (all when absent) of the value in its own layout; with
    `keepdim` the reduced dims come back as ones."""
    x = tensor(node, args[0])
    if kwargs.get("dtype") is not None:
        raise Unsupported(node, "dtype=")
    dims = args[1] if len(args) > 1 else kwargs.get("dim", kwargs.get("axis"))
    keep = args[2] if len(args) > 2 else kwargs.get("keepdim", False)
    reduced = set(range(x.rank)) if x.rank == 0 or dims is None or dims == [] or dims == () else \
        {d % x.rank for d in (dims if isinstance(dims, list | tuple) else [dims])}
    op = REDUCTIONS[node.target if node.op == "call_function" else str(node.target)]
    st = imp.state
    out = imp.out_shape(node)
    if x.rank == 0:  # a scalar's sum, mean, max or min over its one "dim" is itself
        return x
    if reduced == set(range(x.rank)):
        expr = f"{op}({x.name})"
        return st.bind(node.name, expr if not keep else f"reshape({expr}, {tup(out)})", out)
    axes = sorted(x.order.index(d) for d in reduced)
    kept = [d for d in x.order if d not in reduced]  # the result's dims, in the value's order
    ranks = {d: k for k, d in enumerate(sorted(kept))}
    order = tuple(ranks[d] for d in kept)
    value = st.bind(node.name, f"{op}({x.name}, axis={tup(axes) if len(axes) > 1 else axes[0]})",
                    tuple(x.shape[d] for d in sorted(kept)), order)
    if keep:
        return st.bind(node.name + "_keepdim", f"reshape({st.torch_order(value)}, {tup(out)})", out)
    return value


@handles(F.softmax, torch.softmax, "softmax", F.log_softmax, torch.log_softmax, "log_softmax")
def softmax(imp: Importer, node: Node, args: tuple, kwargs: dict) -> Value:
    """mlc's softmax is over the last axis: a value whose `dim` is last in its layout needs
    nothing, any other is transposed there and back."""
    x = tensor(node, args[0])
    dim = args[1] if len(args) > 1 else kwargs.get("dim")
    if dim is None:
        raise Unsupported(node, "an implicit dim (deprecated in PyTorch)")
    if kwargs.get("dtype") is not None or (len(args) > 3 and args[3] is not None):
        raise Unsupported(node, "dtype=")
    name = "log_softmax" if "log" in str(getattr(node.target, "__name__", node.target)) else "softmax"
    if x.rank == 0:  # over one element: 1 (log: 0), and NaN or inf give NaN as in PyTorch
        return imp.state.bind(node.name, f"{x.name} * 0.0" + ("" if name == "log_softmax" else " + 1.0"), ())
    dim %= x.rank
    order = x.order
    if order[-1] != dim:
        order = tuple(d for d in range(x.rank) if d != dim) + (dim,)
    st = imp.state
    return st.bind(node.name, f"{name}({st.as_perm(x, order)})", x.shape, order)
