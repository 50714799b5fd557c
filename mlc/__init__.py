"""mlc: a small compiler for neural networks, from the mlc language to C, built on xDSL.

The public names are imported lazily: xDSL loads every `xdsl.universe` plugin (mlc's among them)
when any of its tools starts, and those tools must not pay for NumPy and the runtime.

Modules that moved keep their old names: `import mlc.api` gives the module `mlc.runtime.program`
itself (not a copy of its names), so code written against the old layout, attribute patches
included, keeps working. `MOVED_MODULES` lists them; the layout is in `docs/design.md`.
"""

import sys
from importlib import import_module
from importlib.abc import Loader, MetaPathFinder
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import TYPE_CHECKING, Any

__all__ = ["CompileError", "Program", "compile", "freeze", "set_num_threads"]

if TYPE_CHECKING:
    from mlc.backends.c.runtime import set_num_threads
    from mlc.errors import CompileError
    from mlc.runtime.frozen import freeze
    from mlc.runtime.program import Program, compile

MOVED_MODULES = {
    "mlc.api": "mlc.runtime.program",
    "mlc.trainer": "mlc.runtime.trainer",
    "mlc.signature": "mlc.graph.signature",
    "mlc.affine": "mlc.loops.affine",
    "mlc.index_solve": "mlc.loops.index_solve",
    "mlc.interpreter": "mlc.loops.interpreter",
    "mlc.nest": "mlc.loops.nest",
    "mlc.scalars": "mlc.loops.scalars",
    "mlc.schedule": "mlc.loops.schedule",
    "mlc.target": "mlc.loops.target",
    "mlc.frontend.ast": "mlc.frontend.language.ast",
    "mlc.frontend.builtins": "mlc.frontend.language.builtins",
    "mlc.frontend.custom_ops": "mlc.frontend.language.custom_ops",
    "mlc.frontend.emit": "mlc.frontend.language.emit",
    "mlc.frontend.parser": "mlc.frontend.language.parser",
    "mlc.backends.c.mathlib": "mlc.backends.cstyle.mathlib",
}
"""Old module name -> the module it is now."""


class _MovedModules(MetaPathFinder, Loader):
    """Answers an import of an old name with the module under its new name."""

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> ModuleSpec | None:
        return ModuleSpec(fullname, self) if fullname in MOVED_MODULES else None

    def create_module(self, spec: ModuleSpec) -> None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        """Put the real module where the import system takes the result from (`sys.modules`),
        leaving the real module's own `__spec__` and `__name__` as they are."""
        sys.modules[module.__name__] = import_module(MOVED_MODULES[module.__name__])


sys.meta_path.append(_MovedModules())


def __getattr__(name: str) -> Any:
    if name in ("compile", "Program"):
        from mlc.runtime import program

        return getattr(program, name)
    if name == "freeze":
        from mlc.runtime.frozen import freeze

        return freeze
    if name == "set_num_threads":
        from mlc.backends.c.runtime import set_num_threads

        return set_num_threads
    if name == "CompileError":
        from mlc.errors import CompileError

        return CompileError
    raise AttributeError(f"module 'mlc' has no attribute {name!r}")
