"""A sidecar's log: `<state>/sidecars/<name>.log`, written by the sidecar itself through the descriptor
it was launched with (so it outlives a crashed engine), and kept within its size by the engine.

- At each launch the last launch's log moves aside to `<name>.log.1` (`set_aside`).
- While it runs, `LogKeeper` looks at each log every CHECK_SECONDS (sooner as a fast writer nears
  its cap) and rotates it by size (`rotate`): its content is copied to `<name>.log.1` and the log
  cut back to nothing, which the sidecar's O_APPEND descriptor carries on writing at (logrotate's
  copytruncate: what is written in the instant between the copy's end and the cut is lost). It
  rotates once the log is past `log_max_bytes`, or would be within two more looks at the rate it
  grew since the last, so a steady writer's log stays within its cap; one that writes more than its
  cap between two looks cannot.
- Reading a log (the snapshot's tail, `loopctl logs`) never writes or cuts anything.

Every open is of a regular file reached without a link and without blocking (core/files.py): what
the sidecar left at its log's path is not trusted.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import logging
import os
import stat
from collections.abc import Callable
from pathlib import Path

from console.core.clock import Clock
from console.core.files import append_regular, is_regular

log = logging.getLogger("loopctl.sidecars")

CHECK_SECONDS = 1.0
MIN_LOOK_SECONDS = 0.1
COPY_CHUNK = 64 * 1024  # the fallback copy's buffer: under glibc's mmap threshold, reused, never held


def previous_of(logfile: Path) -> Path:
    return logfile.with_name(logfile.name + ".1")


def rotation_due(size: int, size_before: int, cap: int) -> bool:
    """Rotate now: past the cap, or past it within two more looks if it grows as it grew since the
    last (two: a look may come late on a busy host)."""
    return size > 0 and size + 2 * max(size - size_before, 0) > cap


def next_look(size: int, size_before: int, cap: int, seconds: float) -> float:
    """How soon to look again at a log that grew from `size_before` to `size` in `seconds`: at most
    CHECK_SECONDS, sooner as it nears its cap (a quarter of the time it takes to reach it at this rate,
    never under MIN_LOOK_SECONDS), so a fast writer is looked at before it passes the cap."""
    growth = size - size_before
    if growth <= 0 or seconds <= 0:
        return CHECK_SECONDS
    to_cap = max(cap - size, 0) / (growth / seconds)
    return min(CHECK_SECONDS, max(MIN_LOOK_SECONDS, to_cap / 4))


def set_aside(logfile: Path) -> None:
    """Before a launch: the last launch's log becomes `.1` (a link or a FIFO there is left for
    append_regular to replace)."""
    with contextlib.suppress(FileNotFoundError):
        if is_regular(logfile) and logfile.stat().st_size > 0:
            os.replace(logfile, previous_of(logfile))


def rotate(logfile: Path, at_most: int) -> int:
    """Copy the log to `.1` and cut it back to nothing; the bytes moved (0 if it is no regular file).
    Copies at most `at_most` bytes: a writer faster than the copy does not keep it going for ever."""
    try:
        fd = os.open(logfile, os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ELOOP, errno.ENXIO):
            return 0
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return 0
        aside = logfile.with_name(logfile.name + ".1.part")
        with contextlib.suppress(FileNotFoundError):  # a fresh file: a hard link left there is not cut
            os.unlink(aside)
        out = append_regular(aside)
        try:
            os.ftruncate(out, 0)
            moved = copy(fd, out, at_most)
            os.ftruncate(fd, 0)  # at once after the copy's last read: the window for a lost line is that short
        finally:
            os.close(out)
        os.replace(aside, previous_of(logfile))
        return moved
    finally:
        os.close(fd)


def copy(src: int, dst: int, at_most: int) -> int:
    """Up to `at_most` bytes of `src` from its start to `dst` (empty, at its start); the bytes copied.
    In the kernel (copy_file_range) where it can: a rotation moves megabytes every few minutes, and
    copied through Python each megabyte was a buffer allocated in whichever worker thread ran it,
    whose arena kept the pages (the soak's engine RSS rose in steps as rotations met fresh threads).
    Destinations opened O_APPEND are refused by copy_file_range: the flag is cleared first."""
    fcntl.fcntl(dst, fcntl.F_SETFL, fcntl.fcntl(dst, fcntl.F_GETFL) & ~os.O_APPEND)
    moved = 0
    with contextlib.suppress(OSError):  # EXDEV on kernels before 5.3, ENOSYS, EINVAL on some file systems
        while moved < at_most and (n := os.copy_file_range(src, dst, at_most - moved, moved, moved)):
            moved += n
        # 0 short of the log's end is a file system where copy_file_range silently copies nothing
        if moved >= at_most or os.fstat(src).st_size <= moved:
            return moved
    while moved < at_most and (chunk := os.pread(src, min(COPY_CHUNK, at_most - moved), moved)):
        moved += os.pwrite(dst, chunk, moved)
    return moved


class LogKeeper:
    """The size watch over every sidecar's log: a stat each per look, a look at least every
    CHECK_SECONDS, sooner when a log grows fast towards its cap (`next_look`)."""

    def __init__(self, clock: Clock, logs: Callable[[], list[tuple[Path, int]]]) -> None:
        self.clock = clock
        self.logs = logs  # (path, cap) of each configured sidecar's log, asked each pass
        self.sizes: dict[Path, int] = {}
        self.rotations = 0
        self.pause = CHECK_SECONDS  # until the next look, as the last look found the logs
        self._looked_at: float | None = None

    def due(self) -> list[tuple[Path, int]]:
        """The logs to rotate now; remembers every log's size for the next pass, and when to look again."""
        now = self.clock.monotonic()
        since = now - self._looked_at if self._looked_at is not None else 0.0
        self._looked_at = now
        found: list[tuple[Path, int]] = []
        sizes: dict[Path, int] = {}
        pause = CHECK_SECONDS
        for path, cap in self.logs():
            try:
                info = os.lstat(path)
            except OSError:
                continue
            if not stat.S_ISREG(info.st_mode):
                continue
            sizes[path] = info.st_size
            before = self.sizes.get(path, info.st_size)
            if rotation_due(info.st_size, before, cap):
                found.append((path, cap))
            else:
                pause = min(pause, next_look(info.st_size, before, cap, since))
        self.sizes = sizes
        self.pause = pause
        return found

    async def pass_once(self) -> None:
        for path, cap in self.due():
            try:
                moved = await asyncio.to_thread(rotate, path, 2 * cap)  # a copy of megabytes: not on the loop
            except OSError as exc:
                log.warning("sidecar log %s: cannot rotate (%s)", path, exc.strerror or exc)
                continue
            if moved:
                self.rotations += 1
                self.sizes[path] = 0
                log.info("sidecar log %s: rotated at %d bytes to %s", path, moved, previous_of(path).name)

    async def run(self) -> None:
        while True:
            await self.pass_once()
            await self.clock.sleep(self.pause)
