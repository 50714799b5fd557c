"""The build cache heals itself, moves when its directory is unusable, keys on everything a
binary depends on (never serving another CPU's code), stays under its cap, and has a command.

Each test has an empty cache directory of its own; the damage is done to real entries of a
compiled program, which must then still compute the right values.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import mlc
from mlc.backends import cache
from mlc.backends.c import runtime
from mlc.backends.cache import CacheWarning

SOURCE = """model scaled {
  input x: f32[5]
  param w: f32[5]
  y = x * w + 1.0
  output y
}
"""
X = np.arange(5, dtype=np.float32)
W = np.full(5, 2.0, dtype=np.float32)


@pytest.fixture(autouse=True)
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    directory = tmp_path / "cache"
    monkeypatch.setenv("MLC_CACHE_DIR", str(directory))
    monkeypatch.delenv("MLC_CACHE_MAX", raising=False)
    monkeypatch.setattr(cache, "_fallback", [])
    yield directory


def compiled(source: str = SOURCE) -> list[str]:
    """Compile and run `source` here (checking its values); the cache warnings it raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        program = mlc.compile(source)
        y = program.run({"w": W}, {"x": X})["y"]
    np.testing.assert_array_equal(y, X * W + 1)
    return [str(w.message) for w in caught if issubclass(w.category, CacheWarning)]


CHILD = f"""
import warnings, numpy as np, mlc
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    y = mlc.compile({SOURCE!r}).run({{"w": np.full(5, 2.0, np.float32)}}, {{"x": np.arange(5, dtype=np.float32)}})["y"]
assert (y == np.arange(5) * 2 + 1).all(), y
for w in caught:
    if issubclass(w.category, mlc.backends.cache.CacheWarning):
        print(str(w.message).replace(chr(10), " "))
"""


def compiled_elsewhere() -> list[str]:
    """`compiled` in a new process, as a later run finds the cache (a library this process has
    loaded is mapped: damaging that file in place would crash this process, not test the cache)."""
    proc = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def artefacts(directory: Path, suffix: str) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.name.endswith(suffix))


@pytest.mark.parametrize("damage", ["truncated", "zero-length", "corrupt"])
def test_a_damaged_library_is_rebuilt_with_one_warning(empty_cache: Path, damage: str) -> None:
    assert compiled_elsewhere() == []
    (library,) = artefacts(empty_cache, ".so")
    data = library.read_bytes()
    library.write_bytes({"truncated": data[: len(data) // 3], "zero-length": b"",
                         "corrupt": data[:100] + bytes(b ^ 0xFF for b in data[100:200]) + data[200:]}[damage])
    (warning,) = compiled_elsewhere()
    assert "damaged" in warning and str(library) in warning
    assert cache.lookup(library.name) == library  # rebuilt in place (same key), intact
    assert compiled_elsewhere() == []  # and healed for good


def test_a_library_that_passes_its_checksum_but_does_not_load_is_rebuilt(empty_cache: Path) -> None:
    compiled_elsewhere()
    (library,) = artefacts(empty_cache, ".so")
    library.write_bytes(b"not an ELF file")
    library.with_name(library.name + ".sha256").write_text(cache._sha256(library) + "\n")
    (warning,) = compiled_elsewhere()
    assert "does not load" in warning
    assert cache.lookup(library.name) == library


def test_a_missing_library_or_checksum_is_a_silent_miss(empty_cache: Path) -> None:
    compiled_elsewhere()
    (library,) = artefacts(empty_cache, ".so")
    library.unlink()
    assert compiled_elsewhere() == [] and library.exists()
    library.with_name(library.name + ".sha256").unlink()  # as a writer killed between its renames
    assert compiled_elsewhere() == [] and library.with_name(library.name + ".sha256").exists()


@pytest.mark.parametrize("damage", ["garbage", "not-json-of-a-program"])
def test_a_damaged_program_record_is_rebuilt_with_one_warning(empty_cache: Path, damage: str) -> None:
    compiled_elsewhere()
    (record,) = artefacts(empty_cache, ".json")
    good = record.read_text()
    record.write_bytes(b"\xff\x00{" if damage == "garbage" else b'{"library": 3}')
    if damage != "garbage":  # a record whose checksum matches: only parsing it finds the damage
        record.with_name(record.name + ".sha256").write_text(cache._sha256(record) + "\n")
    (warning,) = compiled_elsewhere()
    assert ("damaged" if damage == "garbage" else "unusable") in warning
    assert record.read_text() == good
    assert compiled_elsewhere() == []


def test_an_unusable_directory_falls_back_to_a_temporary_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("MLC_CACHE_DIR", str(blocker / "cache"))  # under a regular file: ENOTDIR
    (warning,) = compiled()
    assert "cannot use the cache directory" in warning
    assert cache.cache_dir() != cache.configured_dir() and artefacts(cache.cache_dir(), ".so")
    assert compiled() == []  # the fallback serves the rest of the process, quietly


def test_a_full_disk_moves_the_build_to_a_temporary_directory(empty_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    build_into = cache._build_into

    def full(directory: Path, name: str, build):  # noqa: ANN001, ANN202
        if directory == empty_cache:
            raise OSError(errno.ENOSPC, "No space left on device", str(directory))
        return build_into(directory, name, build)

    monkeypatch.setattr(cache, "_build_into", full)
    (warning,) = compiled()
    assert "No space left on device" in warning
    assert artefacts(cache.cache_dir(), ".so") and not artefacts(empty_cache, ".so")


def test_an_entry_built_for_another_cpu_is_never_loaded(empty_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two machines sharing one cache directory: what `-march=native` resolves to differs, so
    each builds and loads its own library (from the one program record: the passes' output
    depends only on the vector width and cores, which are the same here)."""
    monkeypatch.setattr(runtime, "native_target", lambda command: "-march=cpu-a -mavx512f")
    compiled()
    monkeypatch.setattr(runtime, "native_target", lambda command: "-march=cpu-b -mno-avx512f")
    compiled()
    assert len(artefacts(empty_cache, ".so")) == 2 and len(artefacts(empty_cache, ".json")) == 1
    monkeypatch.setattr(runtime, "native_target", lambda command: "-march=cpu-a -mavx512f")
    compiled()
    assert len(artefacts(empty_cache, ".so")) == 2  # cpu-a's own entry, found again


def test_a_program_scheduled_for_other_vectors_is_never_loaded(empty_cache: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The passes choose schedules for the host's vector width and cores: a machine with other
    ones compiles its own program record (and library)."""
    from mlc.loops import target
    from mlc.runtime import program

    compiled()
    monkeypatch.setattr(program, "host", lambda: target.CpuTarget(vector_bytes=16, cores=1))
    compiled()
    assert len(artefacts(empty_cache, ".json")) == 2


@pytest.mark.parametrize("part", ["compiler", "flags", "vector width", "mlc version"])
def test_every_part_of_the_build_identity_changes_the_key(monkeypatch: pytest.MonkeyPatch, part: str) -> None:
    before = runtime.build_identity()
    if part == "compiler":
        monkeypatch.setattr(runtime, "compiler_identity", lambda command: "/usr/bin/other-cc\nother 1.0")
    elif part == "vector width":
        from mlc.loops import target

        monkeypatch.setattr(target, "host", lambda: target.CpuTarget(vector_bytes=16, cores=2))
    elif part == "mlc version":
        monkeypatch.setattr(runtime, "mlc_version", lambda: "0.0.0-other")
    flags = (*runtime.DEFAULT_FLAGS, "-g") if part == "flags" else runtime.DEFAULT_FLAGS
    assert runtime.build_identity(flags) != before


def test_the_native_target_names_the_cpu_features() -> None:
    resolved = runtime.native_target(runtime.compiler_command())
    assert "-march=" in resolved or "-target-cpu" in resolved, resolved


def test_the_cache_stays_under_its_cap_least_recently_used_first(empty_cache: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    empty_cache.mkdir()
    old = time.time() - 1000
    for k, size in enumerate((4000, 4000, 4000)):  # three entries, the first the least recently used
        for name in (f"key{k}.so", f"key{k}.so.sha256", f"key{k}.c"):
            (empty_cache / name).write_bytes(b"x" * (size if name.endswith(".so") else 10))
            os.utime(empty_cache / name, (old + k, old + k))
    stale = empty_cache / ".key9.123.abc.tmp.so"
    stale.write_bytes(b"x" * 100)
    os.utime(stale, (old - 4000, old - 4000))  # a temporary file of a process that died
    assert cache.evict(20_000) == 100  # under the cap: only the stale temporary goes
    assert not stale.exists()
    assert cache.evict(10_000) == 4020  # over it: the least recently used, down to 90%
    assert {p.name.split(".")[0] for p in empty_cache.iterdir()} == {"key1", "key2"}
    with pytest.warns(CacheWarning, match="damaged"):
        assert cache.lookup("key1.so") is None  # a checksum that does not match: removed
    assert cache.evict(4000, keep=empty_cache / "key2.so") == 10  # all but the entry kept
    assert {p.name for p in empty_cache.iterdir()} == {"key2.so", "key2.so.sha256", "key2.c"}
    monkeypatch.setenv("MLC_CACHE_MAX", "1KB")  # a compile evicts all but its own entry
    compiled()
    assert not (empty_cache / "key2.so").exists() and len(artefacts(empty_cache, ".so")) == 1


def test_the_cap_reads_sizes() -> None:
    for text, size in (("123", 123), ("500MB", 500 * 10**6), ("2GiB", 2 * 2**30), ("1.5 kib", 1536)):
        os.environ["MLC_CACHE_MAX"] = text
        assert cache.max_bytes() == size
    os.environ["MLC_CACHE_MAX"] = "lots"
    with pytest.raises(ValueError, match="MLC_CACHE_MAX"):
        cache.max_bytes()
    del os.environ["MLC_CACHE_MAX"]
    assert cache.max_bytes() == cache.DEFAULT_MAX_BYTES


def test_the_mlc_cache_command_shows_and_clears_the_cache(empty_cache: Path) -> None:
    compiled()
    command = [str(Path(sys.executable).with_name("mlc")), "cache"]
    info = subprocess.run([*command, "info"], capture_output=True, text=True, check=True).stdout
    entries = len(cache.entries())
    assert f"directory: {empty_cache}\n" in info and f"entries:   {entries}\n" in info, info
    assert f"({sum(e.bytes for e in cache.entries())} bytes)" in info and "cap:       1.0 GiB" in info
    cleared = subprocess.run([*command, "clear"], capture_output=True, text=True, check=True).stdout
    assert cleared.startswith(f"removed {entries} entries") and list(empty_cache.iterdir()) == []
    bad = subprocess.run([*command, "info"], capture_output=True, text=True, env={**os.environ, "MLC_CACHE_MAX": "x"})
    assert bad.returncode == 1 and bad.stderr.startswith("mlc: error: MLC_CACHE_MAX") and "Traceback" not in bad.stderr
