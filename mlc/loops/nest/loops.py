"""The loops of a nest: each leaf of the schedule's loop tree entered once per variant (the
blocks of a split and its remainder), as a loop, unrolled, or as vectors; and the iteration
variables as expressions over the loops entered so far."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from xdsl.ir import SSAValue
from xdsl.ir.affine import AffineExpr

from mlc.loops.affine import simplify
from mlc.loops.builders import for_loop, index_const
from mlc.loops.nest.space import Point, Space, State
from mlc.loops.nest.values import NestValues
from mlc.loops.nest.vectors import vector_runs


class NestLoops(NestValues):
    """The nest's loops and iteration variables; entering a loop computes the blocks scheduled
    at it (`Nest.attach`)."""

    def attach(self, name: str | None, state: State) -> State:
        """The state once loop `name` is entered, with the blocks scheduled at it (see `Nest.attach`)."""
        raise NotImplementedError

    # -- loops ---------------------------------------------------------------------------------
    def walk(self, leaves: Sequence[str], state: State, point: Point, carried: Sequence[SSAValue],
             unrolled: bool = False) -> Sequence[SSAValue]:
        """The loops `leaves` (outermost first) around `point`, threading `carried` through them;
        `unrolled` unrolls every loop (register tiles)."""
        if not leaves:
            return point(state, carried)
        name, rest = leaves[0], leaves[1:]
        for start, stop, extents in self.variants(name, state):
            carried = self.loop(name, start, stop, extents, rest, state, point, carried, unrolled)
        return carried

    def variants(self, name: str, state: State) -> list[tuple[int, int, dict[str, int]]]:
        """`(first, end, extents below)` per variant of a leaf: the blocks of a split's outer half
        and its remainder, or the leaf's whole range."""
        for ancestor in self.loops.ancestors(name)[:1]:
            if name == ancestor + "o":
                factor, n = self.loops.splits[ancestor], state.extents[ancestor]
                full, rest = divmod(n, factor)
                found = [(0, full, {ancestor + "i": factor})] if full else []
                return found + ([(full, full + 1, {ancestor + "i": rest})] if rest else [])
        return [(0, state.extents[name], {})]

    def loop(self, name: str, start: int, stop: int, extents: dict[str, int], rest: Sequence[str], state: State,
             point: Point, carried: Sequence[SSAValue], unrolled: bool) -> Sequence[SSAValue]:
        def enter(term: AffineExpr, space: Space | None = None) -> State:
            return self.attach(name, state.entered(name, term, space, **extents))

        if stop - start == 1:
            return self.walk(rest, enter(AffineExpr.constant(start)), point, carried, unrolled)
        if name == self.schedule.vectorize and self.lanes > 1:
            return self.vector_loop(name, start, stop, enter, rest, state, point, carried, unrolled)
        if unrolled or name in self.schedule.unroll:
            for k in range(start, stop):
                carried = self.walk(rest, enter(AffineExpr.constant(k)), point, carried, unrolled)
            return carried

        def body(iv: SSAValue, values: Sequence[SSAValue]) -> Sequence[SSAValue]:
            space, dim = state.space.add(iv, start, stop - 1)
            return self.walk(rest, enter(dim, space), point, values, unrolled)

        return for_loop(start, stop, body, carried, parallel=name == self.schedule.parallel)

    def vector_loop(self, name: str, start: int, stop: int, enter: Callable[..., State], rest: Sequence[str],
                    state: State, point: Point, carried: Sequence[SSAValue], unrolled: bool) -> Sequence[SSAValue]:
        """Vectors of the target's lanes, then a partial vector (see the module docstring), then
        a last iteration as a scalar."""
        first = start
        for width, active in vector_runs(self.lanes, stop - start):
            space, dim = state.space.add(index_const(first), first, first + active - 1, lanes=width)
            carried = self.walk(rest, enter(dim, space), point, carried, unrolled)
            first += active
        if first == stop:
            return carried
        if unrolled or stop - first == 1:
            for k in range(first, stop):
                carried = self.walk(rest, enter(AffineExpr.constant(k)), point, carried, unrolled)
            return carried
        end = first

        def body(iv: SSAValue, values: Sequence[SSAValue]) -> Sequence[SSAValue]:
            space, dim = state.space.add(iv, end, stop - 1)
            return self.walk(rest, enter(dim, space), point, values, unrolled)

        return for_loop(end, stop, body, carried)

    def var_exprs(self, state: State) -> list[AffineExpr]:
        """Every iteration variable as an expression over the space (entered leaves only)."""
        exprs: list[AffineExpr] = [AffineExpr.constant(0)] * len(self.extents)
        for name, term in state.terms.items():
            k = self.loops.var(name)
            exprs[k] = exprs[k] + term * self.loops.stride(name)
        if self.origin is not None:
            exprs = [e + o for e, o in zip(exprs, self.origin)] + exprs[len(self.origin):]
        return [simplify(e) for e in exprs]

    def out_index(self, state: State) -> list[AffineExpr]:
        exprs = self.var_exprs(state)[:self.op.rank]
        if self.origin is not None:
            exprs = [simplify(e - o) for e, o in zip(exprs, self.origin)]
        return exprs
