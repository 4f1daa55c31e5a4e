"""`loopctl run`'s journal: every transition logged once, from the transition bus (DESIGN rule 2),
never from the branches that happen to cause them.

Under systemd (`JOURNAL_STREAM` naming our stderr) each line starts with its sd-daemon priority
(`<3>` error, `<4>` warning, `<6>` info, `<7>` debug), so `journalctl -u loopctl -p warning` finds the
failures, and journald adds the time itself; anywhere else a line carries its own time. No token
ever reaches a line: the values of the files in `<state>/secrets/` are masked in every message.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

from console.core.logtail import LogFileError, open_log
from console.core.store import Store
from console.core.transitions import Transition
from console.readmodel.journal import level_of, line_of, redact

log = logging.getLogger("loopctl.journal")
SD_PRIORITY = {logging.CRITICAL: 2, logging.ERROR: 3, logging.WARNING: 4, logging.INFO: 6, logging.DEBUG: 7}
PLAIN_FORMAT = "%(asctime)s loopctl[%(process)d] %(levelname)s %(message)s"
SECRET_BYTES = 16 * 1024


def under_journald(env: Mapping[str, str], stderr_fd: int = 2) -> bool:
    """JOURNAL_STREAM is `device:inode` of the stream journald gave us; it counts only if stderr is
    still that stream (a child of a service may inherit the variable with another stderr)."""
    value = env.get("JOURNAL_STREAM", "")
    device, _, inode = value.partition(":")
    try:
        st = os.fstat(stderr_fd)
        return bool(value) and (st.st_dev, st.st_ino) == (int(device), int(inode))
    except (OSError, ValueError):
        return False


class SdFormatter(logging.Formatter):
    """`<priority>message`, one line: journald stamps the time and splits on newlines."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record).replace("\n", " ⏎ ")
        return f"<{SD_PRIORITY.get(record.levelno, 6)}>{text}"


class Redacting(logging.Filter):
    """Masks the secrets the engine holds in every record, whichever logger wrote it."""

    def __init__(self, secrets_dir: Path) -> None:
        super().__init__()
        self.secrets_dir = secrets_dir
        self._seen: dict[str, tuple[int, int, str]] = {}  # name -> (mtime_ns, size, value)

    def secrets(self) -> list[str]:
        values = []
        try:
            names = sorted(os.listdir(self.secrets_dir))
        except OSError:
            return []
        for name in names:
            path = self.secrets_dir / name
            try:
                st = os.stat(path, follow_symlinks=False)
            except OSError:
                continue
            cached = self._seen.get(name)
            if cached is None or cached[:2] != (st.st_mtime_ns, st.st_size):
                cached = (st.st_mtime_ns, st.st_size, _read_secret(path))
                self._seen[name] = cached
            if cached[2]:
                values.append(cached[2])
        return values

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = redact(message, self.secrets())
        if masked != message:
            record.msg, record.args = masked, None
        return True


def _read_secret(path: Path) -> str:
    try:
        fd = open_log(path)
    except LogFileError:
        return ""
    if fd is None:
        return ""
    try:
        return os.read(fd, SECRET_BYTES).decode("utf-8", "replace").strip()
    finally:
        os.close(fd)


def setup(env: Mapping[str, str], secrets_dir: Path, level: int = logging.INFO) -> None:
    """The daemon's logging: journald's priorities or timestamped lines, secrets masked."""
    handler = logging.StreamHandler()
    handler.setFormatter(SdFormatter("%(message)s") if under_journald(env) else logging.Formatter(PLAIN_FORMAT))
    handler.addFilter(Redacting(secrets_dir))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per health probe is noise


def attach(store: Store) -> None:
    """Every transition the store publishes, once, as one line at its level."""
    def write(t: Transition) -> None:
        log.log(level_of(t), "%s", line_of(t))

    store.bus.subscribe(write)
