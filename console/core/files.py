"""The output files sidecars and runs write (not pipes, so they outlive an engine): their tails."""

from __future__ import annotations

import os
from pathlib import Path

TAIL_BYTES = 16 * 1024


def read_tail(path: Path, limit: int = TAIL_BYTES) -> str:
    """The last `limit` bytes of `path` as text ("" when there is no file yet)."""
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - limit))
            return handle.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""
