"""A source file that is not UTF-8 is a located diagnostic (LANGUAGE.md, "Errors"): the line and
column of the first bad byte, the line shown with a caret, from `mlc-opt` (exit 1, no traceback)
and from the API (`CompileError`)."""

from __future__ import annotations

from pathlib import Path

import pytest

import mlc
from mlc.errors import decode_source
from test_cli import assert_clean_error, mlc_opt

CASES = {
    # bytes of the file -> (line, column, byte offset, reason) of the first bad byte
    "latin-1 in a comment": (b"model m {\n  input x: f32[2]\n  # caf\xe9 au lait\n  output x\n}\n", 3, 8, 35,
                             "invalid continuation byte"),
    "after a valid multibyte character": ("model m {\n  # é ".encode() + b"\xff\n  input x: f32[2]\n  output x\n}\n",
                                          2, 7, 17, "invalid start byte"),
    "first byte": (b"\x80model m {\n  input x: f32[2]\n  output x\n}\n", 1, 1, 0, "invalid start byte"),
    "truncated at the end": (b"model m {\n  input x: f32[2]\n  output x\n}\n#\xe2\x82", 5, 2, 42, "unexpected end of data"),
}


def expected(path: Path, data: bytes, line: int, col: int, offset: int, reason: str) -> str:
    shown = data.decode("utf-8", errors="replace").split("\n")[line - 1]
    caret = " " * (col - 1) + "^"
    return (f"{path}:{line}:{col}: error: the file is not UTF-8 text ({reason} at byte {offset})\n"
            f"    {shown}\n    {caret}")


@pytest.mark.parametrize("name", CASES)
def test_mlc_opt_reports_the_first_bad_byte(tmp_path: Path, name: str) -> None:
    data, *where = CASES[name]
    path = tmp_path / "bad.mlc"
    path.write_bytes(data)
    result = mlc_opt(str(path))
    assert_clean_error(result)
    assert result.stderr.strip("\n") == expected(path, data, *where)


@pytest.mark.parametrize("name", CASES)
def test_api_reports_the_first_bad_byte(tmp_path: Path, name: str) -> None:
    data, *where = CASES[name]
    path = tmp_path / "bad.mlc"
    path.write_bytes(data)
    with pytest.raises(mlc.CompileError) as error:
        mlc.compile(path)
    assert str(error.value) == expected(path, data, *where)


def test_utf8_text_is_decoded_unchanged() -> None:
    text = "model m {\n  # naïve ∑\n  input x: f32[2]\n  output x\n}\n"
    assert decode_source(text.encode(), "ok.mlc") == text
