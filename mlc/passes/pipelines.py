"""Named pass pipelines (xDSL pipeline strings)."""

LOWER_TO_C = "mlc-lower-loops,canonicalize,cse,mlc-plan-memory"
"""Index-level IR to loop-level IR with planned memory."""

DEFAULT_PIPELINE = f"mlc-lower-graph,{LOWER_TO_C}"
"""Graph-level IR to loop-level IR with planned memory: what `mlc-opt -t c` runs when no `-p` is given."""


def gradient_pipeline(wrt: str = "params", loss: str = "") -> str:
    """The model plus `@<model>_grad` (outputs and loss gradients), lowered to loops."""
    options = f"wrt={wrt}" + (f" loss={loss}" if loss else "")
    return f"mlc-lower-graph,mlc-autodiff{{{options}}},mlc-scatter-to-gather,{LOWER_TO_C}"


def training_pipeline(optimizer: str = "sgd", nesterov: bool = False) -> str:
    """The model plus `@<model>_step`: forward, backward and the optimizer update in one function."""
    nesterov_option = " nesterov=true" if nesterov else ""
    return (
        f"mlc-lower-graph,mlc-autodiff,mlc-scatter-to-gather,mlc-optimizer{{kind={optimizer}{nesterov_option}}},{LOWER_TO_C}"
    )
