"""Content-addressed build cache shared by the native backends (C now, CUDA later).

An entry is the artefact `<key><suffix>` and its checksum `<key><suffix>.sha256`, with `key` a
hash of everything the artefact depends on (`content_key`). The cache must never be the reason a
compile fails or a wrong binary runs:

* **Atomic.** Building writes to a unique temporary file in the cache directory; the artefact
  and then its checksum are published with `os.replace`, atomic on POSIX. Processes that miss
  at once each build, the last rename wins, and a reader never sees a partial file.
* **Self-healing.** A hit is an artefact whose sha256 matches its checksum file. A mismatch
  (truncated, zero-length, corrupted) is rebuilt with one warning; an artefact without a
  checksum (a writer between its two renames, or an older cache) is rebuilt silently. A caller
  that finds an artefact unusable after all (a library that fails to load) calls `discard`.
* **Never stuck.** A directory that cannot be created or written (read-only, full, no
  permission) is replaced, for the rest of the process, by a temporary one, with one warning.
* **Bounded.** After each store, if the directory holds more than `max_bytes()`
  (`$MLC_CACHE_MAX`, default 1 GiB), the least recently used entries go until it holds at most
  90% of it (sparing entries used in the last minute). A hit refreshes the entry's modification
  time, which is what "used" means here (access times are often not kept).

`mlc cache` (`mlc/tools.py`) shows and empties it.
"""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from mlc.units import parse_size

DEFAULT_MAX_BYTES = 2**30
CHECKSUM = ".sha256"
STALE_TEMPORARY_SECONDS = 3600
"""A temporary file this old belongs to a process that died while building: eviction removes it."""

IN_USE_SECONDS = 60
"""Entries used this recently are never evicted: the library a program record just stored
refers to, or one that another process is loading (the cap may be exceeded meanwhile)."""

UNWRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENOTDIR, errno.EEXIST}
"""Why a cache directory cannot be used: the reasons that send the build to a temporary one."""

_fallback: list[Path] = []
"""The temporary directory used instead of an unusable one (at most one per process)."""


class CacheWarning(UserWarning):
    """The cache had to heal itself or move: nothing is wrong with the result."""


def configured_dir() -> Path:
    """`$MLC_CACHE_DIR`, else `~/.cache/mlc` (not created)."""
    return Path(os.environ.get("MLC_CACHE_DIR") or os.path.join(Path.home(), ".cache", "mlc"))


def cache_dir() -> Path:
    """The directory entries go to: the configured one (created on demand), or the temporary
    one that replaced it in this process."""
    if _fallback:
        return _fallback[0]
    path = configured_dir()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        return _fall_back(path, error)
    return path


def _fall_back(path: Path, error: OSError) -> Path:
    if not _fallback:
        _fallback.append(Path(tempfile.mkdtemp(prefix="mlc-cache-")))
        warnings.warn(f"mlc: cannot use the cache directory {path} ({error.strerror or error}); "
                      f"caching in {_fallback[0]} for this process (set MLC_CACHE_DIR)", CacheWarning, stacklevel=3)
    return _fallback[0]


def max_bytes() -> int:
    """`$MLC_CACHE_MAX` (bytes, or a size such as `500MB` or `2GiB`), else 1 GiB."""
    text = os.environ.get("MLC_CACHE_MAX", "")
    if not text:
        return DEFAULT_MAX_BYTES
    size = parse_size(text)
    if size is None:
        raise ValueError(f"MLC_CACHE_MAX must be a size such as 500MB or 2GiB, got '{text}'")
    return size


def content_key(*parts: str | bytes) -> str:
    """sha256 of the parts, each length-prefixed so that no two part lists collide."""
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


def temporary_path(directory: Path, stem: str, suffix: str) -> Path:
    """A name no other process or thread will pick, in `directory` so `os.replace` is atomic."""
    return directory / f".{stem}.{os.getpid()}.{uuid.uuid4().hex}.tmp{suffix}"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def lookup(name: str) -> Path | None:
    """The cached artefact `name` if it is present and intact (its use then refreshed), else None.
    A damaged one is removed with a warning."""
    directory = cache_dir()
    final = directory / name
    try:
        expected = (directory / (name + CHECKSUM)).read_text().strip()
        actual = _sha256(final)
    except FileNotFoundError:
        return None
    except OSError as error:
        warnings.warn(f"mlc: cannot read the cache entry {final} ({error}); rebuilding it", CacheWarning, stacklevel=2)
        return None
    if actual != expected:
        warnings.warn(f"mlc: the cache entry {final} is damaged (its checksum does not match); rebuilding it",
                      CacheWarning, stacklevel=2)
        discard(final)
        return None
    try:
        os.utime(final)
    except OSError:  # a read-only cache can still serve hits
        pass
    return final


def discard(artefact: Path) -> None:
    """Remove an entry (its artefact and checksum), so that the next lookup misses."""
    for path in (artefact, artefact.with_name(artefact.name + CHECKSUM)):
        try:
            path.unlink(missing_ok=True)
        except OSError:
            pass


def cached_build(key: str, suffix: str, build: Callable[[Path], None]) -> Path:
    """The cached artefact `<key><suffix>`, calling `build(tmp_path)` only on a miss.

    `build` must write the artefact to the path it is given; on success that file is published
    atomically, on failure it is removed and the exception propagates. A directory that cannot
    be written is replaced by a temporary one and the build retried there.
    """
    name = f"{key}{suffix}"
    if (hit := lookup(name)) is not None:
        return hit
    directory = cache_dir()
    try:
        final = _build_into(directory, name, build)
    except OSError as error:
        if error.errno not in UNWRITABLE or directory in _fallback:
            raise
        final = _build_into(_fall_back(directory, error), name, build)
    evict(max_bytes(), keep=final)
    return final


def _build_into(directory: Path, name: str, build: Callable[[Path], None]) -> Path:
    tmp = temporary_path(directory, name, "")
    tmp_sum = tmp.with_name(tmp.name + CHECKSUM)
    final = directory / name
    try:
        build(tmp)
        tmp_sum.write_text(_sha256(tmp) + "\n")
        os.replace(tmp, final)
        os.replace(tmp_sum, directory / (name + CHECKSUM))
    finally:
        tmp.unlink(missing_ok=True)
        tmp_sum.unlink(missing_ok=True)
    return final


class Entry(NamedTuple):
    """The files of one key (artefact, checksum, a kept C source...) and when it was last used."""

    key: str
    files: tuple[Path, ...]
    bytes: int
    used: float


def entries(directory: Path | None = None) -> list[Entry]:
    """Every entry of the cache, least recently used first; stale temporary files count as
    entries of their own, used long ago."""
    directory = cache_dir() if directory is None else directory
    groups: dict[str, list[tuple[Path, os.stat_result]]] = {}
    now = time.time()
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    for name in names:
        path = directory / name
        try:
            stat = path.stat()
        except OSError:  # removed meanwhile
            continue
        if name.startswith("."):  # a temporary file: only a stale one is an entry
            if now - stat.st_mtime > STALE_TEMPORARY_SECONDS:
                groups[name] = [(path, stat)]
            continue
        groups.setdefault(name.split(".", 1)[0], []).append((path, stat))
    found = [
        Entry(key, tuple(p for p, _ in files), sum(s.st_size for _, s in files), max(s.st_mtime for _, s in files))
        for key, files in groups.items()
    ]
    return sorted(found, key=lambda e: e.used)


def evict(limit: int, keep: Path | None = None) -> int:
    """Remove stale temporary files, then least recently used entries until the cache holds at
    most 90% of `limit` bytes, if it holds more than `limit`; returns the bytes freed. The entry
    of `keep` stays, and so does every entry used in the last `IN_USE_SECONDS`."""
    found = entries()
    stale = [e for e in found if e.key.startswith(".")]
    freed = sum(_remove(e) for e in stale)
    total = sum(e.bytes for e in found)
    if total - freed <= limit:
        return freed
    kept_key = keep.name.split(".", 1)[0] if keep is not None else None
    recent = time.time() - IN_USE_SECONDS
    for entry in found:
        if total - freed <= limit * 9 // 10 or entry.used > recent:
            break
        if entry.key != kept_key and entry not in stale:
            freed += _remove(entry)
    return freed


def _remove(entry: Entry) -> int:
    for path in entry.files:
        try:
            path.unlink(missing_ok=True)
        except OSError:
            pass
    return entry.bytes


def clear() -> tuple[int, int]:
    """Empty the cache directory; returns (entries, bytes) removed."""
    found = entries()
    return len(found), sum(_remove(e) for e in found)
