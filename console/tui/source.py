"""Where the console's snapshots come from and where its actions go. Textual-free.

- `OwnedSource`: the engine this console owns, in-process (no other engine held the lease).
- `ObservedSource`: the owner's socket; actions are sent there.
- `FixedSource`: one fixed snapshot (the scenario used for screenshots and snapshot tests).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from console.engine.actions import ActionError
from console.engine.errors import OwnerUnavailable
from console.engine.snapshot import Snapshot
from console.engine.watch import arequest, watch

if TYPE_CHECKING:  # an observing console never loads the engine stack
    from console.engine.owner import Owner

SnapshotSink = Callable[[Snapshot], None]


class Source(Protocol):
    role: str

    async def follow(self, sink: SnapshotSink) -> None:
        """Deliver snapshots as they change; return when the source is gone (the owner stopped)."""
        ...

    async def act(self, verb: str, target: str) -> dict[str, Any]:
        """Perform an action; raise ActionError with the engine's refusal."""
        ...

    async def close(self) -> None: ...


class OwnedSource:
    role = "owner"

    def __init__(self, owner: Owner) -> None:
        self.owner = owner

    async def follow(self, sink: SnapshotSink) -> None:
        engine = await self.owner.start()
        seen = -1
        while True:
            seen = await engine.changes.wait_newer(seen)
            sink(engine.snapshot())

    async def act(self, verb: str, target: str) -> dict[str, Any]:
        if self.owner.engine is None:
            raise ActionError("not_running", "the engine is not running")
        return await self.owner.engine.act(verb, target)

    async def close(self) -> None:
        await self.owner.stop()


class ObservedSource:
    role = "observer"

    def __init__(self, socket_path: Path) -> None:
        self.socket_path = socket_path

    async def follow(self, sink: SnapshotSink) -> None:
        async for snap in watch(self.socket_path):
            sink(snap)

    async def act(self, verb: str, target: str) -> dict[str, Any]:
        try:
            answer = await arequest(self.socket_path, "action", verb=verb, target=target)
        except (OwnerUnavailable, OSError) as exc:
            raise ActionError("owner_unavailable", str(exc)) from None
        if not answer.get("ok"):
            err = answer.get("error") or {}
            raise ActionError(str(err.get("code", "error")), str(err.get("message", "refused")))
        result: dict[str, Any] = answer.get("result") or {}
        return result

    async def close(self) -> None:
        return None


Handler = Callable[[str, str], Awaitable[dict[str, Any]]]


class FixedSource:
    """A fixed snapshot, for screenshots and rendering tests. Actions go to `handler` (or are refused)."""

    role = "owner"

    def __init__(self, snapshot: Snapshot, handler: Handler | None = None) -> None:
        self.snapshot = snapshot
        self.handler = handler
        self.calls: list[tuple[str, str]] = []

    async def follow(self, sink: SnapshotSink) -> None:
        sink(self.snapshot)
        await asyncio.Event().wait()  # a fixed scenario never changes and never goes away

    async def act(self, verb: str, target: str) -> dict[str, Any]:
        self.calls.append((verb, target))
        if self.handler is None:
            raise ActionError("not_applicable", f"{verb} {target}: the fixed scenario does not act")
        return await self.handler(verb, target)

    async def close(self) -> None:
        return None
