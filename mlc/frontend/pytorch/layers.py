"""PyTorch layers as mlc expressions: convolution, dense, normalisation, dropout, pooling.

Each translation gets the node's arguments resolved (tensors as `Value`s, sizes as ints) and
returns the `Value` it binds. Shapes come from the meta run (`Importer.meta_of`), layouts from
`ImportState.as_perm`: NHWC for what works on images, PyTorch's order for what works on shapes.
An argument mlc cannot honour is `Unsupported`, never approximated.
"""

from __future__ import annotations

import operator
from typing import Any

import torch
import torch.nn.functional as F
from torch.fx import Node

from mlc.frontend.pytorch.graph import NHWC, Unsupported, Value, arguments, number, pair, tensor, tup
from mlc.frontend.pytorch.importer import Importer, handles


# -- convolution and dense ----------------------------------------------------------------------
@handles(torch.conv2d, F.conv2d)
def conv2d(imp: Importer, node: Node, args: tuple, kwargs: dict) -> Value:
    """y = conv2d(x NHWC, w OIHW held as HWIO) + b: a PyTorch filter [O, I/g, KH, KW] is the
    HWIO filter [KH, KW, I/g, O] transposed (2, 3, 1, 0), a transpose the program does itself."""
    a = arguments(node, args, kwargs, ("input", "weight", "bias", "stride", "padding", "dilation", "groups"),
                  {"bias": None, "stride": 1, "padding": 0, "dilation": 1, "groups": 1})
    x, w = tensor(node, a["input"]), tensor(node, a["weight"], "weight")
    if x.rank != 4:
        raise Unsupported(node, f"a {x.rank}-d input (mlc's conv2d takes a batch of images)")
    (kh, kw), (sh, sw), (dh, dw) = w.shape[2:], pair(a["stride"]), pair(a["dilation"])
    pads = conv_padding(node, a["padding"], (kh, kw), (dh, dw))
    st = imp.state
    expr = (f"conv2d({st.as_perm(x, NHWC)}, {st.as_perm(w, (2, 3, 1, 0))}, stride={tup((sh, sw))}, "
            f"padding={tup(pads)}, dilation={tup((dh, dw))}, groups={int(a['groups'])})")
    if a["bias"] is not None:
        expr += f" + {tensor(node, a['bias'], 'bias').name}"
    return st.bind(node.name, expr, imp.out_shape(node), NHWC)


def conv_padding(node: Node, padding: Any, k: tuple[int, int], d: tuple[int, int]) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of PyTorch's `padding`: ints, or 'valid', or 'same' (the total
    d*(k-1) split with the smaller half first, as PyTorch's `_conv_forward` pads)."""
    if padding == "valid":
        return (0, 0, 0, 0)
    if padding == "same":
        th, tw = d[0] * (k[0] - 1), d[1] * (k[1] - 1)
        return (th // 2, th - th // 2, tw // 2, tw - tw // 2)
    ph, pw = pair(padding)
    return (ph, ph, pw, pw)


@handles(F.linear)
def linear(imp: Importer, node: Node, args: tuple, kwargs: dict) -> Value:
    """y = x @ w.T + b, x of any rank >= 2 flattened to [-1, I] and back."""
    a = arguments(node, args, kwargs, ("input", "weight", "bias"), {"bias": None})
    x, w = tensor(node, a["input"]), tensor(node, a["weight"], "weight")
    st = imp.state
    flat = st.torch_order(x) if x.rank == 2 else f"reshape({st.torch_order(x)}, (-1, {x.shape[-1]}))"
    expr = f"dense({flat}, {st.as_perm(w, (1, 0))}" + (f", {tensor(node, a['bias'], 'bias').name})" if a["bias"] is not None else ")")
    out = imp.out_shape(node)
    if x.rank != 2:
        expr = f"reshape({expr}, {tup(out)})"
    return st.bind(node.name, expr, out)


@handles(torch.matmul, torch.mm, "matmul", "mm", operator.matmul)
def matmul(imp: Importer, node: Node, args: tuple, kwargs: dict) -> Value:
    a, b = (tensor(node, v) for v in args[:2])
    if a.rank != 2 or b.rank != 2:
        raise Unsupported(node, f"a matmul of {a.rank}-d and {b.rank}-d tensors (mlc's matmul is 2-d)")
    st = imp.state
    return st.bind(node.name, f"matmul({st.torch_order(a)}, {st.torch_order(b)})", imp.out_shape(node))


@handles(torch.addmm, "addmm")
def addmm(imp: Importer, node: Node, args: tuple, kwargs: dict) -> Value:
    """beta * input + alpha * (mat1 @ mat2), input broadcast as PyTorch broadcasts it."""
    a = arguments(node, args, kwargs, ("input", "mat1", "mat2", "beta", "alpha"), {"beta": 1, "alpha": 1})
    st = imp.state
    m1, m2, bias = tensor(node, a["mat1"]), tensor(node, a["mat2"]), tensor(node, a["input"])
    product = f"matmul({st.torch_order(m1)}, {st.torch_order(m2)})"
    if a["alpha"] != 1:
        product = f"{product} * {number(float(a['alpha']))}"
    scaled = st.torch_order(bias) if a["beta"] == 1 else f"{st.torch_order(bias)} * {number(float(a['beta']))}"
    if a["beta"] == 0:  # PyTorch ignores input then (even NaN in it)
        return st.bind(node.name, product, imp.out_shape(node))
    return st.bind(node.name, f"{product} + {scaled}", imp.out_shape(node))


@handles(torch.bmm, "bmm")
def bmm(imp: Importer, node: Node, args: tuple, kwargs: dict) -> Value:
    """A batched matmul in index notation (a custom op of the model's file)."""
    a, b = (tensor(node, v) for v in args[:2])
    ty = imp.state.dtype
    imp.state.custom_ops["bmm"] = (
        f"op bmm(a: {ty}[B, M, K], b: {ty}[B, K, N]) -> {ty}[B, M, N] {{\n"
        f"  out[i, m, n] = sum(k: K) a[i, m, k] * b[i, k, n]\n}}")
    st = imp.state
    return st.bind(node.name, f"bmm({st.torch_order(a)}, {st.torch_order(b)})", imp.out_shape(node))


# -- normalisation ------------------------------------------------------------------------------
@handles(F.batch_norm)
def batch_norm(imp: Importer, node: Node, args: tuple, kwargs: dict) -> Value:
    """PyTorch's batch norm over dim 1 is mlc's over the last axis of the NHWC (or [N, C]) value;
    running statistics are `state`s, updated in place by a training-mode program."""
    a = arguments(node, args, kwargs, ("input", "running_mean", "running_var", "weight", "bias", "training", "momentum", "eps"),
                  {"weight": None, "bias": None, "training": False, "momentum": 0.1, "eps": 1e-5})
    x = tensor(node, a["input"])
    if x.rank not in (2, 4):
        raise Unsupported(node, f"a {x.rank}-d input (BatchNorm1d on [N, C] and BatchNorm2d are supported)")
    st = imp.state
    perm = NHWC if x.rank == 4 else None
    parts = [st.as_perm(x, perm)]
    if (a["weight"] is None) != (a["bias"] is None):
        raise Unsupported(node, "a weight without a bias (or a bias without a weight)")
    if a["weight"] is not None:
        parts += [tensor(node, a["weight"]).name, tensor(node, a["bias"]).name]
    if not float(a["eps"]) > 0:
        raise Unsupported(node, f"eps={a['eps']} (mlc's is positive)")
    parts.append(f"eps={number(float(a['eps']))}")
    running = a["running_mean"] is not None
    if running != (a["running_var"] is not None):
        raise Unsupported(node, "a running mean without a running variance")
    if running:
        if a["momentum"] is None:
            raise Unsupported(node, "momentum=None (a cumulative moving average)")
        if not 0 <= float(a["momentum"]) <= 1:
            raise Unsupported(node, f"momentum={a['momentum']} (mlc's is between 0 and 1)")
        mean, var = tensor(node, a["running_mean"]), tensor(node, a["running_var"])
        if not all(v.name in {s.name for s in st.arguments if s.kind == "state"} for v in (mean, var)):
            raise Unsupported(node, "running statistics that are not the graph's own buffers")
        parts += [f"mean={mean.name}", f"var={var.name}", f"momentum={number(float(a['momentum']))}"]
        training = bool(a["training"])
        if st.training is not None and st.training != training:
            raise Unsupported(node, "batch norms in training and in eval mode in one graph")
        st.training = training
    elif not a["training"]:
        raise Unsupported(node, "eval mode without running statistics")
    return st.bind(node.name, f"batchnorm({', '.join(parts)})", imp.out_shape(node), perm)


@handles(F.layer_norm)
def layer_norm(imp: Importer, node: Node, args: tuple, kwargs: dict) -> Value:
    a = arguments(node, args, kwargs, ("input", "normalized_shape", "weight", "bias", "eps"),
                  {"weight": None, "bias": None, "eps": 1e-5})
    x = tensor(node, a["input"])
    if a["weight"] is None or a["bias"] is None:
        raise Unsupported(node, "a layer norm without weight and bias (elementwise_affine=False)")
    if not float(a["eps"]) > 0:
        raise Unsupported(node, f"eps={a['eps']} (mlc's is positive)")
    st = imp.state
    expr = (f"layernorm({st.torch_order(x)}, {st.torch_order(a['weight'])}, {st.torch_order(a['bias'])}, "
            f"eps={number(float(a['eps']))}, axes={len(a['normalized_shape'])})")
    return st.bind(node.name, expr, imp.out_shape(node))


@handles(F.dropout, torch.dropout)
def dropout(imp: Importer, node: Node, args: tuple, kwargs: dict) -> Value:
    """Eval: the identity. Training: x * mask, the mask drawn by the caller as eager draws it
    (`bernoulli_(1 - p)` then `div_(1 - p)`, in PyTorch's order), so seeded runs agree bitwise."""
    names = ("input", "p", "training", "inplace") if node.target is F.dropout else ("input", "p", "train")
    a = arguments(node, args, kwargs, names, {"p": 0.5, "training": True, "inplace": False})
    x = tensor(node, a["input"])
    training = a.get("training", a.get("train"))
    p = float(a["p"])
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return imp.state.bind(node.name, f"{imp.state.as_perm(x, x.perm)} * 0.0", x.shape, x.perm)
    mask = imp.derived(node.name + "_mask", x.shape, ("dropout", p))
    st = imp.state
    return st.bind(node.name, f"{x.name} * {st.as_perm(mask, x.perm)}", x.shape, x.perm)


@handles(torch.randn_like, torch.rand_like)
def random_like(imp: Importer, node: Node, args: tuple, kwargs: dict) -> Value:
    x = tensor(node, args[0])
    if set(kwargs) - {"dtype"}:
        raise Unsupported(node, f"keywords {sorted(kwargs)}")
    kind = "randn" if node.target is torch.randn_like else "rand"
    return imp.derived(node.name, x.shape, (kind,))


# -- pooling --------------------------------------------------------------------------------------
@handles(F.max_pool2d, torch.max_pool2d)
def max_pool2d(imp: Importer, node: Node, args: tuple, kwargs: dict) -> Value:
    a = arguments(node, args, kwargs, ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices"),
                  {"stride": None, "padding": 0, "dilation": 1, "ceil_mode": False, "return_indices": False})
    if a["return_indices"]:
        raise Unsupported(node, "return_indices=True")
    return _pool(imp, node, a, "maxpool2d", f", dilation={tup(pair(a['dilation']))}")


@handles(F.avg_pool2d, torch._C._nn.avg_pool2d)
def avg_pool2d(imp: Importer, node: Node, args: tuple, kwargs: dict) -> Value:
    a = arguments(node, args, kwargs, ("input", "kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override"),
                  {"stride": None, "padding": 0, "ceil_mode": False, "count_include_pad": True, "divisor_override": None})
    if a["divisor_override"] is not None:
        raise Unsupported(node, "divisor_override")
    return _pool(imp, node, a, "avgpool2d", ", count_pad=true" if a["count_include_pad"] else "")


def _pool(imp: Importer, node: Node, a: dict, op: str, extra: str) -> Value:
    x = tensor(node, a["input"])
    if x.rank != 4:
        raise Unsupported(node, f"a {x.rank}-d input")
    k = pair(a["kernel_size"])
    s = pair(a["stride"]) if a["stride"] not in (None, []) else k
    ph, pw = pair(a["padding"])
    st = imp.state
    expr = (f"{op}({st.as_perm(x, NHWC)}, size={tup(k)}, stride={tup(s)}, padding={tup((ph, ph, pw, pw))}{extra}"
            + (", ceil_mode=true)" if a["ceil_mode"] else ")"))
    return st.bind(node.name, expr, imp.out_shape(node), NHWC)


@handles(F.adaptive_avg_pool2d, torch._C._nn.adaptive_avg_pool2d)
def adaptive_avg_pool2d(imp: Importer, node: Node, args: tuple, kwargs: dict) -> Value:
    """Global average pooling (output 1x1); an output of the input's own size is the input."""
    x = tensor(node, args[0])
    if x.rank != 4:
        raise Unsupported(node, f"a {x.rank}-d input")
    size = args[1] if len(args) > 1 else kwargs["output_size"]
    size = (size, size) if isinstance(size, int) or size is None else tuple(size)
    target = tuple(x.shape[2 + k] if s is None else int(s) for k, s in enumerate(size))
    if target == x.shape[2:]:
        return x
    if target != (1, 1):
        raise Unsupported(node, f"an output size {list(target)} other than 1 (global average pooling)")
    st = imp.state
    n, c = x.shape[:2]
    return st.bind(node.name, f"reshape(mean({st.as_perm(x, NHWC)}, axis=(1, 2)), {tup((n, c, 1, 1))})", (n, c, 1, 1))


@handles(torch.conv_transpose2d, F.conv_transpose2d)
def conv_transpose2d(imp: Importer, node: Node, args: tuple, kwargs: dict) -> Value:
    """PyTorch's filter [C, F/g, KH, KW] is mlc's [KH, KW, F/g, C] transposed (2, 3, 1, 0);
    its `padding` p crops p from every side, mlc's `padding=(p, p, q, q)`."""
    a = arguments(node, args, kwargs, ("input", "weight", "bias", "stride", "padding", "output_padding", "groups", "dilation"),
                  {"bias": None, "stride": 1, "padding": 0, "output_padding": 0, "groups": 1, "dilation": 1})
    x, w = tensor(node, a["input"]), tensor(node, a["weight"], "weight")
    if x.rank != 4:
        raise Unsupported(node, f"a {x.rank}-d input")
    ph, pw = pair(a["padding"])
    st = imp.state
    expr = (f"conv2d_transpose({st.as_perm(x, NHWC)}, {st.as_perm(w, (2, 3, 1, 0))}, stride={tup(pair(a['stride']))}, "
            f"padding={tup((ph, ph, pw, pw))}, output_padding={tup(pair(a['output_padding']))}, "
            f"dilation={tup(pair(a['dilation']))}, groups={int(a['groups'])})")
    if a["bias"] is not None:
        expr += f" + {tensor(node, a['bias'], 'bias').name}"
    return st.bind(node.name, expr, imp.out_shape(node), NHWC)
