"""The index and loop levels: what both backends build on.

An `ix.compute` op (the index level, `mlc.dialects.ix`) says what a tensor is; this package holds
the machinery that reads and rewrites it and turns it into loops:

- `affine`: index-map algebra (bounds, linear forms, substitution);
- `index_solve`: solving index equations (the inverse maps of scatter-to-gather), a package by
  step: integer forms, linearisation, elimination, phases for strides, the gathers' maps;
- `scalars`: building scalar bodies, and their derivative rules;
- `compute_builders`: building `ix.compute` ops from Python index functions (pointwise, reduce,
  window, conv);
- `schedule`: the loop tree a schedule gives an op, and the rules a schedule must obey;
- `builders`: building `scf`/`memref`/`arith` loops and guarded loads;
- `nest`: applying a schedule: an op's loop nest, a package by concern: the index space, loops,
  reductions and tiles, vectors, loads and stores, staged and inlined reads, producers at a loop;
- `arena`: where a function's buffers live in its arena;
- `target`: what the machine offers a schedule (vector width, cores);
- `interpreter`: a NumPy evaluator of index-level functions (the tests' oracle).

`from mlc.loops import for_loop, index_const, ...` is the loop builders' API (`mlc.loops` was
that one module before it became this package).
"""

from mlc.loops.builders import (  # noqa: F401
    PARALLEL,
    element_const,
    emit_index_expr,
    fill_buffer,
    for_loop,
    function_scope,
    guarded_accumulate,
    guarded_load,
    in_bounds,
    index_const,
    loop_nest,
)
