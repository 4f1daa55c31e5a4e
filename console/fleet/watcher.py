"""One watch per host, all at once: each host's task connects (ssh, or this host's socket), follows
its pushes, and on a loss marks it unreachable and reconnects with backoff (1 s doubling to 30 s, on
the injected clock). A slow or dead host only ever holds up its own task.

`FleetThread` runs the watches on an event loop of their own, so they carry on while the operator is
in one host's console (a Textual app of its own) and the fleet is current again on return.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from console.core.clock import Clock
from console.core.errors import LoopctlError
from console.core.paths import resolve_paths
from console.fleet.contexts import HostEntry
from console.fleet.table import CONNECTING, HostStatus, lost, watched
from console.host.transport import SSH_TIMEOUT, Dialer, LocalDialer, SshDialer, Stream, backoff
from console.host.watch import SNAPSHOT, WATCH, snapshot_of

DialerFor = Callable[[HostEntry], Dialer]


def dialer_for(ssh: list[str], control_dir: str | None = None) -> DialerFor:
    """ssh hosts through `ssh` (the command LOOPCTL_SSH names), multiplexed through masters in
    `control_dir` when there is one; local ones through their socket."""

    def dial(entry: HostEntry) -> Dialer:
        if entry.ssh is not None:
            return SshDialer(entry.name, entry.ssh, ssh, control_dir)
        paths = resolve_paths(entry.state_dir, None, os.environ, Path.home())
        return LocalDialer(entry.name, paths.socket)

    return dial


def why(exc: BaseException) -> str:
    if isinstance(exc, LoopctlError):
        return exc.message
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}"
    return f"{type(exc).__name__}: {exc}"  # a far side that answered nonsense: said, and retried


class FleetWatch:
    def __init__(self, entries: list[HostEntry], dial: DialerFor, clock: Clock) -> None:
        self.entries = entries
        self.dial = dial
        self.clock = clock
        self._lock = threading.Lock()
        self._statuses = {e.name: HostStatus(name=e.name, url=e.url, problem=CONNECTING) for e in entries}
        self.version = 0
        self.notify: Callable[[], None] | None = None  # called (on the watches' thread) after each change
        self.problem = ""  # the fleet's own (each host's are in its row): none for watches

    def statuses(self) -> list[HostStatus]:
        """Every host, in the contexts file's order."""
        with self._lock:
            return [self._statuses[e.name] for e in self.entries]

    def _set(self, status: HostStatus) -> None:
        with self._lock:
            self._statuses[status.name] = status
            self.version += 1
        if self.notify is not None:
            self.notify()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            for entry in self.entries:
                group.create_task(self._host(entry), name=f"fleet-{entry.name}")

    async def _host(self, entry: HostEntry) -> None:
        dialer = self.dial(entry)
        attempt = 0
        while True:
            try:
                stream = await dialer.open()
                try:
                    pushed, reason = await self._follow(entry, stream)
                    attempt = 0 if pushed else attempt  # a link that worked starts its backoff afresh
                    problem = (await stream.failure()).message if reason is None else reason
                finally:
                    await stream.close()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # every failure is the host's row, never the fleet's end
                problem = why(exc)
            delay = backoff(attempt)
            attempt += 1
            with self._lock:
                previous = self._statuses[entry.name]
            self._set(lost(previous, problem, self.clock.time() + delay))
            await self.clock.sleep(delay)

    async def _follow(self, entry: HostEntry, stream: Stream) -> tuple[bool, str | None]:
        """Pushes until the stream ends (reason None: ask the stream why) or says something wrong;
        and whether any push arrived."""
        await stream.send(WATCH)
        pushed = False
        try:
            while (answer := await stream.read()) is not None:
                self._set(watched(entry.name, entry.url, snapshot_of(answer), self.clock.time()))
                pushed = True
        except LoopctlError as exc:
            return pushed, exc.message
        return pushed, None


async def poll_once(entries: list[HostEntry], dial: DialerFor, clock: Clock, *,
                    timeout: float = SSH_TIMEOUT) -> list[HostStatus]:
    """Every host's snapshot once, concurrently; a host that fails or takes longer than `timeout` is
    unreachable, with why."""

    async def one(entry: HostEntry) -> HostStatus:
        blank = HostStatus(name=entry.name, url=entry.url)
        try:
            async with asyncio.timeout(timeout):
                stream = await dial(entry).open()
                try:
                    await stream.send(SNAPSHOT)
                    answer = await stream.read()
                    if answer is None:
                        raise await stream.failure()
                    return watched(entry.name, entry.url, snapshot_of(answer), clock.time())
                finally:
                    await stream.close()
        except TimeoutError:
            return lost(blank, f"no answer within {timeout:g} s", None)
        except Exception as exc:
            return lost(blank, why(exc), None)

    return list(await asyncio.gather(*(one(e) for e in entries)))


class Runs(Protocol):
    async def run(self) -> None: ...


class FleetThread:
    """The watches (or the Prometheus poller) on a thread of their own, with their own event loop."""

    def __init__(self, watch: Runs) -> None:
        self.watch = watch
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="loopctl-fleet", daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._ready.wait()

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._task = loop.create_task(self.watch.run())
        self._ready.set()
        # stop() cancels the watch from the console's thread; its end (cancelled or not) ends this thread
        loop.run_until_complete(asyncio.gather(self._task, return_exceptions=True))
        loop.close()

    def stop(self, timeout: float = 10.0) -> None:
        """Cancel every watch: each closes its stream (and ends its ssh) on the way out."""
        if self._loop is not None and self._task is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(timeout)
