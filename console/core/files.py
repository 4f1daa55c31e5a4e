"""Files the engine reads that others can write: run handoffs and output, sidecar logs, PID files.

An agent or a sidecar can put anything at those paths: a FIFO (whose `open()` blocks the event
loop until someone writes), a symlink to `/dev/zero` (a read without end) or to a file that is
not ours. So each is opened without following a final symlink and without blocking, must be a
regular file, and is read with a byte cap. Anything else is `NotRegular`, which the callers turn
into a reason (`handoff_unreadable`, `pidfile_unsafe`), never a blocked loop or a dead task.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

TAIL_BYTES = 16 * 1024
_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOCTTY", 0)
_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory"))


class NotRegular(Exception):
    """The path exists but is not a regular file we may read."""

    def __init__(self, path: Path, what: str) -> None:
        super().__init__(f"{path} is {what}, not a regular file")
        self.path = path
        self.what = what


def open_regular(path: Path) -> int:
    """A descriptor on `path`, which must be a regular file reached without a final symlink.
    Raises FileNotFoundError, NotRegular or OSError."""
    try:
        fd = os.open(path, _FLAGS)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise NotRegular(path, "a symbolic link") from None
        raise
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise NotRegular(path, next((what for test, what in _KINDS if test(mode)), "not a regular file"))
    return fd


def read_capped(path: Path, cap: int) -> bytes:
    """At most `cap + 1` bytes of a regular file (one more than the cap, so the caller can tell it
    was over). Raises FileNotFoundError, NotRegular or OSError."""
    fd = open_regular(path)
    try:
        parts: list[bytes] = []
        left = cap + 1
        while left > 0 and (chunk := os.read(fd, min(left, 1 << 16))):
            parts.append(chunk)
            left -= len(chunk)
        return b"".join(parts)
    finally:
        os.close(fd)


def append_regular(path: Path, mode: int = 0o600) -> int:
    """A blocking descriptor appending to `path` as a regular file of ours. Whatever else is there (a
    FIFO, whose open would block; a link, through which we would append to its target, as root
    maybe) is unlinked first and a fresh file made. Raises OSError."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, mode)
    except OSError as exc:
        if exc.errno not in (errno.ELOOP, errno.ENXIO):  # a symlink; a FIFO without a reader
            raise
        fd = -1
    if fd >= 0 and not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        fd = -1
    if fd < 0:
        os.unlink(path)
        fd = os.open(path, flags | os.O_EXCL, mode)
    os.set_blocking(fd, True)
    return fd


def is_regular(path: Path) -> bool:
    """A regular file at `path` itself (a link is not: lstat)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def read_tail(path: Path, limit: int = TAIL_BYTES) -> str:
    """The last `limit` bytes of `path` as text ("" when there is no file yet; a line saying so when
    the path is not a regular file or cannot be read)."""
    try:
        fd = open_regular(path)
    except FileNotFoundError:
        return ""
    except NotRegular as exc:
        return f"[{path.name} is {exc.what}, not a regular file: not read]"
    except OSError as exc:
        return f"[{path.name} cannot be read: {exc.strerror}]"
    try:
        size = os.lseek(fd, 0, os.SEEK_END)
        os.lseek(fd, max(0, size - limit), os.SEEK_SET)
        parts: list[bytes] = []
        left = limit
        while left > 0 and (chunk := os.read(fd, left)):  # bounded even if the file grows meanwhile
            parts.append(chunk)
            left -= len(chunk)
        return b"".join(parts).decode("utf-8", errors="replace")
    except OSError as exc:
        return f"[{path.name} cannot be read: {exc.strerror}]"
    finally:
        os.close(fd)
