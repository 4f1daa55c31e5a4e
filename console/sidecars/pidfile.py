"""`<state>/sidecars/<name>.pid`: who we launched, with what it takes to recognise it later."""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict
from pathlib import Path

from console.core.atomic import atomic_write_json
from console.core.files import NotRegular, read_capped
from console.core.records import View


class PidRecord(View):
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
    atomic_write_json(path, asdict(record), mode=0o600)


UNSAFE = "pidfile_unsafe"
MAX_PIDFILE_BYTES = 64 * 1024  # a record is a few hundred bytes; the cmdline is what varies


def read_pidfile(path: Path) -> PidRecord | CorruptPidFile | None:
    """A FIFO or a symlink (to /dev/zero, or to anything) at the path is never opened through:
    it is `pidfile_unsafe`, a corrupt file whose removal unlinks the path itself."""
    try:
        raw = read_capped(path, MAX_PIDFILE_BYTES)
    except FileNotFoundError:
        return None
    except NotRegular as exc:
        return CorruptPidFile(f"{UNSAFE}: {exc}")
    except OSError as exc:
        return CorruptPidFile(f"unreadable: {exc.strerror}")
    if len(raw) > MAX_PIDFILE_BYTES:
        return CorruptPidFile(f"{UNSAFE}: larger than {MAX_PIDFILE_BYTES} bytes")
    try:
        data = json.loads(raw.decode("utf-8"))
        record = PidRecord(
            pid=data["pid"], pgid=data["pgid"], session_token=data["session_token"],
            create_time=data["create_time"], cmdline=data["cmdline"], boot_time=data["boot_time"],
            written_at=data["written_at"],
        )
    except (ValueError, KeyError, TypeError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        return CorruptPidFile(f"not a PID record: {type(exc).__name__}: {str(exc)[:120]}")
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
