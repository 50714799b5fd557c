"""PyTorch's losses as mlc expressions. Integer class targets reach mlc as their one-hot
encoding (made by the caller from the target tensor at each call), which is how the language's
`softmax_cross_entropy` takes labels."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.fx import Node

from mlc.frontend.pytorch.graph import Unsupported, Value, arguments, number, tensor
from mlc.frontend.pytorch.importer import Importer, handles

REDUCTIONS = ("mean", "sum")


def _reduction(node: Node, a: dict) -> str:
    if a.get("size_average") is not None or a.get("reduce") is not None:
        raise Unsupported(node, "the deprecated size_average/reduce arguments")
    if a["reduction"] not in REDUCTIONS:
        raise Unsupported(node, f"reduction='{a['reduction']}' (mlc's losses are scalars: mean or sum)")
    return a["reduction"]


def one_hot(imp: Importer, node: Node, target: Node, classes: int) -> Value:
    """The one-hot [N, classes] of an integer target placeholder, made at each call."""
    if not (isinstance(target, Node) and target.op == "placeholder"):
        raise Unsupported(node, "an integer target computed inside the graph (it must be a graph input)")
    n = imp.meta_of(target).shape[0]
    return imp.derived(target.name + "_onehot", (n, classes), ("one_hot", classes), imp.position(target))


def _check_ignore_index(node: Node, a: dict, classes: int) -> None:
    """Targets equal to ignore_index drop out of the loss, which mlc's one-hot loss cannot say:
    any ignore_index but PyTorch's default -100 is refused, and a call whose targets fall outside
    [0, C) (-100 among them) raises a ValueError."""
    if int(a["ignore_index"]) != -100:
        raise Unsupported(node, f"ignore_index={a['ignore_index']} (targets to leave out of the loss)")


def _target_node(node: Node) -> Node:
    return node.args[1] if len(node.args) > 1 else node.kwargs["target"]


@handles(F.cross_entropy)
def cross_entropy(imp: Importer, node: Node, args: tuple, kwargs: dict) -> Value:
    """mean: -(1/N) Σ_n log_softmax(z)[n, y_n] = softmax_cross_entropy(z, onehot(y)); sum: N times it.
    Probability targets (same shape as z) are taken as they are."""
    a = arguments(node, args, kwargs, ("input", "target", "weight", "size_average", "ignore_index", "reduce", "reduction",
                                       "label_smoothing"),
                  {"weight": None, "size_average": None, "ignore_index": -100, "reduce": None, "reduction": "mean",
                   "label_smoothing": 0.0})
    reduction = _reduction(node, a)
    if a["weight"] is not None or a["label_smoothing"] != 0.0:
        raise Unsupported(node, "class weights or label smoothing")
    z = tensor(node, a["input"])
    if z.rank != 2:
        raise Unsupported(node, f"{z.rank}-d logits (mlc takes [N, C])")
    st = imp.state
    target = a["target"]
    if not isinstance(target, Value):
        _check_ignore_index(node, a, z.shape[1])
    onehot = target if isinstance(target, Value) and target.shape == z.shape else one_hot(imp, node, _target_node(node), z.shape[1])
    expr = f"softmax_cross_entropy({st.torch_order(z)}, {st.torch_order(onehot)})"
    return st.bind(node.name, expr if reduction == "mean" else f"{expr} * {z.shape[0]}", ())


@handles(F.nll_loss)
def nll_loss(imp: Importer, node: Node, args: tuple, kwargs: dict) -> Value:
    """-(1/N) Σ_n logp[n, y_n]: the sum of logp times the one-hot, over N (mean) or not (sum)."""
    a = arguments(node, args, kwargs, ("input", "target", "weight", "size_average", "ignore_index", "reduce", "reduction"),
                  {"weight": None, "size_average": None, "ignore_index": -100, "reduce": None, "reduction": "mean"})
    reduction = _reduction(node, a)
    if a["weight"] is not None:
        raise Unsupported(node, "class weights")
    logp = tensor(node, a["input"])
    if logp.rank != 2:
        raise Unsupported(node, f"{logp.rank}-d input (mlc takes [N, C])")
    st = imp.state
    _check_ignore_index(node, a, logp.shape[1])
    onehot = one_hot(imp, node, _target_node(node), logp.shape[1])
    total = f"sum({st.torch_order(logp)} * {onehot.name})"
    return st.bind(node.name, f"-({total} / {float(logp.shape[0])})" if reduction == "mean" else f"-{total}", ())


@handles(F.mse_loss)
def mse_loss(imp: Importer, node: Node, args: tuple, kwargs: dict) -> Value:
    a = arguments(node, args, kwargs, ("input", "target", "size_average", "reduce", "reduction", "weight"),
                  {"size_average": None, "reduce": None, "reduction": "mean", "weight": None})
    reduction = _reduction(node, a)
    if a["weight"] is not None:
        raise Unsupported(node, "weight=")
    x, t = tensor(node, a["input"]), tensor(node, a["target"], "target")
    if x.shape != t.shape:
        raise Unsupported(node, f"broadcasting input {list(x.shape)} against target {list(t.shape)}")
    st = imp.state
    xs, ts = st.torch_order(x), st.torch_order(t)
    if x.rank == 0:  # one element: its mean and its sum
        return st.bind(node.name, f"square({xs} - {ts})", ())
    return st.bind(node.name, f"mse({xs}, {ts})" if reduction == "mean" else f"sum(square({xs} - {ts}))", ())


@handles(F.binary_cross_entropy, F.binary_cross_entropy_with_logits)
def bce(imp: Importer, node: Node, args: tuple, kwargs: dict) -> Value:
    """mlc's bce/bce_logits sum over every element and divide by the first dim N; PyTorch's
    mean divides by the element count, so it is mlc's times N / count (sum: times N)."""
    logits = node.target is F.binary_cross_entropy_with_logits
    names = ("input", "target", "weight", "size_average", "reduce", "reduction") + (("pos_weight",) if logits else ())
    a = arguments(node, args, kwargs, names, {"weight": None, "size_average": None, "reduce": None, "reduction": "mean",
                                              "pos_weight": None})
    reduction = _reduction(node, a)
    if a["weight"] is not None or a.get("pos_weight") is not None:
        raise Unsupported(node, "weight= or pos_weight=")
    x, t = tensor(node, a["input"]), tensor(node, a["target"], "target")
    if x.shape != t.shape or x.rank == 0:
        raise Unsupported(node, f"input {list(x.shape)} and target {list(t.shape)} (same shape, at least 1-d)")
    st = imp.state
    n, count = x.shape[0], int(torch.Size(x.shape).numel())
    scale = n / count if reduction == "mean" else float(n)
    expr = f"{'bce_logits' if logits else 'bce'}({st.torch_order(x)}, {st.torch_order(t)})"
    return st.bind(node.name, expr if scale == 1.0 else f"{expr} * {number(scale)}", ())
