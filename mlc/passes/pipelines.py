"""Named pass pipelines (xDSL pipeline strings)."""

LOWER_TO_C = "mlc-lower-loops,cse,mlc-plan-memory"
"""Index-level IR to loop-level IR with planned memory. Each of its passes works on one function
at a time, so a module's functions can go through it one by one (see `split_lowering`)."""

SCHEDULE = "mlc-auto-schedule"
"""Schedules every compute op (fusion decides which values get buffers, so it runs before
mlc-checkpoint, whose memory model follows it)."""

BITPACK = "mlc-bitpack"
"""Binary (±1 × ±1) sums as XOR and popcount on packed words: after autodiff, which differentiates
their float form, and before scheduling, which then schedules the packed nests like any other."""

DEFAULT_PIPELINE = f"mlc-lower-graph,{BITPACK},{SCHEDULE},{LOWER_TO_C}"
"""Graph-level IR to loop-level IR with planned memory: what `mlc-opt -t c` runs when no `-p` is given."""


TRAINING_LOWERING = "mlc-lower-graph{training=true}"
"""Gradient and training-step programs always run in training mode (PyTorch's `train()`)."""


def in_training_mode(pipeline: str) -> str:
    """`pipeline` with its graph lowering in training mode (ops with running statistics use the
    batch's and update their states; see mlc-lower-graph)."""
    if "mlc-lower-graph{" in pipeline:
        return pipeline.replace("mlc-lower-graph{", "mlc-lower-graph{training=true ", 1)
    return pipeline.replace("mlc-lower-graph", "mlc-lower-graph{training=true}", 1)


def is_training_mode(pipeline: str) -> bool:
    return "mlc-lower-graph{training=true" in pipeline


def checkpoint_pass(budget: str | int | None = None, policy: str | None = None) -> str:
    """`mlc-checkpoint{...}` with a budget (bytes, "64KB", "50%") and/or a policy; "" for neither."""
    options = []
    if budget is not None:
        options.append(f"budget={budget}" if isinstance(budget, int) else f'budget="{budget}"')
    if policy:
        options.append(f"policy={policy}")
    return f"mlc-checkpoint{{{' '.join(options)}}}" if options else ""


def gradient_pipeline(wrt: str = "params", loss: str = "", checkpoint: str = "", vjp: bool = False,
                      training: bool = True, split: bool = False) -> str:
    """The model plus `@<model>_grad` (outputs and loss gradients, or with `vjp` the products of
    the outputs' cotangents with their Jacobians), lowered to loops; `checkpoint` is an
    `mlc-checkpoint{...}` pass (see `checkpoint_pass`) or empty. `training=False` differentiates
    the inference-mode model (running statistics as constants: an input gradient in eval mode).
    `split` (with `vjp`, without `checkpoint`) makes `@<model>_grad_forward` and
    `@<model>_grad_backward` of it instead (see mlc-split-vjp)."""
    if split and (not vjp or checkpoint):
        raise ValueError("a split gradient is a vector-Jacobian product without checkpointing")
    options = f"wrt={wrt}" + (f" loss={loss}" if loss else "") + (" vjp=true" if vjp else "")
    lowering = TRAINING_LOWERING if training else "mlc-lower-graph"
    return (f"{lowering},mlc-autodiff{{{options}}},mlc-scatter-to-gather,{_then('mlc-split-vjp' if split else '')}"
            f"{BITPACK},{SCHEDULE},{_then(checkpoint)}{LOWER_TO_C}")


def training_pipeline(optimizer: str = "sgd", nesterov: bool = False, checkpoint: str = "") -> str:
    """The model plus `@<model>_step`: forward, backward and the optimizer update in one function."""
    nesterov_option = " nesterov=true" if nesterov else ""
    return (
        f"{TRAINING_LOWERING},mlc-autodiff,mlc-scatter-to-gather,mlc-optimizer{{kind={optimizer}{nesterov_option}}},"
        f"{BITPACK},{SCHEDULE},{_then(checkpoint)}{LOWER_TO_C}"
    )


def _then(step: str) -> str:
    return f"{step}," if step else ""


def split_lowering(pipeline: str) -> tuple[str, str]:
    """`pipeline` as (the passes before `LOWER_TO_C`, `LOWER_TO_C`) when it ends with it, else
    (`pipeline`, ""): the runtime lowers a module's functions apart, one function's C compiling
    while the next is lowered."""
    if pipeline == LOWER_TO_C:
        return "", LOWER_TO_C
    if pipeline.endswith("," + LOWER_TO_C):
        return pipeline[: -len(LOWER_TO_C) - 1], LOWER_TO_C
    return pipeline, ""
