"""The Python API: `mlc.compile(...) -> Program`, then `Program.run(params, inputs)`."""

from __future__ import annotations

import ctypes
import json
import threading
import warnings
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp

from mlc.backends.c.runtime import BufferSpec, CFunction, load_compiled, load_library, unit_count
from mlc.backends.c.tiers import OptimisedBuild, load_tiered
from mlc.backends.cache import CacheWarning, cached_build, content_key, discard, lookup
from mlc.errors import decode_source
from mlc.graph.signature import ModelSignature, init_tensor
from mlc.loops.target import host
from mlc.runtime.arguments import check_names, checked
from mlc.runtime.lowering import is_path, load_module, make_context, run_located, run_pipeline, select_model  # noqa: F401
from mlc.runtime.trainer import Trainer


def compile(  # noqa: A001 - the public name mirrors torch.compile / mlc-opt
    source: str | Path | ModuleOp,
    *,
    model: str | None = None,
    target: str = "c",
    pipeline: str | None = None,
    tiered: bool = False,
) -> Program:
    """Compile a model to a loaded native library.

    `source` is a path to a `.mlc` or `.mlir` file, program text in either language, or an xDSL
    ModuleOp. `pipeline` overrides the default lowering pipeline (`mlc-opt -p` syntax). User
    errors raise `mlc.CompileError` with the located diagnostic.

    Compiling the same text again (in any process) skips the frontend, the passes and the C
    compiler: the program (its C source and signature) is cached under a hash of the text, the
    options, mlc's own code and the vectors and cores the schedules were chosen for, and its
    library under a hash of the C source and everything the build depends on (compiler, flags,
    host CPU: `build_identity`).

    `tiered=True`: when the library is not cached and its C is large, the program starts on a
    quick build (-Og, a third of the compile time, the same bits) while the optimised build
    compiles in the background and replaces it when ready (`Program.wait_optimised`).
    """
    from mlc.passes.pipelines import DEFAULT_PIPELINE

    if target != "c":
        raise ValueError(f"unknown target '{target}' (available: c)")
    return build_program(source, model, pipeline or DEFAULT_PIPELINE, tiered=tiered)


def build_program(source: str | Path | ModuleOp, model: str | None, pipeline: str, entry_suffix: str = "",
                  tiered: bool = False) -> Program:
    """Run `pipeline` on the chosen model and load the function `<model><entry_suffix>`.

    Gradient and training variants are the same model through a longer pipeline, whose passes
    add `@<model>_grad` or `@<model>_step` next to the model.
    """
    return build_programs(source, model, pipeline, (entry_suffix,), tiered)[0]


def build_programs(source: str | Path | ModuleOp, model: str | None, pipeline: str,
                   entry_suffixes: tuple[str, ...], tiered: bool = False) -> list[Program]:
    """`build_program` for several functions one pipeline makes (the halves of a split VJP): the
    passes up to the lowering to loops run once; then each function, the largest first, is
    lowered in a module of its own and its C compiled in the background while the next one is
    lowered (`split_lowering`)."""
    from mlc.backends.c.emitter import emit_c
    from mlc.passes.pipelines import split_lowering

    keys: list[str] = []
    if not isinstance(source, ModuleOp):
        text = _read_source(source)
        keys = [content_key("program", _code_version(), repr(host()), text, model or "", pipeline, suffix)
                for suffix in entry_suffixes]
        cached = [_load_cached(key, source, model, pipeline, tiered) for key in keys]
        if all(program is not None for program in cached):
            return cached  # type: ignore[return-value]
    ctx = make_context()
    module = load_module(source, ctx)
    chosen = select_model(module, model)
    for op in list(module.ops):
        if op is not chosen:
            module.body.block.detach_op(op)
    name = chosen.sym_name.data
    wanted = tuple(name + suffix for suffix in entry_suffixes)
    head, lowering = split_lowering(pipeline)
    run_located(module, head, ctx, wanted, source)
    entries = {op.sym_name.data: op for op in module.ops if isinstance(op, func.FuncOp) and op.sym_name.data in wanted}
    if missing := [w for w in wanted if w not in entries]:
        raise ValueError(f"the pipeline '{pipeline}' produced no function @{missing[0]}")
    builds = {}
    with ThreadPoolExecutor(max_workers=len(wanted)) as pool:
        for w in sorted(wanted, key=lambda w: -sum(1 for _ in entries[w].walk())):
            part = ModuleOp([module.body.block.detach_op(entries[w])])
            run_located(part, lowering, ctx, (), source)
            builds[w] = pool.submit(Program.build, ModelSignature.of(part.body.block.first_op), part, source, name,
                                    pipeline, emit_c(part, units=unit_count(len(wanted))), tiered)
            if not tiered:
                part.verify()  # while its C compiles
        programs = [builds[w].result() for w in wanted]
    if tiered:
        for program in programs:
            _verify_after_tier_up(program)
    for program, key in zip(programs, keys):
        _store(program, key)
    return programs


def split_vjp(source: str | Path | ModuleOp, model: str | None, wrt: str = "params",
              training: bool = True, tiered: bool = False) -> tuple[Program, Program]:
    """The two halves of the model's VJP (`Program.split_vjp_programs`), from one pipeline run
    (`build_programs`)."""
    from mlc.passes.pipelines import gradient_pipeline

    _check_wrt(wrt)
    pipeline = gradient_pipeline(wrt, vjp=True, training=training, split=True)
    forward, backward = build_programs(source, model, pipeline, ("_grad_forward", "_grad_backward"), tiered)
    return forward, backward


def _check_wrt(wrt: str) -> None:
    if wrt not in ("params", "inputs", "all"):
        raise ValueError(f"wrt must be 'params', 'inputs' or 'all', got '{wrt}'")


def _read_source(source: str | Path) -> str:
    text = str(source)
    if is_path(source):
        path = Path(source)
        return path.suffix + "\0" + decode_source(path.read_bytes(), str(path)) if path.exists() else text
    return text


_CODE_VERSION: list[str] = []


def _code_version() -> str:
    """A hash of mlc's own sources: a cached program is only reused by the code that made it."""
    if not _CODE_VERSION:
        root = Path(__file__).resolve().parent.parent  # the mlc package
        files = sorted(p for p in root.rglob("*") if p.suffix in (".py", ".lark"))
        _CODE_VERSION.append(content_key(*(f"{p.relative_to(root)}\0{p.read_text()}" for p in files)))
    return _CODE_VERSION[0]


class Program:
    """A compiled model: named inputs, parameters and outputs over NumPy arrays."""

    def __init__(self, signature: ModelSignature, c_source: str, library_path: Path,
                 arg_specs: list[BufferSpec], arena_bytes: int | None, module: ModuleOp | None = None,
                 source: str | Path | ModuleOp | None = None, model: str | None = None,
                 memory: Mapping[str, int] | None = None, pipeline: str | None = None) -> None:
        self.signature = signature
        self._pipeline = pipeline
        self._source = source.clone() if isinstance(source, ModuleOp) else source
        self._model = model
        self._variants: dict[tuple[str, str], Program] = {}
        self._splits: dict[tuple[str, bool], tuple[Program, Program]] = {}
        self._variants_lock = threading.Lock()
        self.c_source = c_source
        self.library_path = library_path
        self.arena_bytes = arena_bytes or 0
        self.module = module
        """The final loop-level IR (None when the program came from the cache)."""
        self._arg_specs = arg_specs
        self._reads_only = all(spec.read_only for spec in arg_specs[: len(signature.args)])
        """Whether the call writes no argument (only its fresh outputs): then the `checked`
        arguments need no further check (CFunction's `checked`)."""
        self._memory = dict(memory) if memory is not None else None
        self._fn = CFunction(load_library(library_path), signature.name, arg_specs, arena_bytes)
        self._optimising: OptimisedBuild | None = None
        self._tiered_variants = False
        """Whether the gradient and training variants are tiered builds too (`compile(tiered=)`)."""

    def wait_optimised(self) -> Program:
        """Block until a tiered program runs its optimised library (at once for any other)."""
        if self._optimising is not None:
            self._optimising.wait()
        return self

    @staticmethod
    def build(signature: ModelSignature, module: ModuleOp, source: str | Path | ModuleOp | None = None,
              model: str | None = None, pipeline: str | None = None, c_source: str | None = None,
              tiered: bool = False) -> Program:
        """Emit C for a lowered module (unless given its C), compile and load it (`load_tiered`
        when `tiered`)."""
        from mlc.backends.c.emitter import emit_c
        from mlc.passes.plan_memory import memory_report

        c_source = emit_c(module, units=unit_count(1)) if c_source is None else c_source
        lowered = next(op for op in module.ops if isinstance(op, func.FuncOp) and op.sym_name.data == signature.name)
        library, handle, optimising = _load_library(c_source, tiered)
        fn = CFunction.from_func(handle, lowered)
        program = Program(signature, c_source, library, list(fn.args), fn.arena_bytes, module, source, model,
                          memory_report(lowered), pipeline)
        return _with_tiers(program, tiered, optimising)

    # -- what the model takes and returns -----------------------------------------------------
    @property
    def name(self) -> str:
        return self.signature.name

    @property
    def function(self) -> CFunction:
        """The loaded entry point."""
        return self._fn

    @property
    def inputs(self) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
        return {s.name: (s.shape, s.dtype) for s in self.signature.inputs}

    @property
    def params(self) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
        return {s.name: (s.shape, s.dtype) for s in self.signature.params}

    @property
    def states(self) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
        """The model's non-trainable state (`state` declarations, such as batch-norm running
        statistics): passed in the same dict as the parameters, updated in place by a
        training-mode run."""
        return {s.name: (s.shape, s.dtype) for s in self.signature.states}

    @property
    def outputs(self) -> list[str]:
        return [s.name for s in self.signature.outputs if not _is_state_update(s.name, self.signature)]

    @property
    def training(self) -> bool:
        """Whether this program was compiled in training mode (gradient and training-step programs
        always are): it uses the batch's statistics and updates the model's states."""
        from mlc.passes.pipelines import is_training_mode

        return self._pipeline is not None and is_training_mode(self._pipeline)

    def memory_report(self) -> dict[str, int]:
        """The memory planner's figures for this function, in bytes (see `mlc.passes.plan_memory`).

        `arena` (the runtime's scratch buffer, exactly `arena_bytes`), `peak_saved` and
        `peak_temporaries` (saved activations and other arena buffers live at the arena's peak
        point), `params`, `optimizer_state`, `inputs` (with the hyper-parameter scalars),
        `outputs`, `total_peak` = params + optimizer_state + inputs + outputs + arena, and
        `recompute_macs` (what mlc-checkpoint added). For gradients:
        `prog.grad_program(budget="50%").memory_report()`; for a training step:
        `prog.trainer("adam").program.memory_report()`.
        """
        if self._memory is None:
            raise ValueError(f"@{self.name} was compiled without mlc-plan-memory, so it has no memory report")
        return dict(self._memory)

    def init_params(self, seed: int = 0) -> dict[str, np.ndarray]:
        """Fresh parameters and states drawn from their initialisers, reproducibly from `seed`
        (one dict, as PyTorch's `state_dict()` holds parameters and buffers together)."""
        rng = np.random.default_rng(seed)
        return {s.name: init_tensor(s, rng) for s in (*self.signature.params, *self.signature.states)}

    def run(self, params: Mapping[str, np.ndarray], inputs: Mapping[str, np.ndarray],
            training: bool = False) -> dict[str, np.ndarray]:
        """Run the model; returns its outputs by name. Arrays are passed without copies.

        `params` holds the parameters and the states. `training` is PyTorch's `train()` mode:
        ops with running statistics use the batch's and update the states in `params` in
        place (a gradient or training-step program always runs in training mode).
        """
        if training != self.training and self.signature.states:
            if not training:
                raise ValueError(f"@{self.name} runs in training mode (a gradient or training-step program)")
            return self._training_forward().run(params, inputs, training=True)
        check_names("parameter", params, (*self.signature.params, *self.signature.states))
        check_names("input", inputs, self.signature.inputs)
        return self._call({**params, **inputs}, params)

    def _call(self, arrays: Mapping[str, np.ndarray],
              states: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """Call the entry point with every argument by name (checked), returning the outputs;
        states updated by a result `new.<state>` are copied into their arrays in `states`
        (default: `arrays`)."""
        states = arrays if states is None else states
        args = [checked(spec, arrays[spec.name], not buffer.read_only)
                for spec, buffer in zip(self.signature.args, self._arg_specs)]
        outs = {s.name: np.empty(s.shape, dtype=s.dtype) for s in self.signature.outputs}
        self._fn(*args, *outs.values(), checked=self._reads_only)
        for spec, arg, buffer in zip(self.signature.args, args, self._arg_specs):
            if not buffer.read_only and arg is not arrays[spec.name]:  # updated in place, in a contiguous copy
                np.copyto(arrays[spec.name], arg)
        for name in [n for n in outs if _is_state_update(n, self.signature)]:
            np.copyto(states[name.removeprefix("new.")], outs.pop(name))
        return outs

    def _training_forward(self) -> Program:
        """This model's forward program in training mode (compiled on first use)."""
        from mlc.passes.pipelines import DEFAULT_PIPELINE, in_training_mode

        return self._variant(in_training_mode(self._pipeline or DEFAULT_PIPELINE), "")

    # -- gradients and training ---------------------------------------------------------------
    def _variant(self, pipeline: str, suffix: str) -> Program:
        """This model's function `@<model><suffix>` compiled through another pipeline (cached)."""
        if self._source is None:
            raise ValueError("this program was not compiled from a model source, so it has no gradient")
        with self._variants_lock:  # threads asking for the same variant compile it once
            if (pipeline, suffix) not in self._variants:
                self._variants[pipeline, suffix] = build_program(self._source, self._model, pipeline, suffix,
                                                                 self._tiered_variants)
            return self._variants[pipeline, suffix]

    def grad_program(self, wrt: str = "params", budget: str | int | None = None,
                     checkpoint: str | None = None) -> Program:
        """The compiled `@<model>_grad` (its `memory_report()` has the planner's figures).

        `budget` bounds its arena (bytes, "64KB", "1.5MiB" or "50%" of keep-all) and `checkpoint`
        is the keep-or-recompute policy (keep-all, recompute-all, sqrt, optimal): see
        `mlc.passes.checkpoint`. Compiled on first use, then cached per option set.
        """
        from mlc.passes.pipelines import checkpoint_pass, gradient_pipeline

        _check_wrt(wrt)
        return self._variant(gradient_pipeline(wrt, checkpoint=checkpoint_pass(budget, checkpoint)), "_grad")

    def grad(self, params: Mapping[str, np.ndarray], inputs: Mapping[str, np.ndarray], wrt: str = "params",
             budget: str | int | None = None, checkpoint: str | None = None) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """The outputs and the gradients of the loss (the first output) by argument name.

        `wrt` is "params", "inputs" or "all"; `budget` and `checkpoint` as in `grad_program`.
        """
        variant = self.grad_program(wrt, budget, checkpoint)
        outs = variant.run(params, inputs, training=True)
        grads = {name.removeprefix("grad."): outs.pop(name) for name in list(outs) if name.startswith("grad.")}
        return outs, grads

    def forward_program(self, training: bool) -> Program:
        """This model's forward program in inference mode (itself) or training mode."""
        return self._training_forward() if training and not self.training and self.signature.states else self

    def vjp_program(self, wrt: str = "params", budget: str | int | None = None, checkpoint: str | None = None,
                    training: bool = True) -> Program:
        """The compiled `@<model>_grad` of `mlc-autodiff{vjp=true}`: after the model's arguments
        it takes `cot.<output>` for each output, and returns the outputs and `grad.<argument>`.
        `training=False` differentiates the inference-mode model (batch norm with its running
        statistics, which then get no update)."""
        from mlc.passes.pipelines import checkpoint_pass, gradient_pipeline

        _check_wrt(wrt)
        pipeline = gradient_pipeline(wrt, checkpoint=checkpoint_pass(budget, checkpoint), vjp=True, training=training)
        return self._variant(pipeline, "_grad")

    def split_vjp_programs(self, wrt: str = "params", training: bool = True) -> tuple[Program, Program]:
        """`vjp_program` split in two (`mlc-split-vjp`): the forward returns the outputs and the
        `saved.<k>` values the backward reads; the backward takes, after the model arguments it
        reads, every saved value (a forward output by its name) and the cotangents, and returns
        the `grad.<argument>`s. For a framework's autograd, which calls the backward after the
        forward: the forward runs once. Checkpointing needs the unsplit `vjp_program`."""
        if self._source is None:
            raise ValueError("this program was not compiled from a model source, so it has no gradient")
        with self._variants_lock:
            if (wrt, training) not in self._splits:
                self._splits[wrt, training] = split_vjp(self._source, self._model, wrt, training,
                                                        self._tiered_variants)
            return self._splits[wrt, training]

    def vjp(self, params: Mapping[str, np.ndarray], inputs: Mapping[str, np.ndarray], cotangents: Mapping[str, np.ndarray],
            wrt: str = "params", budget: str | int | None = None,
            checkpoint: str | None = None, training: bool = True) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """The outputs and the vector-Jacobian products Σ_o cotangents[o] · d o / d argument by
        argument name (one cotangent per output, of its shape: what a backward pass receives);
        `wrt`, `budget` and `checkpoint` as in `grad`. In training mode unless `training=False`."""
        variant = self.vjp_program(wrt, budget, checkpoint, training)
        expected = tuple(replace(s, name=s.name.removeprefix("cot.")) for s in variant.signature.inputs if s.name.startswith("cot."))
        check_names("cotangent", cotangents, expected)
        outs = variant.run(params, {**inputs, **{f"cot.{k}": v for k, v in cotangents.items()}}, training=training)
        grads = {name.removeprefix("grad."): outs.pop(name) for name in list(outs) if name.startswith("grad.")}
        return outs, grads

    def trainer(self, optimizer: str = "sgd", budget: str | int | None = None, checkpoint: str | None = None,
                **hyper: float) -> Trainer:
        """A training loop step for this model: forward, backward and the update in one C call.

        sgd: lr, momentum=0, dampening=0, weight_decay=0, nesterov=False;
        adam: lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0 (PyTorch's defaults).
        `budget` and `checkpoint` bound the step's arena as in `grad_program`.
        """
        from mlc.passes.pipelines import checkpoint_pass, training_pipeline

        if optimizer not in ("sgd", "adam"):
            raise ValueError(f"optimizer must be 'sgd' or 'adam', got '{optimizer}'")
        nesterov = bool(hyper.get("nesterov", False))
        step = self._variant(training_pipeline(optimizer, nesterov, checkpoint_pass(budget, checkpoint)), "_step")
        return Trainer(step, optimizer, hyper)


def _store(program: Program, key: str) -> None:
    """Record `program` in the cache under `key` (atomically, as every cache entry)."""
    record = {
        "signature": program.signature.to_json(),
        "args": [[spec.dtype.str, list(spec.shape), spec.read_only] for spec in program._arg_specs],
        "arena_bytes": program._fn.arena_bytes,
        "memory": program._memory,
        "c_source": program.c_source,
    }
    cached_build(key, ".json", lambda path: path.write_text(json.dumps(record)))


def _load_cached(key: str, source: str | Path | None = None, model: str | None = None,
                 pipeline: str | None = None, tiered: bool = False) -> Program | None:
    """The program cached under `key`, or None (then it is compiled again). Its library is
    looked up by its C source under this process's build flags (and built if missing): a
    sanitized build, another compiler or CPU reuse the passes' work. A damaged record
    (unreadable JSON, missing fields) is removed with a warning, so the rebuild replaces it."""
    if (path := lookup(f"{key}.json")) is None:
        return None
    try:
        record = json.loads(path.read_text())
        args = [BufferSpec(np.dtype(d), tuple(s), r) for d, s, r in record["args"]]
        signature = ModelSignature.from_json(record["signature"])
        c_source, arena, memory = record["c_source"], record["arena_bytes"], record.get("memory")
        if not isinstance(c_source, str):
            raise TypeError("c_source is not text")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        warnings.warn(f"mlc: the cached program {path} is unusable ({error}); rebuilding it", CacheWarning,
                      stacklevel=2)
        discard(path)
        return None
    library, _, optimising = _load_library(c_source, tiered)
    program = Program(signature, c_source, library, args, arena, None, source, model, memory, pipeline)
    return _with_tiers(program, tiered, optimising)


def _verify_after_tier_up(program: Program) -> None:
    """Verify a tiered program's lowered IR once its optimised build has ended, in that build's
    thread (at once if it has none). The verify holds the GIL and a core as long as the quick
    build takes (LeNet-5's Adam step: 0.3 s), so it would delay the first call. A failure is
    mlc's own bug: a warning, as a failed optimised build is."""
    module = program.module
    assert module is not None
    if program._optimising is None:
        module.verify()
        return

    def verify(_: OptimisedBuild) -> None:
        try:
            module.verify()
        except Exception as error:  # noqa: BLE001 - whatever the verifier raises is reported
            warnings.warn(f"mlc: internal error: the lowered IR of @{program.name} does not verify ({error})",
                          RuntimeWarning, stacklevel=2)

    program._optimising.then(verify)


def _load_library(c_source: str, tiered: bool) -> tuple[Path, ctypes.CDLL, OptimisedBuild | None]:
    """The compiled C (`load_compiled`), or its first tier and the optimised build under way
    (`load_tiered`)."""
    return load_tiered(c_source) if tiered else (*load_compiled(c_source), None)


def _with_tiers(program: Program, tiered: bool, build: OptimisedBuild | None) -> Program:
    """`program`, its variants tiered when it is, running the optimised library once `build`
    (its background build, if any) has ended."""
    program._tiered_variants = tiered
    if build is not None:
        program._optimising = build
        build.then(lambda ended: _tier_up(program, ended))
    return program


def _tier_up(program: Program, build: OptimisedBuild) -> None:
    """Run the optimised library from now on; a failed build leaves the quick one, with a warning."""
    if build.result is None:
        warnings.warn(f"mlc: the optimised build of @{program.name} failed ({build.error}); "
                      "it goes on running its quick build (-Og)", RuntimeWarning, stacklevel=2)
        return
    path, library = build.result
    program.function.retarget(library)
    program.library_path = path


def _is_state_update(name: str, sig: ModelSignature) -> bool:
    """Whether the result `name` is a model state's update (not one of the model's outputs)."""
    return name.startswith("new.") and any(s.name == name.removeprefix("new.") for s in sig.states)
