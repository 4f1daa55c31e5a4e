"""The latest encoded snapshot, handed from the engine's event loop to the socket's own thread.

The socket is served at a fixed priority (issue 19): its thread answers `hello`, `snapshot` and
`watch` from what was last published here, whatever the engine's loop is doing (a burst of spawns,
a commit, a build). The engine's loop builds and publishes; the socket's thread only reads.

- `Published` is the one reference both threads touch: the engine swaps in a whole new `Latest`
  (an assignment, atomic under the GIL) and calls the listeners; a reader takes whatever is there.
  Nothing queues: a watcher that fell behind gets the latest, never the versions in between.
- `Publisher` is the engine side, a task on its loop: it builds when someone wants a version newer
  than the published one (a request, via `want`, which any thread may call) or, while anyone
  watches, whenever the state moves; each build at least `Engine.build_spacing()` after the last,
  so builds take at most about a quarter of the engine's time while 1,000 loops churn. An
  unobserved host builds nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec

from console.core.records import View
from console.core.waiting import cancel_and_wait, first_done
from console.host.freshness import OLDEST_SECONDS
from console.readmodel.snapshot import EngineView, Snapshot

if TYPE_CHECKING:
    from console.host.engine import Engine

log = logging.getLogger("loopctl.socket")

RETRY_SECONDS = 1.0  # after a build that raised (a bug): logged, then tried again, never a dead publisher


class Latest(View, frozen=True):
    """One published version: its encoded snapshot, as every request and watcher of it gets it."""

    version: int
    encoded: msgspec.Raw
    engine: EngineView  # for `hello`, which needs no snapshot
    built_at: float  # time.monotonic() when it was the state's version (freshness.py)
    snapshot: Snapshot  # what `encoded` holds, for a client of an older schema


class Published:
    def __init__(self, first: Latest) -> None:
        self.latest = first
        self._lock = threading.Lock()  # guards the listeners only: `latest` is read without it
        self._listeners: list[Callable[[Latest], None]] = []

    def publish(self, latest: Latest) -> None:
        self.latest = latest
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener(latest)

    def listen(self, listener: Callable[[Latest], None]) -> None:
        with self._lock:
            self._listeners.append(listener)

    def unlisten(self, listener: Callable[[Latest], None]) -> None:
        with self._lock, contextlib.suppress(ValueError):
            self._listeners.remove(listener)


class Publisher:
    """Builds on the engine's loop what the socket's thread serves. `start` and `publish_now` run on
    that loop; `want` and `watchers` may be touched from any thread."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.published = Published(self._build())
        self.watchers = 0  # the socket's thread counts its watchers here: a plain int, read on the loop
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wanted: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wanted = asyncio.Event()
        self._task = self._loop.create_task(self._run(), name="snapshot-publisher")

    async def stop(self) -> None:
        self._loop = None  # want() is a no-op from now on
        if self._task is not None:
            task, self._task = self._task, None
            try:
                await cancel_and_wait(task)
            except Exception:  # it died of a bug before: said now, and the socket still closes
                log.exception("the snapshot publisher had failed")

    def want(self) -> None:
        """Ask for a build of the current version (from any thread; a no-op once stopped)."""
        loop, wanted = self._loop, self._wanted
        if loop is None or wanted is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody builds any more
            loop.call_soon_threadsafe(wanted.set)

    def behind(self) -> bool:
        """The state moved on since the published version (read from any thread: two plain ints)."""
        return self.published.latest.version < self.engine.changes.version

    def publish_now(self) -> Latest:
        """Build (if the state moved) and publish now, spacing or not: an action's answer waits for it,
        so whoever acted reads a snapshot that shows it."""
        latest = self._build()
        if latest.version != self.published.latest.version:
            self.published.publish(latest)
        return latest

    def _due_in(self) -> float:
        """The engine's spacing, unless what is served is older than the spacing lets it be: the builds
        of others (the owner's console, the metrics textfile) keep the spacing running while none is
        published, and a request is not answered from that version (freshness.OLDEST_SECONDS)."""
        if time.monotonic() - self.published.latest.built_at >= OLDEST_SECONDS:
            return 0.0
        return self.engine.build_due_in()

    def _build(self) -> Latest:
        version, encoded = self.engine.encoded_snapshot(now=True)
        return Latest(version=version, encoded=encoded, engine=self.engine.engine_view(),
                      built_at=time.monotonic(), snapshot=self.engine.built_snapshot())

    async def _run(self) -> None:
        assert self._wanted is not None
        wanted, changes = self._wanted, self.engine.changes
        while True:
            if self.behind() and (wanted.is_set() or self.watchers):
                wanted.clear()
                await asyncio.sleep(self._due_in())  # 0 on a quiet host: built at once
                try:
                    self.publish_now()
                except Exception:
                    log.exception("building the snapshot failed; trying again in %g s", RETRY_SECONDS)
                    await asyncio.sleep(RETRY_SECONDS)
                continue
            wanted.clear()
            waits: list[asyncio.Future[Any]] = [asyncio.ensure_future(wanted.wait())]
            if self.watchers:
                waits.append(asyncio.ensure_future(changes.wait_newer(self.published.latest.version)))
            try:
                await first_done(*waits)
            finally:
                for wait in waits:
                    wait.cancel()
