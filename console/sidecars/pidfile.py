"""`<state>/sidecars/<name>.pid`: who we launched, with what it takes to recognise it later."""

from __future__ import annotations

import contextlib
from pathlib import Path

from console.core.atomic import atomic_write_json
from console.core.decode import DecodeError, decode_json
from console.core.files import NotRegular, read_capped
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
        return decode_json(PidRecord, raw)
    except DecodeError as exc:
        return CorruptPidFile(f"not a PID record: {exc}")


def remove_pidfile(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
