"""Elementwise PyTorch ops as mlc expressions: arithmetic with broadcasting and Python scalars,
activations, clamps. A result keeps its operands' layout, so an activation between two
convolutions stays NHWC."""

from __future__ import annotations

import math
import operator
from typing import Any

import torch
import torch.nn.functional as F
from torch.fx import Node

from mlc.frontend.pytorch.graph import INTEGER_TENSOR, Unsupported, Value, arguments, number, tensor, tup
from mlc.frontend.pytorch.importer import Importer, handles


def literal(node: Node, x: Any) -> str:
    """A Python scalar operand as an mlc literal (parenthesised when negative)."""
    if isinstance(x, Node):
        raise Unsupported(node, f"an operand is {INTEGER_TENSOR}")
    if isinstance(x, bool) or not isinstance(x, int | float):
        raise Unsupported(node, f"an operand of type {type(x).__name__}")
    if not math.isfinite(x):
        raise Unsupported(node, f"the non-finite scalar {x}")
    text = number(x)
    return f"({text})" if text.startswith("-") else text


def operands(imp: Importer, node: Node, items: list[Any]) -> tuple[list[str], tuple[int, ...] | None]:
    """The operands of a broadcasting op as mlc expressions in one layout (the first full-rank
    tensor operand's), and that layout. A lower-rank tensor is aligned at the trailing dims as
    NumPy and PyTorch align it, then held in the same layout."""
    st = imp.state
    rank = len(imp.out_shape(node))
    perm = next((v.perm for v in items if isinstance(v, Value) and v.rank == rank and v.perm), None)
    exprs = []
    for v in items:
        if not isinstance(v, Value):
            exprs.append(literal(node, v))
        elif v.rank == rank or perm is None:
            exprs.append(st.as_perm(v, perm) if v.rank == rank else st.torch_order(v))
        else:
            padded = (1,) * (rank - v.rank) + v.shape
            aligned = Value(f"reshape({st.torch_order(v)}, {tup(padded)})", padded)
            exprs.append(st.as_perm(aligned, perm))
    return exprs, perm


BINARY = {operator.add: "+", operator.sub: "-", operator.mul: "*", operator.truediv: "/",
          torch.add: "+", torch.sub: "-", torch.mul: "*", torch.div: "/",
          "add": "+", "sub": "-", "mul": "*", "div": "/", "add_": "+", "sub_": "-", "mul_": "*", "div_": "/",
          operator.iadd: "+", operator.isub: "-", operator.imul: "*", operator.itruediv: "/"}


@handles(*BINARY)
def binary(imp: Importer, node: Node, args: tuple, kwargs: dict) -> Value | Node:
    counter = args[0]
    if isinstance(counter, Node) and counter.op == "placeholder" and str(node.target) == "add_" \
            and isinstance(args[1], int) and not kwargs:  # a batch norm's num_batches_tracked += 1
        imp.state.effects.append((imp.position(counter), "add_", args[1]))
        return counter
    if kwargs.get("alpha", 1) != 1:
        raise Unsupported(node, "alpha other than 1")
    if kwargs.get("rounding_mode") is not None:
        raise Unsupported(node, f"rounding_mode='{kwargs['rounding_mode']}'")
    if set(kwargs) - {"alpha", "rounding_mode"}:
        raise Unsupported(node, f"keywords {sorted(kwargs)}")
    (a, b), perm = operands(imp, node, list(args[:2]))
    op = BINARY[node.target if node.op == "call_function" else str(node.target)]
    result = imp.state.bind(node.name, f"{a} {op} {b}", imp.out_shape(node), perm)
    return in_place(imp, node, result)


def in_place(imp: Importer, node: Node, result: Value) -> Value:
    """An in-place op (`relu_`, `x += y`, `inplace=True`) rebinds its first operand: later
    uses of that node see the new value, as they see the mutated tensor in eager."""
    target = node.args[0]
    mutating = str(node.target).endswith("_") or node.target in (operator.iadd, operator.isub, operator.imul, operator.itruediv) \
        or node.kwargs.get("inplace") is True
    if mutating and isinstance(target, Node):
        if target.op == "placeholder":
            raise Unsupported(node, "an in-place update of a graph input")
        imp.values[target] = result
    return result


@handles(operator.neg, torch.neg, "neg")
def neg(imp: Importer, node: Node, args: tuple, kwargs: dict) -> Value:
    x = tensor(node, args[0])
    return imp.state.bind(node.name, f"-{x.name}", x.shape, x.perm)


@handles(operator.pow, torch.pow, "pow")
def power(imp: Importer, node: Node, args: tuple, kwargs: dict) -> Value:
    base, exponent = args[:2]
    if isinstance(base, Value) and exponent == 2:
        return imp.state.bind(node.name, f"square({base.name})", base.shape, base.perm)
    if isinstance(base, Value) and exponent == 0.5:
        return imp.state.bind(node.name, f"sqrt({base.name})", base.shape, base.perm)
    (a, b), perm = operands(imp, node, [base, exponent])
    return imp.state.bind(node.name, f"pow({a}, {b})", imp.out_shape(node), perm)


UNARY = {
    "relu": (F.relu, torch.relu, "relu", "relu_", torch.relu_),
    "sigmoid": (torch.sigmoid, F.sigmoid, "sigmoid"),
    "tanh": (torch.tanh, F.tanh, "tanh"),
    "exp": (torch.exp, "exp"),
    "log": (torch.log, "log"),
    "sqrt": (torch.sqrt, "sqrt"),
    "abs": (torch.abs, operator.abs, "abs"),
    "silu": (F.silu,),
    "square": (torch.square, "square"),
}
"""mlc's elementwise function -> the PyTorch spellings of it."""
_UNARY_NAME = {t: name for name, targets in UNARY.items() for t in targets}


@handles(*_UNARY_NAME)
def unary(imp: Importer, node: Node, args: tuple, kwargs: dict) -> Value:
    if set(kwargs) - {"inplace"}:
        raise Unsupported(node, f"keywords {sorted(kwargs)}")
    x = tensor(node, args[0])
    name = _UNARY_NAME[node.target if node.op == "call_function" else str(node.target)]
    return in_place(imp, node, imp.state.bind(node.name, f"{name}({x.name})", x.shape, x.perm))


@handles(F.gelu, "gelu")
def gelu(imp: Importer, node: Node, args: tuple, kwargs: dict) -> Value:
    x = tensor(node, args[0])
    approximate = kwargs.get("approximate", args[1] if len(args) > 1 else "none")
    form = "" if approximate == "none" else ", approximate=tanh"
    return imp.state.bind(node.name, f"gelu({x.name}{form})", x.shape, x.perm)


@handles(F.softplus, torch._C._nn.softplus)
def softplus(imp: Importer, node: Node, args: tuple, kwargs: dict) -> Value:
    a = arguments(node, args, kwargs, ("input", "beta", "threshold"), {"beta": 1.0, "threshold": 20.0})
    x, beta, threshold = tensor(node, a["input"]), float(a["beta"]), float(a["threshold"])
    if beta == 0:
        raise Unsupported(node, "beta=0 (a division by zero)")
    options = "".join(f", {k}={number(v)}" for k, v, default in (("beta", beta, 1.0), ("threshold", threshold, 20.0))
                      if v != default)
    return imp.state.bind(node.name, f"softplus({x.name}{options})", x.shape, x.perm)


@handles(F.leaky_relu, torch._C._nn.leaky_relu)
def leaky_relu(imp: Importer, node: Node, args: tuple, kwargs: dict) -> Value:
    a = arguments(node, args, kwargs, ("input", "negative_slope", "inplace"), {"negative_slope": 0.01, "inplace": False})
    x = tensor(node, a["input"])
    return in_place(imp, node, imp.state.bind(node.name, f"leaky_relu({x.name}, alpha={number(float(a['negative_slope']))})", x.shape, x.perm))


@handles(F.elu, torch._C._nn.elu)
def elu(imp: Importer, node: Node, args: tuple, kwargs: dict) -> Value:
    a = arguments(node, args, kwargs, ("input", "alpha", "inplace"), {"alpha": 1.0, "inplace": False})
    x = tensor(node, a["input"])
    return in_place(imp, node, imp.state.bind(node.name, f"elu({x.name}, alpha={number(float(a['alpha']))})", x.shape, x.perm))


@handles(F.hardtanh, torch._C._nn.hardtanh, F.relu6)
def hardtanh(imp: Importer, node: Node, args: tuple, kwargs: dict) -> Value:
    if node.target is F.relu6:
        a = {**arguments(node, args, kwargs, ("input", "inplace"), {"inplace": False}), "min_val": 0.0, "max_val": 6.0}
    else:
        a = arguments(node, args, kwargs, ("input", "min_val", "max_val", "inplace"), {"min_val": -1.0, "max_val": 1.0, "inplace": False})
    x = tensor(node, a["input"])
    expr = f"hardtanh({x.name}, lo={number(float(a['min_val']))}, hi={number(float(a['max_val']))})"
    return in_place(imp, node, imp.state.bind(node.name, expr, x.shape, x.perm))


@handles(torch.clamp, torch.clip, "clamp", "clip", "clamp_")
def clamp(imp: Importer, node: Node, args: tuple, kwargs: dict) -> Value:
    a = arguments(node, args, kwargs, ("input", "min", "max"), {"min": None, "max": None})
    x = tensor(node, a["input"])
    lo, hi = a["min"], a["max"]
    if lo is None and hi is None:
        raise Unsupported(node, "neither min nor max")
    bounds = [b for b in (lo, hi) if b is not None]
    exprs, perm = operands(imp, node, [x, *bounds])
    if lo is not None and hi is not None:
        expr = f"clamp({exprs[0]}, {exprs[1]}, {exprs[2]})"
    else:
        expr = f"{'maximum' if lo is not None else 'minimum'}({exprs[0]}, {exprs[1]})"
    return in_place(imp, node, imp.state.bind(node.name, expr, imp.out_shape(node), perm))


@handles(torch.maximum, torch.minimum, "maximum", "minimum")
def extremum(imp: Importer, node: Node, args: tuple, kwargs: dict) -> Value:
    (a, b), perm = operands(imp, node, list(args[:2]))
    name = str(getattr(node.target, "__name__", node.target))
    return imp.state.bind(node.name, f"{name}({a}, {b})", imp.out_shape(node), perm)
