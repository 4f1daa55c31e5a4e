"""Where the console's snapshots come from: the engine it owns in-process, or the owner's socket.

Textual-free: a feed calls `on_snapshot` for each new snapshot; the app decides how to show it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from console.engine.engine import Engine
from console.engine.snapshot import Snapshot
from console.engine.watch import watch

SnapshotSink = Callable[[Snapshot], None]


async def follow_engine(engine: Engine, on_snapshot: SnapshotSink) -> None:
    """Push the in-process engine's snapshot now and after every change (never on a timer)."""
    seen = -1
    while True:
        seen = await engine.changes.wait_newer(seen)
        on_snapshot(engine.snapshot())


async def follow_socket(engine_socket: Path, on_snapshot: SnapshotSink) -> None:
    """Push the owner's snapshots as it announces them; return when the owner goes away."""
    async for snap in watch(engine_socket):
        on_snapshot(snap)
