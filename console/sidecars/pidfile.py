"""`<state>/sidecars/<name>.pid`: who we launched, with what it takes to recognise it later."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from console.core.atomic import atomic_write_json
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
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        return CorruptPidFile(f"unreadable: {exc}")
    try:
        data = json.loads(raw)
        record = PidRecord(
            pid=data["pid"], pgid=data["pgid"], session_token=data["session_token"],
            create_time=data["create_time"], cmdline=data["cmdline"], boot_time=data["boot_time"],
            written_at=data["written_at"],
        )
    except (ValueError, KeyError, TypeError) as exc:
        return CorruptPidFile(f"not a PID record: {type(exc).__name__}: {exc}")
    ints_ok = all(isinstance(v, int) and not isinstance(v, bool) for v in (record.pid, record.pgid))
    floats_ok = all(isinstance(v, int | float) and not isinstance(v, bool)
                    for v in (record.create_time, record.boot_time, record.written_at))
    if not (ints_ok and floats_ok and isinstance(record.cmdline, list)
            and all(isinstance(a, str) for a in record.cmdline) and isinstance(record.session_token, str)):
        return CorruptPidFile("a field has the wrong type")
    return record


def remove_pidfile(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
