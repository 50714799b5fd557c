"""FX graphs (Dynamo's, torch-level) to mlc models: the PyTorch frontend beside the language.

`import_graph(gm, args)` translates a `torch.fx.GraphModule` called with `args` into the text of
an mlc model (`Imported.text`), which goes through the same parser, graph dialect, passes and
code as any `.mlc` file: nothing is imported that the language cannot say. Shapes are those of
the call: the graph is first run on meta tensors of the arguments' shapes (`propagate`), so a
graph Dynamo made with symbolic sizes imports at each concrete shape.

Placeholders become the model's arguments: a tensor that requires grad is a `param` (it gets a
gradient), a batch norm's running statistics are `state`s, anything else an `input`; an integer
class target is passed as its one-hot (`Argument.make`), and random tensors (dropout masks,
`randn_like`) are drawn by the caller from PyTorch's generator in graph order, so a seeded run
draws what eager draws. The op translations are in `layers`, `elementwise`, `shapes` and `losses` beside this module.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from importlib import import_module
from dataclasses import dataclass
from typing import Any

import torch
import torch.utils._pytree as pytree
from torch.fx import GraphModule, Node

from mlc.frontend.pytorch.graph import Argument, ImportState, Unsupported, Value

MODEL_NAME = "torch_graph"
TRANSLATIONS = ("layers", "elementwise", "shapes", "losses")
"""The modules beside this one that hold the op translations, by family."""

Handler = Callable[["Importer", Node, tuple, dict], Any]
FUNCTIONS: dict[Any, Handler] = {}
"""call_function targets (torch functions, operator.*) -> their translation."""
METHODS: dict[str, Handler] = {}
"""call_method names (`x.view(...)`) -> their translation."""


def handles(*targets: Any) -> Callable[[Handler], Handler]:
    """Register a translation for functions (objects) and methods (strings)."""
    def register(fn: Handler) -> Handler:
        for t in targets:
            (METHODS if isinstance(t, str) else FUNCTIONS)[t] = fn
        return fn
    return register


@dataclass(frozen=True)
class Imported:
    """An FX graph as an mlc model, and how to call it."""

    text: str
    arguments: tuple[Argument, ...]
    outputs: tuple[str | None, ...]
    """Per flattened graph output: the mlc output name (None for a non-tensor output, in `constants`)."""
    output_spec: Any
    """The pytree spec that rebuilds the graph's output structure from the flat list."""
    constants: tuple[Any, ...]
    effects: tuple[tuple[int, str, float], ...]
    training: bool


class Importer:
    """Translates the nodes of one graph, in order (see the module docstring)."""

    def __init__(self, gm: GraphModule, args: Sequence[Any]) -> None:
        self.gm = gm
        self.args = list(args)
        placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
        for node, a in zip(placeholders, args):
            if isinstance(a, torch.Tensor) and a.device.type != "cpu":
                raise Unsupported(node, f"a tensor on {a.device} (mlc's C programs run on the CPU)")
        self.meta = propagate(gm, args)
        floats = {v.dtype for v in self.meta.values() if isinstance(v, torch.Tensor) and v.dtype.is_floating_point}
        if len(floats) > 1:
            raise Unsupported(next(iter(gm.graph.nodes)), f"mixed float dtypes {sorted(map(str, floats))}; mlc programs have one")
        dtype = floats.pop() if floats else torch.float32
        if dtype not in (torch.float32, torch.float64):
            raise Unsupported(next(iter(gm.graph.nodes)), f"dtype {dtype}: mlc computes in float32 or float64")
        empty = next((n for n, v in self.meta.items() if isinstance(v, torch.Tensor) and v.numel() == 0), None)
        if empty is not None:
            raise Unsupported(empty, f"an empty tensor {list(self.meta[empty].shape)} (mlc's dimensions are positive)")
        self.state = ImportState("f32" if dtype == torch.float32 else "f64")
        self.torch_dtype = dtype
        self.values: dict[Node, Any] = {}
        self._placeholders = {n: k for k, n in enumerate(n for n in gm.graph.nodes if n.op == "placeholder")}
        self._declared: dict[Node, Value] = {}
        self._states = set(_running_statistics(gm))

    # -- arguments ----------------------------------------------------------------------------
    def placeholder(self, node: Node) -> Value:
        """The model argument for a placeholder (declared on first use): `state` if a batch norm
        keeps its running statistics in it, `param` if it requires grad, else `input`."""
        if node in self._declared:
            return self._declared[node]
        position = self._placeholders[node]
        real = self.args[position]
        kind = "state" if node in self._states else "param" if real.requires_grad else "input"
        value = Value(self.state.fresh(node.name), tuple(real.shape))
        self.state.arguments.append(Argument(value.name, kind, position, value.shape))
        self._declared[node] = value
        return value

    def derived(self, hint: str, shape: Sequence[int], make: tuple, source: int = -1) -> Value:
        """An input the caller makes at each call (a one-hot target, a random draw)."""
        value = Value(self.state.fresh(hint), tuple(shape))
        self.state.arguments.append(Argument(value.name, "input", source, value.shape, make))
        return value

    def position(self, node: Node) -> int:
        return self._placeholders[node]

    # -- nodes ----------------------------------------------------------------------------------
    def run(self) -> Imported:
        graph_outputs: Any = None
        for node in self.gm.graph.nodes:
            if node.op == "placeholder":
                self.values[node] = node  # resolved to a declared argument when an op uses it
            elif node.op == "output":
                graph_outputs = node.args[0]
            elif node.op in ("call_function", "call_method"):
                self.values[node] = self._translate(node)
            else:
                raise Unsupported(node, f"FX '{node.op}' nodes")
        return self._finish(graph_outputs)

    def _translate(self, node: Node) -> Any:
        meta = self.meta.get(node)
        if node.op == "call_function" and node.target is operator.getitem and isinstance(node.args[0], Node) \
                and isinstance(self.values.get(node.args[0]), tuple):
            return self.values[node.args[0]][node.args[1]]
        if not isinstance(meta, torch.Tensor | tuple | list) or node.target in (torch.Tensor.size, "size", "dim"):
            return meta  # a size, a shape, a dtype: what the call has, baked into the program
        handler = FUNCTIONS.get(node.target) if node.op == "call_function" else METHODS.get(str(node.target))
        if handler is None:
            raise Unsupported(node, "mlc has no translation for it")
        args = tuple(self.resolve(a) for a in node.args)
        kwargs = {k: self.resolve(v) for k, v in node.kwargs.items()}
        return handler(self, node, args, kwargs)

    def resolve(self, a: Any) -> Any:
        """An FX argument with its nodes replaced by imported values (tensors) or the call's
        concrete values (sizes)."""
        if isinstance(a, Node):
            v = self.values[a]
            if v is not a:
                return v
            real = self.args[self._placeholders[a]]
            if not isinstance(real, torch.Tensor):
                return real  # a size Dynamo made symbolic: this call's value
            floating = isinstance(real, torch.Tensor) and real.dtype.is_floating_point
            return self.placeholder(a) if floating else a  # an integer tensor: a target, made into a one-hot
        if isinstance(a, list | tuple):
            return type(a)(self.resolve(x) for x in a)
        return a

    def out_shape(self, node: Node) -> tuple[int, ...]:
        """The PyTorch shape of `node`'s tensor at this call."""
        return tuple(self.meta_of(node).shape)

    def meta_of(self, node: Node) -> torch.Tensor:
        m = self.meta[node]
        assert isinstance(m, torch.Tensor)
        return m

    def _finish(self, graph_outputs: Any) -> Imported:
        flat, spec = pytree.tree_flatten(graph_outputs)
        names: list[str | None] = []
        constants: list[Any] = []
        out_lines: list[str] = []
        for k, item in enumerate(flat):
            value = self.resolve(item)
            if not isinstance(value, Value):
                names.append(None)
                constants.append(value)
                continue
            expr = self.state.torch_order(value)
            name = self.state.fresh(f"out{k}")
            out_lines.append(f"  {name} = {expr}")
            names.append(name)
            constants.append(None)
        decls = [f"  {a.kind:<6} {a.name}: {self.state.dtype}{list(a.shape)}" for a in self.state.arguments]
        ops = "".join(f"{text}\n" for text in self.state.custom_ops.values())
        outputs = [n for n in names if n is not None]
        if not outputs:
            raise Unsupported(next(iter(self.gm.graph.nodes)), "the graph returns no tensor")
        body = "\n".join([*decls, *self.state.lines, *out_lines, f"  output {', '.join(outputs)}"])
        return Imported(f"{ops}model {MODEL_NAME} {{\n{body}\n}}\n", tuple(self.state.arguments), tuple(names), spec,
                        tuple(constants), tuple(self.state.effects), bool(self.state.training))


def import_graph(gm: GraphModule, args: Sequence[Any]) -> Imported:
    """The mlc model of `gm` called with `args` (raises `Unsupported` naming the first node
    mlc cannot import)."""
    for family in TRANSLATIONS:  # importing them registers their translations
        import_module(f"mlc.frontend.pytorch.{family}")
    return Importer(gm, args).run()


def _running_statistics(gm: GraphModule) -> list[Node]:
    """The placeholders that batch norms use as running mean and variance."""
    import torch.nn.functional as F

    found = []
    for node in gm.graph.nodes:
        if node.op == "call_function" and node.target is F.batch_norm:
            for k, name in ((1, "running_mean"), (2, "running_var")):
                a = node.args[k] if len(node.args) > k else node.kwargs.get(name)
                if isinstance(a, Node) and a.op == "placeholder":
                    found.append(a)
    return found


def propagate(gm: GraphModule, args: Sequence[Any]) -> dict[Node, Any]:
    """Every node's value when `gm` runs on meta tensors shaped like `args` (sizes concrete)."""
    values: dict[Node, Any] = {}

    class Recorder(torch.fx.Interpreter):
        def run_node(self, n: Node) -> Any:
            result = super().run_node(n)
            values[n] = result
            return result

    meta_args = [torch.empty(a.shape, dtype=a.dtype, device="meta") if isinstance(a, torch.Tensor) else a for a in args]
    try:
        Recorder(gm).run(*meta_args)
    except Exception as error:  # an op without a meta kernel: named by the node that failed
        node = next((n for n in gm.graph.nodes if n.op != "placeholder" and n not in values), next(iter(gm.graph.nodes)))
        raise Unsupported(node, f"its shapes cannot be computed ({type(error).__name__}: {error})") from None
    return values


def describe(node: Node, meta: dict[Node, Any] | None = None) -> str:
    """`torch.nn.functional.foo` / `Tensor.foo` with its arguments' shapes, for diagnostics."""
    if node.op == "call_method":
        what = f"Tensor.{node.target}"
    elif node.op == "call_function":
        module = getattr(node.target, "__module__", None) or "torch"
        what = f"{module}.{getattr(node.target, '__name__', node.target)}"
    else:
        what = f"{node.op} '{node.target}'"
    shapes = []
    for a in node.args:
        if isinstance(a, Node) and meta is not None and isinstance(meta.get(a), torch.Tensor):
            m = meta[a]
            shapes.append(f"{str(m.dtype).removeprefix('torch.')}{list(m.shape)}")
    return what + (f" on {', '.join(shapes)}" if shapes else "")


def source_line(node: Node) -> str | None:
    """`file:line` of the user's code that made `node` (from Dynamo's stack trace), if known."""
    trace = node.meta.get("stack_trace")
    if not trace:
        return None
    frames = [line.strip() for line in trace.strip().splitlines() if line.strip().startswith("File ")]
    if not frames:
        return None
    last = frames[-1]  # File "x.py", line 12, in forward
    try:
        path = last.split('"')[1]
        line = last.split("line ")[1].split(",")[0]
    except IndexError:
        return None
    return f"{path}:{line}"


__all__ = ["FUNCTIONS", "METHODS", "Imported", "Importer", "Unsupported", "describe", "import_graph", "propagate",
           "source_line"]
