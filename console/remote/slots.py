"""The remote config on disk (DESIGN section 4): two slots, each document with an etag file written
before the pointer flips, the `active` symlink, and the control state in `state.json`.

    config/slot-a.json   the document bytes as served
    config/slot-a.etag   {"etag", "sha256"}: which document this is, and the digest that proves it
    config/active        symlink -> slot-a.json (replaced atomically: a new link, then os.replace)
    config/state.json    probation marker, remembered bad etag, last rollback, apply, boot and poll

Every write is atomic and fsynced with its directory; a reader sees a whole old or a whole new file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

from console.core.atomic import atomic_write, atomic_write_json, fsync_dir
from console.core.decode import DecodeError, decode_json
from console.core.records import View, to_builtins
from console.remote.probation import Bad, Marker, SlotInfo
from console.remote.records import ApplyRecord, BootRecord, PollRecord, Rollback

SLOTS = ("a", "b")


class ControlState(View, frozen=True):
    marker: Marker | None = None
    bad: Bad | None = None
    last_rollback: Rollback | None = None
    last_apply: ApplyRecord | None = None
    last_boot: BootRecord | None = None
    last_poll: PollRecord | None = None


def digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


class Slots:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.state_file = directory / "state.json"
        self.pointer = directory / "active"

    def ensure(self) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)

    def document_path(self, name: str) -> Path:
        return self.directory / f"slot-{name}.json"

    def etag_path(self, name: str) -> Path:
        return self.directory / f"slot-{name}.etag"

    # -- reading ---------------------------------------------------------------------------------

    def active_name(self) -> str | None:
        try:
            target = os.readlink(self.pointer)
        except OSError:
            return None
        for name in SLOTS:
            if target == self.document_path(name).name:
                return name
        return None

    def read(self, name: str) -> tuple[SlotInfo, bytes] | None:
        """The slot's bytes and what its etag file says of them; None when the slot was never written."""
        try:
            raw = self.document_path(name).read_bytes()
        except FileNotFoundError:
            return None
        try:
            record = json.loads(self.etag_path(name).read_text())
            etag, recorded = str(record["etag"]), str(record["sha256"])
        except (OSError, ValueError, KeyError, TypeError):
            return SlotInfo(name, "", intact=False), raw
        return SlotInfo(name, etag, intact=recorded == digest(raw)), raw

    def load_state(self) -> ControlState:
        try:
            return decode_json(ControlState, self.state_file.read_bytes())
        except FileNotFoundError:
            return ControlState()
        except (OSError, ValueError, DecodeError):
            # A torn state file cannot happen (atomic writes); a hand-edited one must not stop the host.
            return ControlState()

    # -- writing (the apply steps, in order) -----------------------------------------------------------

    def write_document(self, name: str, raw: bytes) -> None:
        self.ensure()
        atomic_write(self.document_path(name), raw, mode=0o600)

    def write_etag(self, name: str, etag: str, raw: bytes) -> None:
        atomic_write_json(self.etag_path(name), {"etag": etag, "sha256": digest(raw)}, mode=0o600)

    def flip(self, name: str) -> None:
        """Point `active` at the slot: a new symlink renamed over the old one, then fsync the directory."""
        self.ensure()
        temporary = self.directory / f".active.{os.getpid()}.tmp"
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        os.symlink(self.document_path(name).name, temporary)
        os.replace(temporary, self.pointer)
        fsync_dir(self.directory)

    def save_state(self, state: ControlState) -> None:
        self.ensure()
        atomic_write_json(self.state_file, to_builtins(state), mode=0o600)
