"""Where the console's snapshots come from and where its actions go. Textual-free.

- `OwnedSource`: the engine this console owns, in-process (no other engine held the lease).
- `ObservedSource`: the owner's socket; actions are sent there.
- `FixedSource`: one fixed snapshot (the scenario used for screenshots and snapshot tests).

`choose_source` picks one before the UI library is imported, so an observer's first snapshot is on
its way while that import runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from console.core.actions import ActionError
from console.core.decode import DecodeError, convert
from console.core.errors import LoopctlError, OwnerUnavailable
from console.core.logtail import LogChunk
from console.core.paths import Paths, ensure_state_dir
from console.core.records import View
from console.host.watch import WATCH, EarlyWatch, arequest, atail, snapshot_of
from console.readmodel.snapshot import EventView, Snapshot
from console.tui.feed import Push, watch_encoded

if TYPE_CHECKING:  # an observing console never loads the engine stack
    from console.host.owner import Owner
    from console.host.transport import Dialer

SnapshotSink = Callable[[Push], None]  # a snapshot, or one held encoded until it is drawn (feed.py)


class EventPage(View, frozen=True):
    """A page of the event log, newest first; `next` is the `before` of the older page (None at the
    oldest); `failed` says why none could be read (the engine gone, a refusal)."""

    events: list[EventView]
    next: int | None = None
    failed: str = ""


def _page(events: list[EventView], limit: int) -> EventPage:
    return EventPage(events, events[-1].id if len(events) == limit else None)


class Source(Protocol):
    role: str

    def ready(self) -> Snapshot | None:
        """A snapshot already in hand for the first frame, if any; never waits."""
        ...

    async def follow(self, sink: SnapshotSink) -> None:
        """Deliver snapshots as they change; return when the source is gone (the owner stopped)."""
        ...

    async def act(self, verb: str, target: str) -> dict[str, Any]:
        """Perform an action; raise ActionError with the engine's refusal."""
        ...

    def tail(self, target: str, lines: int, follow: bool) -> AsyncIterator[LogChunk]:
        """A thing's log (the socket's `tail` op): its last `lines`, then what it writes while
        `follow`; raise ActionError with the engine's refusal, OwnerUnavailable if it goes away."""
        ...

    async def events(self, kind: str | None = None, name: str | None = None, *, since: float | None = None,
                     until: float | None = None, before: int | None = None, limit: int = 100) -> EventPage:
        """A page of the whole event log, newest first, filtered (the socket's `events` op)."""
        ...

    async def close(self) -> None: ...


class OwnedSource:
    role = "owner"

    def __init__(self, owner: Owner) -> None:
        self.owner = owner

    def ready(self) -> Snapshot | None:
        return None  # the engine starts with the app's event loop

    async def follow(self, sink: SnapshotSink) -> None:
        engine = await self.owner.start()
        seen = -1
        while True:
            await engine.changes.wait_newer(seen)
            await asyncio.sleep(engine.build_due_in())  # fast changes shown together (Engine.encoded_snapshot)
            seen = engine.changes.version
            sink(engine.snapshot())

    async def act(self, verb: str, target: str) -> dict[str, Any]:
        if self.owner.engine is None:
            raise ActionError("not_running", "the engine is not running")
        return await self.owner.engine.act(verb, target)

    async def tail(self, target: str, lines: int, follow: bool) -> AsyncIterator[LogChunk]:
        from console.host.logs import plan, stream  # noqa: PLC0415  (the owner has the engine stack loaded)

        if self.owner.engine is None:
            raise ActionError("not_running", "the engine is not running")
        chunks = stream(plan(self.owner.engine, target), lines, follow=follow)
        try:
            async for chunk in chunks:
                yield chunk
        finally:
            await chunks.aclose()

    async def events(self, kind: str | None = None, name: str | None = None, *, since: float | None = None,
                     until: float | None = None, before: int | None = None, limit: int = 100) -> EventPage:
        from console.readmodel.snapshot import events_view  # noqa: PLC0415

        if self.owner.store is None:
            return EventPage([], failed="the engine is not running")
        return _page(events_view(self.owner.store.events_page(kind=kind, name=name, since=since, until=until,
                                                              before=before, limit=limit)), limit)

    async def close(self) -> None:
        await self.owner.stop()


class ObservedSource:
    role = "observer"

    def __init__(self, socket_path: Path, early: EarlyWatch | None = None) -> None:
        self.socket_path = socket_path
        self.early = early

    def ready(self) -> Snapshot | None:
        return self.early.ready() if self.early is not None else None

    async def follow(self, sink: SnapshotSink) -> None:
        early, self.early = self.early, None  # a second follow (after a lost feed) connects afresh
        async for push in watch_encoded(self.socket_path, early):
            sink(push)

    async def act(self, verb: str, target: str) -> dict[str, Any]:
        try:
            answer = await arequest(self.socket_path, "action", verb=verb, target=target)
        except (OwnerUnavailable, OSError) as exc:
            raise ActionError("owner_unavailable", str(exc)) from None
        return _result_of(answer)

    async def tail(self, target: str, lines: int, follow: bool) -> AsyncIterator[LogChunk]:
        async for answer in atail(self.socket_path, target, lines, follow=follow):
            chunk = _chunk_of(answer)
            if chunk is not None:
                yield chunk

    async def events(self, kind: str | None = None, name: str | None = None, *, since: float | None = None,
                     until: float | None = None, before: int | None = None, limit: int = 100) -> EventPage:
        try:
            answer = await arequest(self.socket_path, "events",
                                    **_filters(kind, name, since=since, until=until, before=before, limit=limit))
        except (OwnerUnavailable, OSError) as exc:
            return EventPage([], failed=str(exc))
        return _events_of(answer)

    async def close(self) -> None:
        if self.early is not None:
            self.early.close()


def _result_of(answer: dict[str, Any]) -> dict[str, Any]:
    """An action's answer: its result, or the engine's refusal raised as the ActionError it names."""
    if not answer.get("ok"):
        err = answer.get("error") or {}
        raise ActionError(str(err.get("code", "error")), str(err.get("message", "refused")))
    result: dict[str, Any] = answer.get("result") or {}
    return result


def _filters(kind: str | None, name: str | None, *, since: float | None, until: float | None, before: int | None,
             limit: int) -> dict[str, Any]:
    """The `events` op's keys: only the filters given (an older engine ignores none it knows)."""
    given = {"kind": kind, "name": name, "since": since, "until": until, "before": before}
    return {"limit": limit, **{k: v for k, v in given.items() if v is not None}}


def _events_of(answer: dict[str, Any] | None) -> EventPage:
    """The `events` op's page, typed at the boundary: a refusal or a wrong shape is no history, not a crash."""
    if not answer:
        return EventPage([], failed="no answer")
    if not answer.get("ok"):
        err = answer.get("error") or {}
        return EventPage([], failed=f"{err.get('code', 'error')}: {err.get('message', 'refused')}")
    try:
        nxt = answer.get("next")
        return EventPage(convert(list[EventView], answer.get("events") or []),
                         nxt if isinstance(nxt, int) and not isinstance(nxt, bool) else None)
    except DecodeError as exc:
        return EventPage([], failed=f"bad answer: {exc}")


def _chunk_of(answer: dict[str, Any]) -> LogChunk | None:
    """One answer of the `tail` op: a chunk of log, nothing (its end), or the engine's refusal raised."""
    if not answer.get("ok"):
        err = answer.get("error") or {}
        raise ActionError(str(err.get("code", "error")), str(err.get("message", "refused")))
    chunk = answer.get("chunk")
    if not isinstance(chunk, dict):
        return None
    return LogChunk(str(chunk.get("file", "")), [str(line) for line in chunk.get("lines") or []],
                    str(chunk.get("note", "")))


class RemoteSource:
    """An engine on another host, through a dialer (ssh, or a fleet's local entry): watched, and acted
    on, over the socket protocol. Nothing here is taken over when the far engine goes away."""

    def __init__(self, dialer: Dialer) -> None:
        self.dialer = dialer
        self.role = f"observer via {dialer.kind} {dialer.name}"

    def ready(self) -> Snapshot | None:
        return None

    async def follow(self, sink: SnapshotSink) -> None:
        """Returns only by raising: why the far engine's feed ended (the console reconnects)."""
        stream = await self.dialer.open()
        try:
            await stream.send(WATCH)
            while (answer := await stream.read()) is not None:
                sink(snapshot_of(answer))
            raise await stream.failure()
        finally:
            await stream.close()

    async def act(self, verb: str, target: str) -> dict[str, Any]:
        try:
            stream = await self.dialer.open()
            try:
                await stream.send({"id": 1, "op": "action", "verb": verb, "target": target})
                answer = await stream.read()
                if answer is None:
                    raise await stream.failure()
            finally:
                await stream.close()
        except (LoopctlError, OSError) as exc:
            raise ActionError("owner_unavailable", str(exc)) from None
        return _result_of(answer)

    async def tail(self, target: str, lines: int, follow: bool) -> AsyncIterator[LogChunk]:
        """The far engine's `tail` op over the same dialer: the log view works over SSH as on the host."""
        stream = await self.dialer.open()
        try:
            await stream.send({"id": 1, "op": "tail", "target": target, "lines": lines, "follow": follow})
            while (answer := await stream.read()) is not None:
                chunk = _chunk_of(answer)
                if chunk is not None:
                    yield chunk
                if answer.get("end"):
                    return
            raise await stream.failure()
        finally:
            await stream.close()

    async def events(self, kind: str | None = None, name: str | None = None, *, since: float | None = None,
                     until: float | None = None, before: int | None = None, limit: int = 100) -> EventPage:
        """The far engine's `events` op over the same dialer."""
        try:
            stream = await self.dialer.open()
            try:
                filters = _filters(kind, name, since=since, until=until, before=before, limit=limit)
                await stream.send({"id": 1, "op": "events", **filters})
                answer = await stream.read()
            finally:
                await stream.close()
        except (LoopctlError, OSError) as exc:
            return EventPage([], failed=str(exc))
        return _events_of(answer)

    @staticmethod
    def reconnect_delay(attempt: int) -> float:
        from console.host.transport import backoff  # noqa: PLC0415

        return backoff(attempt)

    async def close(self) -> None:
        return None


Handler = Callable[[str, str], Awaitable[dict[str, Any]]]


class FixedSource:
    """A fixed snapshot, for screenshots and rendering tests. Actions go to `handler` (or are refused)."""

    role = "owner"

    def __init__(self, snapshot: Snapshot, handler: Handler | None = None,
                 logs: dict[str, list[LogChunk]] | None = None) -> None:
        self.snapshot = snapshot
        self.handler = handler
        self.logs = logs or {}
        self.calls: list[tuple[str, str]] = []

    def ready(self) -> Snapshot | None:
        return self.snapshot

    async def follow(self, sink: SnapshotSink) -> None:
        sink(self.snapshot)
        await asyncio.Event().wait()  # a fixed scenario never changes and never goes away

    async def act(self, verb: str, target: str) -> dict[str, Any]:
        self.calls.append((verb, target))
        if self.handler is None:
            raise ActionError("not_applicable", f"{verb} {target}: the fixed scenario does not act")
        return await self.handler(verb, target)

    async def tail(self, target: str, lines: int, follow: bool) -> AsyncIterator[LogChunk]:
        if target not in self.logs:
            raise ActionError("not_applicable", f"logs {target}: the fixed scenario has no log for it")
        for chunk in self.logs[target]:
            yield chunk
        if follow:
            await asyncio.Event().wait()  # a fixed log never grows

    async def events(self, kind: str | None = None, name: str | None = None, *, since: float | None = None,
                     until: float | None = None, before: int | None = None, limit: int = 100) -> EventPage:
        """The scenario's events, filtered and paged as the engine's store does it."""
        chosen = [e for e in self.snapshot.events
                  if (kind is None or e.kind == kind) and (name is None or e.name == name)
                  and (since is None or e.at >= since) and (until is None or e.at < until)
                  and (before is None or e.id < before)]
        return _page(chosen[:limit], limit)

    async def close(self) -> None:
        return None


def choose_source(paths: Paths, *, read_only: bool) -> Source:
    """Own the host if no engine does (its config file and database opened first, so their errors are
    one line on the terminal, not a broken screen); otherwise observe the engine that does, its watch
    opened now. An observer never reads the config file: the owner runs the config it started with."""
    from console.host.lease import Lease  # noqa: PLC0415

    ensure_state_dir(paths)
    lease = Lease.try_acquire(paths.lock)
    if lease is None:
        return ObservedSource(paths.socket, EarlyWatch(paths.socket))
    from console.core.clock import SystemClock  # noqa: PLC0415
    from console.core.config import load_config  # noqa: PLC0415
    from console.host.owner import Owner  # noqa: PLC0415  (an observer never loads the engine stack)

    try:
        loaded = load_config(paths)
    except BaseException:
        lease.release()
        raise
    owner = Owner(paths, loaded, SystemClock(), lease, read_only=read_only)
    try:
        owner.prepare()
    except BaseException:
        asyncio.run(owner.stop())
        raise
    return OwnedSource(owner)
