"""The runtime API: `mlc.compile` -> `Program` (run, gradients, memory report) and `Trainer`.

`program`: compiling a model through a pipeline and a backend, the cache of compiled programs,
calling them over NumPy arrays; `lowering`: parsing either language, choosing the model, running
a pipeline; `trainer`: a training step with its optimizer state;
`arguments`: the checks of the caller's arrays that every call makes.
"""
