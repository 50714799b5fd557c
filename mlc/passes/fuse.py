"""`mlc-fuse`: compute producers where their readers use them, instead of in nests of their own.

    mlc-fuse{ops=1 inline=true}        # op 1 is computed at every point that reads it
    mlc-fuse{ops=0 at=d3o}             # op 0 is computed inside loop d3o of its only reader

`ops` and `func` pick the producers as for mlc-tile. `inline` is Halide's compute_inline (the op
must have no reduction); `at` is Halide's compute_at: the block of points the reader's loops
inside `at` read is computed there, into a local buffer, with the producer's own loop directives
(set them with mlc-tile). Either way the producer gets no buffer of its own, and the schedule
attribute is the only thing changed: mlc-lower-loops does the fusing.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass
from xdsl.utils.exceptions import PassFailedException

from mlc.loops.schedule import ScheduleError, check_op_schedule, schedule_of, selected_ops, set_schedule


@dataclass(frozen=True)
class FusePass(ModulePass):
    """Inline producers into their readers, or compute them at a loop of their only reader."""

    name = "mlc-fuse"

    ops: tuple[int, ...] = ()
    func: str = ""
    inline: bool = False
    at: str = ""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if self.inline == bool(self.at):
            raise PassFailedException("mlc-fuse: give exactly one of inline=true and at=LOOP")
        try:
            for compute in selected_ops(op, self.ops, self.func):
                schedule = schedule_of(compute).with_(inline=self.inline, at=self.at or None)
                check_op_schedule(compute, schedule)
                set_schedule(compute, schedule)
        except ScheduleError as e:
            raise PassFailedException(f"mlc-fuse: {e}") from None
