"""Atomic file updates: temp file in the same directory, fsync, os.replace, fsync the directory.

A reader sees the old content or the new content, never a torn file, and the new content
survives power loss once the call returns.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Replace `path` with `data`. `mode` is set before any byte is written (secrets stay 0600)."""
    directory = path.parent
    fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    fsync_dir(directory)


def atomic_write_text(path: Path, text: str, *, mode: int = 0o644) -> None:
    atomic_write(path, text.encode("utf-8"), mode=mode)


def atomic_write_json(path: Path, obj: Any, *, mode: int = 0o644) -> None:
    atomic_write(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode("utf-8"), mode=mode)
