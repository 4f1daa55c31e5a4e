"""One engine per host: the first process to flock `engine.lock` owns the host (DESIGN section 5).

flock is released by the kernel when the holder dies, so a lock left by a killed engine needs no
recovery. The file is never replaced (the lock lives on its inode): holder details are rewritten
in place, and a reader that catches a torn write treats the holder as unknown.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import pwd
from pathlib import Path

from console.core.errors import LeaseError
from console.core.records import View, to_builtins


class Holder(View, frozen=True):
    pid: int
    uid: int
    started_at: float
    version: str
    # The config file the owner runs (DESIGN section 5): whoever takes over runs that one.
    config_path: str = ""
    config_present: bool = False  # False: the owner ran the embedded default (no file there)


def _user(uid: int) -> str:
    try:
        return f"uid {uid} ({pwd.getpwuid(uid).pw_name})"
    except KeyError:
        return f"uid {uid}"


def foreign_holder_error(lock_path: Path, uid: int, pid: int | None) -> LeaseError:
    held = f" by pid {pid}" if pid else ""
    return LeaseError(
        f"{lock_path} is held{held} as {_user(uid)}: run loopctl as that user, or use your own --state-dir"
    )


def may_observe(holder_uid: int) -> bool:
    """Can this process observe an engine running as `holder_uid`? Only as that uid, or as root."""
    return os.getuid() in (holder_uid, 0)


def peer_allowed(peer_uid: int) -> bool:
    """Does this engine accept a socket peer running as `peer_uid`? Only its own uid, or root.

    Not the same question as `may_observe`: an engine running as root must still refuse other users.
    """
    return peer_uid in (os.getuid(), 0)


def read_holder(lock_path: Path) -> Holder | None:
    try:
        raw = lock_path.read_text(encoding="utf-8")
        data = json.loads(raw)
        return Holder(int(data["pid"]), int(data["uid"]), float(data["started_at"]), str(data["version"]),
                      str(data.get("config_path", "")), data.get("config_present") is True)
    except (OSError, ValueError, KeyError, TypeError):
        return None


class Lease:
    """A held engine.lock. Release it (or exit) to hand the host to the next engine."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @staticmethod
    def _open(path: Path) -> int:
        try:
            # O_CLOEXEC (Python's default too): a sidecar must never inherit the lease.
            return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except PermissionError:
            try:
                st = path.stat()
            except OSError:
                raise LeaseError(f"{path} cannot be created (permission denied): use your own --state-dir")\
                    from None
            holder = read_holder(path)
            raise foreign_holder_error(path, st.st_uid, holder.pid if holder else None) from None
        except OSError as exc:
            raise LeaseError(f"{path} cannot be opened ({exc.strerror}): check the state directory") from None

    @classmethod
    def try_acquire(cls, path: Path) -> Lease | None:
        """Take the lease now, or return None when another engine holds it."""
        fd = cls._open(path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                holder = read_holder(path)
                if holder is not None and not may_observe(holder.uid):
                    raise foreign_holder_error(path, holder.uid, holder.pid) from None
                return None
            raise LeaseError(f"{path} cannot be locked ({exc.strerror})") from None
        return cls(path, fd)

    @classmethod
    def acquire_blocking(cls, path: Path) -> Lease:
        """Wait until the current owner exits, then take the lease (call from a thread)."""
        fd = cls._open(path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        return cls(path, fd)

    def record_holder(self, holder: Holder) -> None:
        assert self._fd is not None
        data = json.dumps(to_builtins(holder)).encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)
        os.fsync(self._fd)

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    @property
    def held(self) -> bool:
        return self._fd is not None


def lease_is_held(lock_path: Path, proc_locks: Path = Path("/proc/locks")) -> bool:
    """Whether some process holds engine.lock, read from /proc/locks.

    Observers must never take the lock to find out: holding it even for a moment could make an
    engine that is starting at that instant refuse to start.
    """
    try:
        st = lock_path.stat()
        table = proc_locks.read_text()
    except OSError:
        return False
    want = (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)
    for line in table.splitlines():
        fields = line.split()
        # "1: FLOCK  ADVISORY  WRITE 2618 fe:00:2146317 0 EOF"; blocked waiters carry "->" after "1:".
        if len(fields) < 6 or fields[1] != "FLOCK":
            continue
        parts = fields[5].split(":")
        if len(parts) != 3:
            continue
        try:
            found = (int(parts[0], 16), int(parts[1], 16), int(parts[2]))
        except ValueError:
            continue
        if found == want:
            return True
    return False
