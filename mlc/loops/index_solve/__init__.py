"""Solving index equations: which iteration points of a scatter write a given result element.

The problem
-----------
A scatter `out = 0; for v in box: if W(v) in bounds: out[W(v)] += body(v)`, with a quasi-affine
write map `W: Z^n -> Z^R` and box `v_j in [0, E_j)`, computes for each result index `u`

    out[u] = Σ_{v ∈ S(u)} body(v),        S(u) = { v ∈ box : W(v) = u }.

The gather form needs `S(u)` parametrised: `v = V(u, f)` for `f` in a box `F` (the gather's
reduction variables) and a predicate `C(u, f)`, such that `f -> V(u, f)` is a bijection from
`{f ∈ F : C(u, f)}` onto `S(u)`. Then `out[u] = Σ_{f ∈ F} select(C(u, f), body(V(u, f)), 0)`,
a loop in which each `u` is written by one iteration of the parallel loops. The steps:

1. Linearisation. Each `e floordiv c` and `e mod c` (constant `c > 0`) gets two auxiliary
   integers `q = e floordiv c`, `t = e mod c`, tied by `e = c*q + t, 0 <= t < c`. First
   `e = c*L + e'` is split (`L` takes the multiples of `c`), so that only `e'` needs them, and
   none when `e'` provably stays in one block of `c` values. `e ceildiv c = -((-e) floordiv c)`.
   `W(v) = u` becomes a linear system `A x + B u + k = 0` over `x = (v, q's, t's)`. Ranges:
   `v_j ∈ [0, E_j)` and `t ∈ [0, c)` are constraints; a quotient is determined by the others and
   may be any integer (its interval bounds only size a loop when it is left free).

2. Elimination (fraction-free Gauss-Jordan). Repeatedly choose, over the pending equations, the
   unknown of LARGEST extent as pivot (ties: a coefficient ±1, then the earlier variable), so the
   unknowns left free -- the gather's reduction variables -- have small extents: for a conv input
   gradient `s*o + d*a - p = u` this solves for the output position `o` and keeps the tap `a`.
   A second rule weights a stride pivot's extent by how much its congruence thins the others
   (`_choose_pivot`; with `O = K` and stride 2 solving for `o` halves the taps per element, while
   the plain rule solves for the unit-coefficient `a`); `solve` runs both and keeps the solution
   that iterates fewer points (the weighted rule alone makes poor choices on reshape maps, whose
   quotients have large coefficients but are pinned anyway).
   The pivot row `a*x + L = 0` eliminates `x` from every other row `E'` (coefficient `b`) by
   `E' <- (a/g) E' - (b/g) E`, `g = gcd(a, b)`: since `a != 0` the system keeps exactly its
   integer solutions. Rows are divided by their content; a row whose content does not divide its
   constant has no solution at all. At the end every pivot satisfies `a_p x_p = N_p(u, f)` with
   `N_p` affine in `u` and the free unknowns `f`. Rows left without unknowns are conditions on
   `u` alone: the diagonal `x[i, i]` gives `u0 - u1 = 0`, a constant index `x[0]` gives `u0 = 0`.

3. Tightening. A bounded pivot needs `a lo <= N <= a hi`. Write `N = g*M + h`, `g` the gcd of
   the free coefficients, `M` the free terms and the `u` terms divisible by `g`, `h` the rest
   with bounds `[h-, h+]`; then `M ∈ [ceil((a lo - h+)/g), floor((a hi - h-)/g)]`. When that is
   one value `M0`, `M = M0` is an equation (a consequence of the ranges) and elimination runs
   again with it. Delinearising maps need this: for `x[d floordiv 20, (d floordiv 5) mod 4,
   d mod 5]` the equations leave one quotient free, and the remainder range `0 <= t < 20` pins it
   to `u0`, so the gather has no reduction at all instead of a mostly-predicated one.

4. Strides: phase decomposition. `|a_p| > 1` needs `N_p ≡ 0 (mod |a_p|)`. If every such
   congruence has at most one free unknown `f`, `N = Σ b_r u_r + c f + c0`, split the result by
   phase: with `M_r` the lcm of the moduli of the congruences where `b_r` is not a multiple of
   the modulus, `u_r = M_r q_r + p_r` with `p_r ∈ [0, M_r)`. Within a phase `b_r M_r q_r ≡ 0`, so
   the congruence reads `c f ≡ -(Σ b_r p_r + c0) (mod s)`. With `g = gcd(c, s)` it has no
   solution unless `g` divides the right side, and otherwise `f ≡ f0 (mod s/g)`: the valid values
   are `f = f1 + (s/g) k` for `k ∈ [0, n_p)`, `f1` the first one in range and
   `n_p = (hi_f - f1) div (s/g) + 1` -- exactly the valid taps, a count that depends on the phase
   only. After the substitution `N_p` is divisible by `a_p` identically in `(q, k)`, so `x_p` is an
   integer affine form: one dense gather per phase over the sub-lattice (extent
   `ceil((U_r - p_r) / M_r)`), none of whose iterations is predicated off by the stride. A
   congruence with two free unknowns, or more phases than a limit, is kept as the predicate
   `N mod s == 0` with `x_p = N floordiv a_p` instead (still a gather, not work-minimal).
   A condition that pins a result index alone, `c u_r + k = 0` (a filter read at a constant tap,
   as a transposed convolution's phase gathers read it), is a phase as well when the solution
   has free unknowns: modulus `U_r`, the one phase its value, a piece of extent 1 along `r`; so
   the piece's reduction runs for that slice only, not for every `u` under a predicate.

5. Ranges. A bounded pivot (iteration variable, remainder) must still lie in its range: a
   predicate unless interval bounds over the gather's box prove it, or the caller knows that an
   out-of-range point contributes exactly 0 (`unchecked`). Quotients need none. A free unknown
   ranges over its own box (a quotient over its interval bounds, shifted to start at 0; one of
   extent 1 is a constant). Reduction order: the free unknowns the solution involves (a conv's
   taps) outside, the others (an output channel, a batch) inside, as in the forward's loop nest.

Why this is exact: every `v ∈ S(u)` extends to exactly one integer solution `x` (the auxiliaries
are functions of `v`), elimination and phase splitting keep the integer solutions, and a solution
is determined by `(u, f)`; so each point of `S(u)` is met once, and every other point of the
gather's box either fails a predicate or (for `unchecked` variables) contributes 0.

Maps that are not quasi-affine (a product of two variables, a division by a non-constant or by a
non-positive constant) raise `NotInvertible`.

The modules of this package follow the steps:

- `forms`: the unknowns (`Var`) and the integer affine forms over them (`Linear`);
- `linearise`: step 1, the write map as a linear system (`LinearSystem`; `NotInvertible`);
- `elimination`: steps 2 and 3, elimination with the pivot rules, and the equations ranges pin;
- `pieces`: what a solution is: the gathers (`Piece`), their values (`Quasi`) and conditions;
- `phases`: steps 4 and 5 and the entry `solve`: phase decomposition, taps, range predicates;
- `maps`: the gathers' index maps (`compose`: a scatter's map over a gather's box).

`from mlc.loops.index_solve import solve, ...` (or the old name `mlc.index_solve`) gives the
solver's API.
"""

from mlc.loops.index_solve.forms import Linear, Var  # noqa: F401
from mlc.loops.index_solve.linearise import NotInvertible  # noqa: F401
from mlc.loops.index_solve.maps import compose  # noqa: F401
from mlc.loops.index_solve.phases import solve  # noqa: F401
from mlc.loops.index_solve.pieces import Condition, Divisible, Equal, InRange, Piece, Quasi, Solution  # noqa: F401
