"""What an operator stopped and wants kept stopped: `<state>/holds.json`, by target (`sidecar:web`).

A hold outlives reloads, restarts and the engine itself, until the matching verb releases it
(`loopctl start sidecar:web`). The file is small, written atomically (0600) before the effect it
asks for (intent before effect), and read bounded and typed: one that cannot be read is said in the
log and treated as holding nothing, so a damaged file never keeps a host from starting.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from console.core.atomic import atomic_write_json
from console.core.decode import DecodeError, decode_json
from console.core.logtail import LogFileError, open_log
from console.core.records import View, to_builtins

log = logging.getLogger("loopctl.holds")
MAX_BYTES = 256 * 1024


class Hold(View, frozen=True):
    verb: str  # what holds it: "stop"
    by: str  # who asked, as the operator would recognise it: "loopctl stop", "console"
    at: float


class Holds:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._holds = _load(path)

    def get(self, target: str) -> Hold | None:
        return self._holds.get(target)

    def hold(self, target: str, hold: Hold) -> None:
        self._holds[target] = hold
        self._save()

    def release(self, target: str) -> Hold | None:
        hold = self._holds.pop(target, None)
        if hold is not None:
            self._save()
        return hold

    def _save(self) -> None:
        atomic_write_json(self.path, {t: to_builtins(h) for t, h in sorted(self._holds.items())}, mode=0o600)


def _load(path: Path) -> dict[str, Hold]:
    try:
        fd = open_log(path)  # no links, no FIFOs: the same rules as every file the engine reads
    except LogFileError as exc:
        log.warning("holds: %s; holding nothing", exc)
        return {}
    if fd is None:
        return {}
    try:
        data = os.read(fd, MAX_BYTES + 1)
    finally:
        os.close(fd)
    try:
        if len(data) > MAX_BYTES:
            raise ValueError(f"larger than {MAX_BYTES} bytes")
        return decode_json(dict[str, Hold], data)
    except (ValueError, DecodeError) as exc:
        log.warning("holds: %s cannot be read (%s); holding nothing", path, exc)
        return {}
