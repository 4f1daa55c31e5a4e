"""The owner's pushes as they come down the watch, each decoded into records only if it is drawn.

A 1,000-loop host pushes a 180 KB snapshot several times a second while its loops run, and the
console draws one a second at most in a burst (pacing.py): the pacer keeps only the latest. Decoding every
push was a fifth of the console's CPU (issue 19); here a push is read only far enough to know the
engine said ok, and held as its bytes (`Encoded`) until it is drawn, then decoded once, the socket's
own way (its record lists are tables, console.core.tables). Textual-free.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from pathlib import Path

import msgspec

from console.core.errors import OwnerUnavailable
from console.core.records import View
from console.host.protocol import ProtocolError, decode_line
from console.host.watch import EarlyWatch, snapshot_of, watch_frames
from console.readmodel.snapshot import Snapshot


class _Head(View, frozen=True):
    """What a frame is, without its snapshot (msgspec skips what no field names, without building it)."""

    ok: bool = False


class Encoded:
    """A push as its line came: `snapshot()` decodes it the first time it is asked for, and only then."""

    __slots__ = ("_line", "_snapshot", "decodes")

    def __init__(self, line: bytes) -> None:
        self._line = line
        self._snapshot: Snapshot | None = None
        self.decodes = 0  # tests count them: a held push is decoded once, a dropped one never

    def snapshot(self) -> Snapshot:
        if self._snapshot is None:
            self.decodes += 1
            self._snapshot = decode_push(self._line)
        return self._snapshot


Push = Snapshot | Encoded


def snapshot_of_push(push: Push) -> Snapshot:
    return push if isinstance(push, Snapshot) else push.snapshot()


def decode_push(line: bytes) -> Snapshot:
    """The push's records, read as every other reader of the socket reads them (a refusal or a wrong
    shape raises what they raise)."""
    return snapshot_of(decode_line(line))


def _checked(line: bytes) -> Encoded:
    """The frame said ok (else it raises what the socket's reading raises: OwnerUnavailable with the
    engine's refusal, ProtocolError for a line that is not JSON); its snapshot is left encoded."""
    try:
        ok = msgspec.json.decode(line, type=_Head).ok
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        ok = False
    if not ok:
        try:
            snapshot_of(decode_line(line))  # raises, as it did when every push was decoded here
        except ProtocolError as exc:  # not JSON, or nested past any use: the watch is not to be read
            raise OwnerUnavailable(f"the engine's watch sent {exc.message}") from None
    return Encoded(line)


def watch_encoded(socket_path: Path, early: EarlyWatch | None = None) -> AsyncGenerator[Push, None]:
    """host.watch.watch, each push after the first held encoded: the owner's snapshot now and after
    every change; returns when the owner goes away. With `early`, its connection is carried on."""
    return watch_frames(socket_path, _checked, early)
