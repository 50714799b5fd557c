"""What a model function takes and returns, as recorded on its `func.func`.

The frontend writes it; the runtime and the API read it. It survives every pass because it is
a set of function attributes:

    mlc.arg_names    = ["x", "y", "w1", ...]     one per function argument, in order
    mlc.arg_kinds    = ["input", "input", "param", ...]   input | param | state (the model's),
                                                 optimizer_state | hyper (a training step's)
    mlc.param_inits  = ["", "", "glorot", ...]   "" for inputs; zeros | ones | glorot |
                                                 normal(STD) | uniform(LO, HI)
    mlc.output_names = ["loss", "logits"]
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import ArrayAttr, DictionaryAttr, Float32Type, Float64Type, IntegerType, MemRefType, StringAttr, TensorType

Shape = tuple[int, ...]

IN_PLACE = "mlc.in_place"
"""On a model or step function: {result name: the argument it may be written into}: a training
step's updated parameters and optimizer state, a training-mode model's updated states (see
mlc-lower-loops, which writes them in place where that is safe)."""


@dataclass(frozen=True)
class TensorSpec:
    """A named argument or result: shape, dtype and, for parameters, the initialiser."""

    name: str
    shape: Shape
    dtype: np.dtype
    kind: str = "input"
    init: str = ""


@dataclass(frozen=True)
class ModelSignature:
    name: str
    args: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        return tuple(a for a in self.args if a.kind == "input")

    @property
    def params(self) -> tuple[TensorSpec, ...]:
        return tuple(a for a in self.args if a.kind == "param")

    @property
    def states(self) -> tuple[TensorSpec, ...]:
        """The model's non-trainable state (`state` declarations): the caller's, like params."""
        return tuple(a for a in self.args if a.kind == "state")

    @staticmethod
    def of(f: func.FuncOp) -> ModelSignature:
        """Read the signature of a model function at any level (tensors or memrefs)."""
        names = _strings(f, "mlc.arg_names")
        kinds = _strings(f, "mlc.arg_kinds")
        inits = _strings(f, "mlc.param_inits")
        out_names = _strings(f, "mlc.output_names")
        types = list(f.function_type.inputs)
        args = tuple(
            TensorSpec(n, *shape_and_dtype(t), kind=k, init=i)
            for n, k, i, t in zip(names, kinds, inits, types[: len(names)], strict=True)
        )
        results = list(f.function_type.outputs) or types[len(names) : len(names) + len(out_names)]
        outputs = tuple(TensorSpec(n, *shape_and_dtype(t), kind="output") for n, t in zip(out_names, results, strict=True))
        return ModelSignature(f.sym_name.data, args, outputs)

    def attach(self, f: func.FuncOp) -> None:
        """Record this signature on `f` (the frontend's side)."""
        f.attributes["mlc.arg_names"] = _array([a.name for a in self.args])
        f.attributes["mlc.arg_kinds"] = _array([a.kind for a in self.args])
        f.attributes["mlc.param_inits"] = _array([a.init for a in self.args])
        f.attributes["mlc.output_names"] = _array([o.name for o in self.outputs])

    def to_json(self) -> dict:
        """The signature as JSON data (the program cache's records)."""
        def spec(s: TensorSpec) -> list:
            return [s.name, list(s.shape), s.dtype.str, s.kind, s.init]

        return {"name": self.name, "args": [spec(a) for a in self.args], "outputs": [spec(o) for o in self.outputs]}

    @staticmethod
    def from_json(data: dict) -> ModelSignature:
        def spec(item: list) -> TensorSpec:
            name, shape, dtype, kind, init = item
            return TensorSpec(name, tuple(shape), np.dtype(dtype), kind, init)

        return ModelSignature(data["name"], tuple(map(spec, data["args"])), tuple(map(spec, data["outputs"])))


def tie_results(f: func.FuncOp, ties: dict[str, str]) -> None:
    """Record {result name: argument name} in `f`'s `mlc.in_place`, keeping the ties already there."""
    known = f.attributes.get(IN_PLACE)
    merged = {**(known.data if isinstance(known, DictionaryAttr) else {}), **{r: StringAttr(a) for r, a in ties.items()}}
    f.attributes[IN_PLACE] = DictionaryAttr(merged)


def is_model(f: func.FuncOp) -> bool:
    return "mlc.arg_names" in f.attributes


def _array(items: list[str]) -> ArrayAttr[StringAttr]:
    return ArrayAttr([StringAttr(s) for s in items])


def _strings(f: func.FuncOp, key: str) -> list[str]:
    attr = f.attributes.get(key)
    if not isinstance(attr, ArrayAttr):
        raise ValueError(f"@{f.sym_name.data} is not an mlc model function (no {key} attribute)")
    return [s.data for s in attr.data]  # pyright: ignore[reportAttributeAccessIssue]


def shape_and_dtype(t: object) -> tuple[Shape, np.dtype]:
    assert isinstance(t, TensorType | MemRefType), t
    elt = t.get_element_type()
    if isinstance(elt, IntegerType):  # packed words (mlc-bitpack) a split passes between functions
        return tuple(t.get_shape()), np.dtype(f"int{elt.width.data}")
    dtype = {Float32Type: np.dtype(np.float32), Float64Type: np.dtype(np.float64)}[type(elt)]
    return tuple(t.get_shape()), dtype


_INIT = re.compile(r"^(zeros|ones|glorot|normal\(([^,()]+)\)|uniform\(([^,()]+),([^,()]+)\))$")


def init_tensor(spec: TensorSpec, rng: np.random.Generator) -> np.ndarray:
    """Draw a parameter's initial value from its initialiser (see LANGUAGE.md)."""
    m = _INIT.match(spec.init.replace(" ", ""))
    if m is None:
        raise ValueError(f"parameter '{spec.name}': unknown initialiser '{spec.init}'")
    shape = spec.shape
    if spec.init == "zeros":
        value = np.zeros(shape)
    elif spec.init == "ones":
        value = np.ones(shape)
    elif spec.init == "glorot":
        fan_in, fan_out = glorot_fans(shape)
        limit = np.sqrt(6.0 / max(fan_in + fan_out, 1))
        value = rng.uniform(-limit, limit, size=shape)
    elif m.group(2) is not None:
        value = rng.normal(0.0, float(m.group(2)), size=shape)
    else:
        value = rng.uniform(float(m.group(3)), float(m.group(4)), size=shape)
    return np.array(value, dtype=spec.dtype, order="C")  # (np.ascontiguousarray makes a 0-d value 1-d)


def glorot_fans(shape: Shape) -> tuple[int, int]:
    """fan_in/fan_out: I/O for dense `[I, O]`, KH*KW*C / KH*KW*F for filters `[KH, KW, C, F]`.

    Other ranks generalise the filter rule: the receptive field is every dimension but the last
    two.
    """
    if len(shape) < 2:
        n = shape[0] if shape else 1
        return n, n
    field = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    return field * shape[-2], field * shape[-1]
