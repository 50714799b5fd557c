"""The `demo-count-ops` pass."""

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import IntegerAttr, ModuleOp, i64
from xdsl.passes import ModulePass


@dataclass(frozen=True)
class CountOpsPass(ModulePass):
    """Count the operations nested in the module and store the count as `demo.op_count`.

    The module itself is not counted. `demo-count-ops{attr=NAME}` stores it under another name.
    """

    name = "demo-count-ops"

    attr: str = "demo.op_count"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        count = sum(1 for nested in op.walk() if nested is not op)
        op.attributes[self.attr] = IntegerAttr(count, i64)
