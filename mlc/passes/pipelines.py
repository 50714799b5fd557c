"""Named pass pipelines (xDSL pipeline strings)."""

DEFAULT_PIPELINE = "mlc-lower-graph,mlc-lower-loops,canonicalize,cse,mlc-plan-memory"
"""Graph-level IR to loop-level IR with planned memory: what `mlc-opt -t c` runs when no `-p` is given."""

