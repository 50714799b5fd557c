"""`mlc-opt`: the mlc modular optimizer driver (xDSL's `xdsl-opt` plus mlc).

    mlc-opt FILE.mlc|FILE.mlir [-p PIPELINE] [-t mlir|c] [-o OUT]

- A `.mlc` file goes through the mlc frontend (`mlc.frontend.parse_mlc`) to the graph-level IR;
  a `.mlir` file (or stdin) is parsed as MLIR.
- `-t c` without `-p` runs `mlc.passes.pipelines.DEFAULT_PIPELINE` first. An explicit `-p ''` runs
  no pass at all (for input that is already at loop level).
- All of xDSL's dialects, passes and targets are available, plus those of every installed
  `xdsl.universe` plugin (third-party packages), plus mlc's own (`mlc.universe.MLC_UNIVERSE`).

User errors exit with status 1 and a message on stderr, never a Python traceback: mlc
`CompileError`s (rendered `FILE:LINE:COL: error: ...` with the source line and a caret), MLIR parse
errors, verifier errors, failed passes, unknown passes or bad pass options, unreadable input files.
Any other exception is a bug in mlc or xDSL and keeps its traceback.
"""

from __future__ import annotations

import argparse
import difflib
import sys
import warnings
from pathlib import Path
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import IO, Any, NoReturn

from xdsl.dialects.builtin import ModuleOp
from xdsl.utils.arg_spec import parse_pipeline, parse_spec
from xdsl.utils.exceptions import ArgSpecParseError, DiagnosticException, ParseError
from xdsl.xdsl_opt_main import xDSLOptMain

from mlc.universe import MLC_UNIVERSE


def _mlc_version() -> str:
    try:
        return version("mlc")
    except PackageNotFoundError:  # running from a checkout that is not installed
        return "unknown"


class UsageError(Exception):
    """A mistake on the command line (unknown pass, bad option, unreadable file): message only."""


def _compile_error_type() -> type[BaseException] | None:
    """`mlc.errors.CompileError`, imported only when an exception has to be classified."""
    try:
        from mlc.errors import CompileError
    except Exception:  # not written yet, or broken: then nothing can raise it either
        return None
    return CompileError


class MlcOptMain(xDSLOptMain):
    """`xDSLOptMain` with mlc's dialects, passes, targets and `.mlc` frontend registered."""

    version_format = f"mlc-opt {_mlc_version()} (xdsl {{xdsl_version}})"

    def __init__(self, args: Sequence[str] | None = None):
        super().__init__(description="mlc modular optimizer driver", args=args)

    # -- registration ----------------------------------------------------------------------------
    # The base class registers the multiverse: xDSL itself, every `xdsl.universe` plugin and, when
    # mlc is installed, mlc (through its own entry point). MLC_UNIVERSE is added on top so that
    # mlc-opt also works from a checkout that is not installed; names already present are skipped.

    def register_all_dialects(self) -> None:
        super().register_all_dialects()
        registered = set(self.ctx.registered_dialect_names)
        for name, factory in MLC_UNIVERSE.all_dialects.items():
            if name not in registered:
                self.ctx.register_dialect(name, factory)

    def register_all_passes(self) -> None:
        super().register_all_passes()
        for name, factory in MLC_UNIVERSE.all_passes.items():
            if name not in self.available_passes:
                self.register_pass(name, factory)

    def register_all_targets(self) -> None:
        super().register_all_targets()
        for name, factory in MLC_UNIVERSE.all_targets.items():
            if name not in self.available_targets:
                self.available_targets[name] = factory

    def register_all_frontends(self) -> None:
        super().register_all_frontends()

        def parse_mlc_file(io: IO[bytes]) -> ModuleOp:
            from mlc.errors import decode_source
            from mlc.frontend import parse_mlc

            text = decode_source(io.read(), self.get_input_name())

            return parse_mlc(text, self.get_input_name())

        self.available_frontends["mlc"] = parse_mlc_file

    # -- arguments and help ----------------------------------------------------------------------

    def register_all_arguments(self, arg_parser: argparse.ArgumentParser) -> None:
        super().register_all_arguments(arg_parser)
        # `None` (not "") tells "no -p given" apart from an explicit empty pipeline `-p ''`.
        arg_parser.set_defaults(passes=None)
        for action in arg_parser._actions:  # pyright: ignore[reportPrivateUsage]
            if action.dest == "passes":
                action.help = (
                    "Comma-separated pass pipeline, e.g. 'mlc-lower-graph,canonicalize'. With -t c "
                    "and no -p, the default mlc pipeline runs (see below). " + (action.help or "")
                )
        arg_parser.add_argument("--export-c", metavar="DIR", default=None,
                                help="Instead of printing IR: compile the .mlc model for inference and write it as a "
                                     "standalone C library, DIR/<model>.c and DIR/<model>.h, with its parameters baked in "
                                     "(binary weights as packed words)")
        arg_parser.add_argument("--params", metavar="FILE.npz", default=None,
                                help="With --export-c: the parameters and states to bake, by name (default: drawn from "
                                     "the model's initialisers with seed 0)")
        # The epilog imports every mlc/plugin pass to show its docstring: only build it when
        # the help text is actually printed.
        arg_parser.formatter_class = argparse.RawDescriptionHelpFormatter
        format_help = arg_parser.format_help

        def format_help_with_passes() -> str:
            arg_parser.epilog = self.passes_epilog()
            return format_help()

        arg_parser.format_help = format_help_with_passes  # pyright: ignore[reportAttributeAccessIssue]

    def passes_epilog(self) -> str:
        """The `--help` listing of mlc's passes and third-party plugin passes, one line each."""
        from xdsl.transforms import get_all_passes

        from mlc.passes.pipelines import DEFAULT_PIPELINE

        xdsl_passes = set(get_all_passes())
        mlc_names = [n for n in self.available_passes if n.startswith("mlc-") or n in MLC_UNIVERSE.all_passes]
        plugin_names = [n for n in self.available_passes if n not in xdsl_passes and n not in mlc_names]

        lines = ["mlc passes:"]
        lines += self._describe_passes(mlc_names)
        if plugin_names:
            lines += ["", "plugin passes (from installed `xdsl.universe` entry points):"]
            lines += self._describe_passes(plugin_names)
        lines += [
            "",
            "default pipeline for -t c (when no -p is given):",
            f"  {DEFAULT_PIPELINE}",
            "",
            "examples:",
            "  mlc-opt examples/digits_cnn.mlc                      # graph-level IR",
            "  mlc-opt examples/digits_cnn.mlc -p mlc-lower-graph   # index-level IR",
            "  mlc-opt examples/digits_cnn.mlc -t c -o model.c      # C source",
        ]
        return "\n".join(lines)

    def _describe_passes(self, names: list[str]) -> list[str]:
        width = max((len(n) for n in names), default=0)
        lines: list[str] = []
        for name in sorted(names):
            try:
                doc = self.available_passes[name]().__doc__ or ""
                summary = next((line.strip() for line in doc.strip().splitlines() if line.strip()), "")
            except Exception as e:  # a pass module that fails to import must not break --help
                summary = f"(unavailable: {type(e).__name__}: {e})"
            lines.append(f"  {name.ljust(width)}  {summary}".rstrip())
        return lines

    # -- export ----------------------------------------------------------------------------------

    def run(self) -> None:
        if self.args.export_c is None:
            super().run()
            return
        if self.args.input_file is None or not self.args.input_file.endswith(".mlc"):
            raise UsageError("--export-c takes a .mlc model file")
        import numpy as np

        from mlc.runtime.frozen import freeze
        from mlc.runtime.program import compile as compile_program

        program = compile_program(Path(self.args.input_file))
        try:
            params = dict(np.load(self.args.params)) if self.args.params else program.init_params(0)
        except OSError as e:
            raise UsageError(f"cannot read parameters '{self.args.params}': {e}") from None
        try:
            written = freeze(program, params).export_c(self.args.export_c)
        except ValueError as e:  # missing or unknown parameter names, a bad model name
            raise UsageError(str(e)) from None
        print(f"wrote {written.source} and {written.header}: {written.baked_bytes} bytes of parameters baked in "
              f"({written.parameter_bytes} as the model declares them)")

    # -- pipeline, input, passes ---------------------------------------------------------------

    def setup_pipeline(self) -> None:
        if self.args.passes is None:
            target = parse_spec(self.args.target).name
            if target == "c":
                from mlc.passes.pipelines import DEFAULT_PIPELINE

                self.args.passes = DEFAULT_PIPELINE
            else:
                self.args.passes = ""
        try:
            unknown = [spec.name for spec in parse_pipeline(self.args.passes) if spec.name not in self.available_passes]
        except ArgSpecParseError as e:  # a BaseException in xDSL 0.74
            raise UsageError(str(e)) from None
        if unknown:
            name = unknown[0]
            hint = difflib.get_close_matches(name, list(self.available_passes), n=1)
            did_you_mean = f" (did you mean '{hint[0]}'?)" if hint else ""
            raise UsageError(f"unknown pass '{name}'{did_you_mean}; `mlc-opt --help` lists the passes")
        try:
            super().setup_pipeline()
        except ValueError as e:  # bad pass options: `Provided arguments ["x"] not found ...`
            raise UsageError(f"invalid pass pipeline '{self.args.passes}': {e}") from None

    def get_input_stream(self) -> tuple[IO[bytes], str]:
        try:
            return super().get_input_stream()
        except OSError as e:
            raise UsageError(f"cannot open input file '{self.args.input_file}': {e.strerror}") from None

    def prepare_input(self) -> tuple[list[tuple[IO[bytes], int]], str]:
        try:
            return super().prepare_input()
        except ValueError as e:  # `Unrecognized file extension 'x'`
            known = ", ".join(f".{ext}" for ext in self.available_frontends)
            raise UsageError(f"{e} (known: {known}; or choose one with -f)") from None

    def prepare_output(self) -> IO[str]:
        try:
            return super().prepare_output()
        except OSError as e:
            raise UsageError(f"cannot open output file '{self.args.output_file}': {e.strerror}") from None

    def parse_chunk(self, chunk: IO[bytes], file_extension: str, start_offset: int = 0) -> ModuleOp | None:
        try:
            return super().parse_chunk(chunk, file_extension, start_offset)
        except Exception as e:
            if (diagnostic := self._as_diagnostic(e)) is None:
                raise
            raise diagnostic from e

    def apply_passes(self, prog: ModuleOp) -> None:
        try:
            super().apply_passes(prog)
        except Exception as e:
            if (diagnostic := self._as_diagnostic(e)) is None:
                raise
            raise diagnostic from e

    def _as_diagnostic(self, e: Exception) -> DiagnosticException | None:
        """Under --verify-diagnostics, turn a CompileError into a DiagnosticException.

        xDSL then prints it on stdout and exits 0, like a verifier error, so that FileCheck tests
        can check frontend diagnostics with `mlc-opt bad.mlc --verify-diagnostics | filecheck %s`.
        """
        compile_error = _compile_error_type()
        if self.args.verify_diagnostics and compile_error is not None and isinstance(e, compile_error):
            return DiagnosticException(str(e))
        return None


def _fail(message: str) -> NoReturn:
    sys.stdout.flush()
    print(message.rstrip("\n"), file=sys.stderr)
    sys.exit(1)


def _notes(e: BaseException) -> str:
    notes: list[Any] = getattr(e, "__notes__", [])
    return "".join(f"\n{note}" for note in notes)


def main(args: Sequence[str] | None = None) -> None:
    """Entry point of the `mlc-opt` console script."""
    # As xdsl-opt: show DeprecationWarnings (Python hides them by default).
    warnings.filterwarnings("default", category=DeprecationWarning)
    try:
        MlcOptMain(args=args).run()
    except UsageError as e:
        _fail(f"mlc-opt: error: {e}")
    except ArgSpecParseError as e:  # e.g. a malformed `-t 'c{'`; a BaseException in xDSL 0.74
        _fail(f"mlc-opt: error: {e}")
    except Exception as e:
        compile_error = _compile_error_type()
        if compile_error is not None and isinstance(e, compile_error):
            _fail(str(e))
        if isinstance(e, DiagnosticException | ParseError):
            _fail(f"{e}{_notes(e)}")
        raise  # anything else is a bug: keep the traceback


if __name__ == "__main__":
    main()
