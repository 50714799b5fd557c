"""`mlc-tile`: set the loop directives of compute ops' schedules from options.

    mlc-tile{ops=0 split="d2:6,d3:64" order="d0,d1,d2o,d3o,r0,r1,r2,d2i,d3i" unroll=d2i vectorize=d3i parallel=d0}

`ops` picks compute ops by position in their function (see `mlc.schedule.selected_ops`; all of
them when omitted), `func` restricts it to one function. Each given option replaces that directive
of the op's schedule (`mlc.schedule`, see `mlc.loops.schedule`) and leaves the others; `split` adds
its splits to the op's. The schedule is checked against the op (every loop named must exist, the
reduction loops keep their order, ...) and the pass fails naming what does not fit.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass
from xdsl.utils.exceptions import PassFailedException

from mlc.loops.schedule import ScheduleError, check_op_schedule, schedule_of, selected_ops, set_schedule


@dataclass(frozen=True)
class TilePass(ModulePass):
    """Split, reorder, unroll, vectorize and parallelize the loops of compute ops."""

    name = "mlc-tile"

    ops: tuple[int, ...] = ()
    func: str = ""
    split: str = ""
    """Comma-separated `loop:factor` pairs, applied in order."""
    order: str = ""
    """Every loop, outermost first, comma-separated."""
    unroll: str = ""
    vectorize: str = ""
    parallel: str = ""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        try:
            for compute in selected_ops(op, self.ops, self.func):
                schedule = schedule_of(compute)
                changes: dict[str, object] = {}
                if self.split:
                    changes["splits"] = schedule.splits + tuple(_split(s) for s in self.split.split(","))
                if self.order:
                    changes["order"] = _names(self.order)
                if self.unroll:
                    changes["unroll"] = _names(self.unroll)
                if self.vectorize:
                    changes["vectorize"] = self.vectorize.strip()
                if self.parallel:
                    changes["parallel"] = self.parallel.strip()
                schedule = schedule.with_(**changes)
                check_op_schedule(compute, schedule)
                set_schedule(compute, schedule)
        except ScheduleError as e:
            raise PassFailedException(f"mlc-tile: {e}") from None


def _names(text: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in text.split(",") if n.strip())


def _split(text: str) -> tuple[str, int]:
    name, _, factor = text.partition(":")
    if not factor.strip().isdigit():
        raise ScheduleError(f"split '{text}' must be loop:factor, e.g. d2:8")
    return name.strip(), int(factor)
