"""Reading the log files sidecars and runs write: their last lines, then what they append.

The files are written by child processes we do not control, so every read is bounded: the history
is read from at most `HISTORY_BYTES` at the end of a file, a line longer than `MAX_LINE_BYTES` is cut,
and a follow reads at most `CHUNK_BYTES` per poll. Files are opened as rule 9 says: without following
links, without blocking, and only if they are regular files.

A followed file can be cut back (the sidecar log's copytruncate) or replaced (a sidecar's next launch
moves `web.log` to `web.log.1`): `Follower.poll` notices both, as `tail -F` does, and says so.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from console.core.files import NotRegular, open_regular
from console.core.records import View, field

HISTORY_BYTES = 1 << 20
MAX_LINE_BYTES = 16 * 1024
CHUNK_BYTES = 256 * 1024
MAX_LINES = 5000
CUT = "…"


class LogChunk(View, frozen=True):
    """Lines from one file, and what happened to it first (`note`: `rotated`, `truncated`, `missing`)."""

    file: str
    lines: list[str] = field(default_factory=list)
    note: str = ""


class LogFileError(Exception):
    """A log path that is a link, a directory or a device: never read."""


def open_log(path: Path) -> int | None:
    """A read-only descriptor for `path`, or None when there is no such file (yet)."""
    try:
        return open_regular(path)  # the one way the engine opens what it reads: no link, no FIFO, no device
    except FileNotFoundError:
        return None
    except NotRegular as exc:
        raise LogFileError(f"{exc}: not read") from None
    except OSError as exc:
        raise LogFileError(f"{path}: not read ({exc.strerror or exc})") from None


def decode_lines(data: bytes) -> list[str]:
    """Complete lines of `data` as text, each cut to `MAX_LINE_BYTES`."""
    return [_line(raw) for raw in data.split(b"\n")]


def _line(raw: bytes) -> str:
    raw = raw.removesuffix(b"\r")
    if len(raw) > MAX_LINE_BYTES:
        return raw[:MAX_LINE_BYTES].decode("utf-8", errors="replace") + CUT
    return raw.decode("utf-8", errors="replace")


def last_lines(data: bytes, count: int, *, from_start: bool) -> list[str]:
    """The last `count` lines of `data`, the tail of a file. Unless `data` starts at the file's start,
    its first line is a fragment and is dropped; a trailing newline ends the last line, no more."""
    if count <= 0 or not data:
        return []
    if not from_start:
        newline = data.find(b"\n")
        data = data[newline + 1:] if newline >= 0 else b""
    data = data.removesuffix(b"\n")
    if not data:
        return []
    return decode_lines(data)[-count:]


def clamp_lines(count: object, default: int = 100) -> int:
    """A requested line count from outside, as a bounded int."""
    if isinstance(count, bool) or not isinstance(count, int):
        return default
    return max(0, min(count, MAX_LINES))


class Follower:
    """One log path, read from its end onwards. `history` first, then `poll` as often as wanted."""

    def __init__(self, path: Path, label: str) -> None:
        self.path = path
        self.label = label
        self._fd: int | None = None
        self._inode: tuple[int, int] | None = None
        self._offset = 0
        self._partial = b""  # the start of a line whose newline has not been written yet
        self._skipping = False  # inside a line already shown cut: its rest is dropped up to its newline

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def history(self, count: int) -> LogChunk:
        """The last `count` complete lines; following starts after them (a partial last line is kept
        and completed by the poll that sees its newline)."""
        self._open()
        if self._fd is None:
            return LogChunk(self.label, [], "missing")
        size = os.fstat(self._fd).st_size
        start = max(0, size - HISTORY_BYTES)
        data = os.pread(self._fd, size - start, start)
        self._offset = start + len(data)
        complete, newline, rest = data.rpartition(b"\n")
        cut = self._keep(rest)  # the unfinished last line waits for its newline, unless already too long
        lines = last_lines(complete + b"\n", count, from_start=start == 0) if newline else []
        return LogChunk(self.label, [*lines, *cut][-count:] if count else [])

    def poll(self) -> list[LogChunk]:
        """What was appended since the last read; a replaced or cut-back file is said first."""
        chunks: list[LogChunk] = []
        note = ""
        if self._fd is not None and _identity(self.path) != self._inode:
            chunks.extend(self._drain())  # the old file's last words, then the new file
            self.close()
            note = "rotated"
        if self._fd is None:
            known = self._inode
            self._open()
            if self._fd is None:
                return chunks
            if known is not None:
                note = "rotated"
                self._offset, self._partial, self._skipping = 0, b"", False
        size = os.fstat(self._fd).st_size
        if size < self._offset:
            self._offset, self._partial, self._skipping = 0, b"", False
            note = "truncated"
        lines = self._read()
        if lines or note:
            chunks.append(LogChunk(self.label, lines, note))
        return chunks

    def _drain(self) -> list[LogChunk]:
        lines = self._read()
        if self._partial:
            lines.append(_line(self._partial))
        self._partial, self._skipping = b"", False
        return [LogChunk(self.label, lines)] if lines else []

    def _read(self) -> list[str]:
        assert self._fd is not None
        data = os.pread(self._fd, CHUNK_BYTES, self._offset)
        if not data:
            return []
        self._offset += len(data)
        if self._skipping:
            end = data.find(b"\n")
            if end < 0:
                return []
            data, self._skipping = data[end + 1:], False
        complete, newline, rest = (self._partial + data).rpartition(b"\n")
        lines = decode_lines(complete) if newline else []
        return [*lines, *self._keep(rest)]

    def _keep(self, rest: bytes) -> list[str]:
        """Hold the unfinished last line; one already too long is shown cut now and skipped after."""
        if len(rest) > MAX_LINE_BYTES:
            self._partial, self._skipping = b"", True
            return [_line(rest)]
        self._partial = rest
        return []

    def _open(self) -> None:
        fd = open_log(self.path)
        if fd is None:
            return
        st = os.fstat(fd)
        self._fd, self._inode = fd, (st.st_dev, st.st_ino)


def _identity(path: Path) -> tuple[int, int] | None:
    with contextlib.suppress(OSError):
        st = os.stat(path, follow_symlinks=False)
        return st.st_dev, st.st_ino
    return None


def split_chunk(chunk: LogChunk, max_bytes: int = CHUNK_BYTES) -> list[LogChunk]:
    """`chunk` as pieces of about `max_bytes` of text each (one socket line each); the note goes with
    the first piece. A chunk with no lines stays one piece."""
    pieces: list[LogChunk] = []
    start, size = 0, 0
    for index, line in enumerate(chunk.lines):
        size += len(line) + 1
        if size > max_bytes and index > start:
            pieces.append(LogChunk(chunk.file, chunk.lines[start:index], "" if pieces else chunk.note))
            start, size = index, len(line) + 1
    pieces.append(LogChunk(chunk.file, chunk.lines[start:], "" if pieces else chunk.note))
    return pieces
