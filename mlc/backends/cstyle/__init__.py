"""The C-style renderer shared by mlc's C backend and the C-like backends to come (CUDA).

Loop-level IR becomes C-family source the same way for every such target; only the framing (the
file prologue, function signatures), thread indexing and memory spaces differ. The modules:

* `types`: C types of xDSL types, literals, identifiers, byte sizes, and `CEmitError`;
* `ops`: the tables of the binary, comparison, cast and math op families (and `mlc_floordiv`);
* `analyses`: function-level facts the framing needs (read-only arguments, arena size, views
  that may be `restrict`);
* `mathlib`: mlc's own f32 `exp`, `log`, `tanh` and `erf` as C text;
* `core`: `PrinterCore`, the printer's state, naming, value types and op dispatch;
* `vector`, `arithmetic`, `printer`: the op handlers, layered as `PrinterCore` <- `VectorPrinter`
  <- `ArithmeticPrinter` <- `CStylePrinter`, which a target's printer subclasses.
"""
