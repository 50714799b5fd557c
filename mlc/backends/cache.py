"""Content-addressed build cache shared by the native backends (C now, CUDA later).

An artefact is stored under `sha256(inputs)`; building writes to a unique temporary file in the
same directory and publishes it with `os.replace`, which is atomic on POSIX. Several processes
that miss at once each build their own copy and the last rename wins; readers only ever see
a complete file, and a hit touches nothing but the file system.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable
from pathlib import Path


def cache_dir() -> Path:
    """`$MLC_CACHE_DIR`, else `~/.cache/mlc`; created on demand."""
    root = os.environ.get("MLC_CACHE_DIR") or os.path.join(Path.home(), ".cache", "mlc")
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


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


def cached_build(key: str, suffix: str, build: Callable[[Path], None]) -> Path:
    """The cached artefact `<key><suffix>`, calling `build(tmp_path)` only on a miss.

    `build` must write the artefact to the path it is given; on success that file is
    atomically renamed into place, on failure it is removed and the exception propagates.
    """
    directory = cache_dir()
    final = directory / f"{key}{suffix}"
    if final.exists():
        return final
    tmp = temporary_path(directory, key, suffix)
    try:
        build(tmp)
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    return final
