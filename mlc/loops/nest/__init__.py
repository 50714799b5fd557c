"""The loop nest of one scheduled compute op: what mlc-lower-loops emits for each op with a nest
of its own, together with the ops computed inside it (inline, or at one of its loops).

Index space. While the nest is built, every index is an affine expression over the dimensions
in scope (`Space`): one per loop entered so far, each an SSA induction variable with its range,
and at most one *lane* dimension, whose iterations are the lanes of a vector. A leaf loop of the
schedule (`mlc.loops.schedule.Loops`) stands for a *term*: its dimension, or a constant when it is
unrolled or cut to one iteration. An iteration variable is `origin + sum(stride * term)` over its
leaves, and a read `x[m(v)]` reads at `m` of those expressions, so reads, guards and vector
accesses are all decided on the expressions (interval bounds for guards, the lane coefficient for
contiguity) before any index code is emitted.

Variants. A split `v = f * vo + vi` of `n` iterations runs `vo` over `n // f` blocks of `f`, then,
when `n mod f` is not 0, once more with `vi` cut to the remainder: the nest below `vo` is built
once per variant, with constant extents in each.

Reductions. With output loops inside the outermost reduction loop, the partial results of those
loops (the *tile*) are kept in registers (SSA values carried through the reduction loops) when
the tile loops are innermost and all unrolled or vectorised, else in a local array of the tile's
size (at most `LOCAL_TILE_BYTES`), else in the output buffer itself. Sums of products accumulate
with fused multiply-adds, in every schedule, so the value of a sum never depends on its schedule.

Vectors. A vectorised loop of `n` iterations runs `n // lanes` vectors, then the remaining
iterations (two or more) as one *partial* vector: the narrowest that holds them, of which only
the first lanes are *active*; a single remaining iteration is a scalar. Only the active lanes are
read from memory and stored (masked loads and stores); the others compute on zeros and are
never stored, so a 6-channel loop is one 8-lane vector, not a vector of 4 and two scalars.
Reads that do not depend on the lanes are scalar loads (broadcast where they meet a vector);
reads contiguous in the lanes (the last index moves one element per lane, the others not at
all, inside the tensor) are vector loads; any other read is gathered lane by lane. A read may
leave its tensor only along dimensions the lanes do not move.

The builder is one class, `Nest` (`driver`), built up in layers, each a module of this package:

- `space`: the index space and the builder's state (`Space`, `State`, `Local`);
- `reads`: what an op reads through the producers it inlines (`effective_reads`, `root_readers`);
- `vectors`: the vectors a vectorised loop runs (full, partial, scalar) and the lane and vector IR helpers;
- `memory`: the nest's data, checked when it is made, and its loads and stores (`NestMemory`);
- `values`: an op's body at an iteration point, through staged reads and inlined producers (`NestValues`);
- `loops`: the loops of the schedule, their variants, and the iteration variables (`NestLoops`);
- `tiles`: the reductions, their tiles in registers, a local array or the output (`NestTiles`);
- `driver`: the entry, the producers computed at a loop and the staged copies (`Nest`).
"""

from mlc.loops.nest.driver import Nest  # noqa: F401
from mlc.loops.nest.reads import effective_reads, root_readers  # noqa: F401
from mlc.loops.nest.vectors import narrowest_lanes, vector_cells  # noqa: F401
from mlc.loops.schedule import STAGE_BYTES  # noqa: F401
