"""`<state>/sidecars/<name>.pid`: who we launched, with what it takes to recognise it later."""

from __future__ import annotations

import contextlib
from pathlib import Path

from console.core.atomic import atomic_write_json
from console.core.decode import DecodeError, decode_json
from console.core.records import View, to_builtins


class PidRecord(View, frozen=True):
    pid: int
    pgid: int
    session_token: str
    create_time: float
    cmdline: list[str]
    boot_time: float
    written_at: float


class CorruptPidFile:
    """A PID file that exists but cannot be trusted (truncated, garbage, wrong types)."""

    def __init__(self, detail: str) -> None:
        self.detail = detail


def write_pidfile(path: Path, record: PidRecord) -> None:
    atomic_write_json(path, to_builtins(record), mode=0o600)


def read_pidfile(path: Path) -> PidRecord | CorruptPidFile | None:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        return CorruptPidFile(f"unreadable: {exc}")
    try:
        return decode_json(PidRecord, raw)
    except DecodeError as exc:
        return CorruptPidFile(f"not a PID record: {exc}")


def remove_pidfile(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
