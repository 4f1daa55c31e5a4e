"""The engine facade: the one object the faces talk to (snapshot, changes, actions).

Capabilities (sidecars, runs, loops, remote config) plug in here; everything they change goes
through `Store.transition`, and every transition bumps the change feed that watchers await.
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from console import __version__
from console.engine.actions import ActionRegistry
from console.engine.changes import ChangeFeed
from console.engine.clock import Clock
from console.engine.config import LoadedConfig
from console.engine.loops import Loops
from console.engine.paths import Paths
from console.engine.sidecars import Supervisor
from console.engine.snapshot import (
    ENGINE_KIND,
    ENGINE_NAME,
    SNAPSHOT_EVENTS,
    EngineView,
    Snapshot,
    compose,
    events_view,
    host_view,
    things_view,
)
from console.engine.store import Store

if TYPE_CHECKING:
    from console.controlplane.link import HostLink


class Engine:
    def __init__(self, *, paths: Paths, loaded: LoadedConfig, store: Store, clock: Clock,
                 read_only: bool = False, pid: int | None = None) -> None:
        self.paths = paths
        self.loaded = loaded
        self.store = store
        self.clock = clock
        self.read_only = read_only
        self.pid = pid if pid is not None else os.getpid()
        self.started_at: float | None = None
        self.changes = ChangeFeed()
        self.actions = ActionRegistry()
        self._cached: tuple[int, Snapshot] | None = None
        store.bus.subscribe(lambda _t: self.changes.bump())
        self.supervisor = Supervisor(loaded.config.sidecar, directory=paths.state_dir / "sidecars", store=store,
                                     clock=clock, on_change=self.changes.bump)
        self.actions.register("retry", "sidecar", self.supervisor.retry)
        self.actions.register("reclaim", "sidecar", self.supervisor.reclaim)
        self.loops = Loops(loaded.config.loop, store=store, clock=clock, runs_root=paths.state_dir / "runs",
                           on_change=self.changes.bump)
        self.actions.register("cancel", "run", self.loops.cancel)
        self.actions.register("retry", "run", self.loops.retry)
        self.actions.register("retry", "loop", self.loops.retry)
        self.link: HostLink | None = None
        if loaded.config.control_plane is not None:
            # Imported only for a joined host: the control-plane client brings httpx and cryptography.
            from console.controlplane.link import HostLink  # noqa: PLC0415

            self.link = HostLink(loaded.config.control_plane, state_dir=paths.state_dir, store=store, clock=clock,
                                 on_change=self.changes.bump, loops=self.loops, loop_configs=loaded.config.loop)

    async def start(self) -> None:
        previous = self.store.thing(ENGINE_KIND, ENGINE_NAME)
        if previous is not None and previous.state == "running":
            # The last owner never recorded its stop: it was killed or crashed.
            self.store.transition(
                ENGINE_KIND, ENGINE_NAME, "crashed",
                f"engine pid {previous.detail.get('pid', '?')} ended without stopping cleanly",
                {"pid": previous.detail.get("pid")},
            )
        self.started_at = self.clock.time()
        self.store.transition(ENGINE_KIND, ENGINE_NAME, "running", f"engine started (pid {self.pid})",
                              {"pid": self.pid, "version": __version__})
        await self.supervisor.start()
        await self.loops.reap_at_boot()
        if self.link is not None:
            await self.link.start()  # boot recovery against the control plane before any loop schedules
        self.loops.start_runners()

    async def stop(self) -> None:
        if self.link is not None:
            await self.link.stop()
        await self.loops.stop()
        await self.supervisor.stop()
        self.store.transition(ENGINE_KIND, ENGINE_NAME, "stopped", f"engine stopped (pid {self.pid})",
                              {"pid": self.pid})

    def snapshot(self) -> Snapshot:
        version = self.changes.version
        if self._cached is not None and self._cached[0] == version:
            return self._cached[1]
        loops, runs = self.loops.views()
        if self.link is not None and self.link.heartbeats is not None:
            last = self.link.heartbeats.last
            loops = [replace(lp, last_heartbeat=last[lp.id][0], last_heartbeat_at=last[lp.id][1]) if lp.id in last
                     else lp for lp in loops]
        snap = compose(
            now=self.clock.time(),
            host=host_view(self.paths, self.loaded),
            engine=EngineView(running=True, source="owner", pid=self.pid, started_at=self.started_at,
                              version=__version__, read_only=self.read_only),
            things=things_view(self.store.things()),
            events=events_view(self.store.recent_events(SNAPSHOT_EVENTS)),
            sidecars=self.supervisor.views(),
            loops=loops,
            runs=runs,
            control_plane=self.link.view() if self.link is not None else None,
        )
        self._cached = (version, snap)
        return snap

    async def act(self, verb: object, target: object) -> dict[str, Any]:
        return await self.actions.dispatch(verb, target, read_only=self.read_only)
