"""Owning the host: with the lease held, open the store, start the engine, serve the socket.

Shared by the daemon (`loopctl run`) and the console, so both own the host the same way.
"""

from __future__ import annotations

import os
from types import TracebackType

from console import __version__
from console.core.clock import Clock
from console.core.config import LoadedConfig
from console.core.paths import Paths
from console.core.store import Store
from console.host.engine import Engine
from console.host.lease import Holder, Lease
from console.host.server import SocketServer


class Owner:
    def __init__(self, paths: Paths, loaded: LoadedConfig, clock: Clock, lease: Lease,
                 *, read_only: bool = False) -> None:
        self.paths = paths
        self.loaded = loaded
        self.clock = clock
        self.lease = lease
        self.read_only = read_only
        self.store: Store | None = None
        self.engine: Engine | None = None
        self.server: SocketServer | None = None

    def prepare(self) -> None:
        """The synchronous part (holder record, database open and migration), so a console can
        surface a corrupt database as one line before any screen opens."""
        if self.store is None:
            self.lease.record_holder(Holder(os.getpid(), os.getuid(), self.clock.time(), __version__,
                                            str(self.loaded.path), self.loaded.present))
            self.store = Store.open(self.paths.database, self.clock)

    async def start(self) -> Engine:
        try:
            self.prepare()
            assert self.store is not None
            self.engine = Engine(paths=self.paths, loaded=self.loaded, store=self.store, clock=self.clock,
                                 read_only=self.read_only)
            await self.engine.start()
            host = self.loaded.config.host
            self.server = SocketServer(self.paths.socket, self.engine, max_connections=host.socket_max_connections,
                                       idle_seconds=host.socket_idle_seconds)
            await self.server.start()
        except BaseException:
            await self.stop()
            raise
        return self.engine

    async def stop(self) -> None:
        """Record the stop first (watchers get it pushed), then stop serving, then hand over the lease."""
        try:
            if self.engine is not None:
                await self.engine.stop()
                self.engine = None
            if self.server is not None:
                await self.server.close()
                self.server = None
        finally:
            if self.store is not None:
                self.store.close()
                self.store = None
            self.lease.release()

    async def __aenter__(self) -> Engine:
        return await self.start()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()
