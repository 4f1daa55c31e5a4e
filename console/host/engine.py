"""The engine facade: the one object the faces talk to (snapshot, changes, actions).

Capabilities (sidecars, runs, loops, remote config) plug in here; everything they change goes
through `Store.transition`, and every transition bumps the change feed that watchers await.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import msgspec

from console import __version__
from console.core import descriptors
from console.core.actions import ActionRegistry
from console.core.changes import ChangeFeed
from console.core.child_watch import wait_for_children_by_pidfd
from console.core.clock import Clock
from console.core.config import HostConfig, LoadedConfig
from console.core.crashpoints import CrashPoints
from console.core.errors import ConfigError
from console.core.holds import Holds
from console.core.paths import Paths
from console.core.plurals import counted
from console.core.records import replace
from console.core.spawn_gate import SpawnGate
from console.core.store import Store
from console.core.tasks import Tasks
from console.core.testing_knobs import retention_period
from console.readmodel.snapshot import (
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
from console.readmodel.tray import Reason, descriptor_reasons, reload_refused_reason, task_reasons
from console.remote.plugin_error import PluginError
from console.remote.plugins import Plugins, is_installed, missing_programs, resolve
from console.runs.retention import CATCH_UP_SECONDS as RETENTION_CATCH_UP
from console.runs.retention import PERIOD_SECONDS as RETENTION_PERIOD
from console.runs.retention import RetentionPolicy, prune
from console.runs.scheduler import Loops
from console.sidecars.supervisor import Supervisor

if TYPE_CHECKING:
    from console.controlplane.artifacts import ArtifactFetcher
    from console.controlplane.link import HostLink
    from console.core.transitions import Transition
    from console.remote.apply import RemoteConfig

BUILD_SPACING_FACTOR = 3.0  # builds take at most about a quarter of the engine's time under churn
MAX_BUILD_SPACING = 1.0  # seconds: the oldest a socket answer is while the state keeps moving
STEADY_SAMPLES = 3  # build_cpu: the least of this many measures (a build makes two: compose, then encode)

log = logging.getLogger("loopctl.engine")


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
        self._encoded: tuple[Snapshot, msgspec.Raw] | None = None
        self._pressured: tuple[Snapshot, tuple[Reason, ...], Snapshot] | None = None
        self._encoded_version: tuple[int, msgspec.Raw] | None = None  # what the socket answers
        self._built_at = 0.0  # time.monotonic(): build spacing is about CPU spent, not the engine's clock
        self._build_cost = 0.0
        self._build_cpus: tuple[float, ...] = ()  # the last STEADY_SAMPLES CPU measures, replaced whole
        self._build_now = False  # set by an action: its answer is followed by a snapshot that shows it
        # The state's version when the last action ended: a published version older than it is from
        # before that action (read from the socket's thread: a plain int, only ever raised).
        self.acted_version = 0
        store.bus.subscribe(lambda _t: self.changes.bump())
        self.reload_exit = False  # the daemon sets it: a change of code exits 75 instead of restarting in process
        self.reload_refused: str | None = None  # why the last SIGHUP kept the running config, until one applies
        self.reload_requested = asyncio.Event()
        self.crash = CrashPoints(paths.state_dir)
        self.tasks = Tasks(clock, self.changes.bump)  # the engine's own long-lived tasks, supervised
        # One reconfigure at a time: SIGHUP, a remote apply, probation expiry, a plugin reconcile. Taken
        # after the remote config's own lock (an apply holds that one while it restarts), never before it.
        self.reconfiguring = asyncio.Lock()
        self._fetcher: ArtifactFetcher | None = None
        self.plugins = Plugins(paths.state_dir / "plugins", store=store, clock=clock, fetch=self._fetch)
        self.remote: RemoteConfig | None = None
        self.config: HostConfig = resolve(loaded.config, self.plugins.root)
        if loaded.config.control_plane is not None:
            from console.remote.apply import RemoteConfig  # noqa: PLC0415

            self.remote = RemoteConfig(paths.state_dir, loaded.config, plugins=self.plugins, store=store, clock=clock,
                                       crash=self.crash, on_change=self.changes.bump)
            self.config = self.remote.boot()  # before any component exists: expiry, orphans, torn slots
            self.remote.restart = self.reconfigure
        self.holds = Holds(paths.state_dir / "holds.json")  # one for both: each write is the whole file
        self.gate = SpawnGate()  # one for the sidecars and the runs: a few spawns in flight, whoever's
        self.supervisor = Supervisor(self.config.sidecar, directory=paths.state_dir / "sidecars", store=store,
                                     clock=clock, on_change=self.changes.bump, crash=self.crash, holds=self.holds,
                                     gate=self.gate, tasks=self.tasks)
        self.actions.register("retry", "sidecar", self.supervisor.retry)
        self.actions.register("reclaim", "sidecar", self.supervisor.reclaim)
        self.actions.register("stop", "sidecar", self.supervisor.stop_one)
        self.actions.register("start", "sidecar", self.supervisor.start_one)
        self.actions.register("restart", "sidecar", self.supervisor.restart_one)
        self.loops = Loops(self.config.loop, store=store, clock=clock, runs_root=paths.state_dir / "runs",
                           on_change=self.changes.bump, crash=self.crash, tasks=self.tasks, holds=self.holds,
                           gate=self.gate)
        self.actions.register("cancel", "run", self.loops.cancel)
        self.actions.register("trigger", "loop", self.loops.trigger)
        self.actions.register("pause", "loop", self.loops.pause)
        self.actions.register("resume", "loop", self.loops.resume)
        self.actions.register("retry", "run", self.loops.retry)
        self.actions.register("retry", "loop", self.loops.retry)
        self.link: HostLink | None = None
        if loaded.config.control_plane is not None:
            # Imported only for a joined host: the control-plane client brings httpx and cryptography.
            from console.controlplane.link import HostLink  # noqa: PLC0415

            self.link = HostLink(loaded.config.control_plane, state_dir=paths.state_dir, store=store, clock=clock,
                                 on_change=self.changes.bump, loops=self.loops, loop_configs=self.config.loop,
                                 remote=self.remote, tasks=self.tasks)
        # Plugins reconcile when the control plane first sees the host online, whichever path records it.
        store.bus.subscribe(self._on_online, kind="host", from_="provisioning", to="online")
        self._background: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        wait_for_children_by_pidfd()  # before the first spawn: no thread per sidecar or run
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
        if self.remote is not None:
            await self.remote.start()
        if any(not is_installed(self.plugins.root, p) for p in self.config.plugin):
            await self.reconcile_plugins()  # what the config declares is there before what uses it starts
        await self.supervisor.start()
        await self.loops.reap_at_boot()
        if self.link is not None:
            await self.link.start()  # boot recovery against the control plane before any loop schedules
        self.loops.start_runners()
        self.tasks.spawn("retention", self._retention)

    async def _retention(self) -> None:
        """The ledger, run directories and event log stay within the [host] policy, a pass a minute."""
        while True:
            host = self.loaded.config.host
            policy = RetentionPolicy(host.keep_runs_per_loop, host.keep_runs_days, host.keep_events)
            result = await prune(self.store, self.paths.state_dir / "runs", policy, self.clock.time())
            if result.runs or result.events:
                log.info("retention: %d runs and %d events pruned", result.runs, result.events)
            await self.clock.sleep(RETENTION_CATCH_UP if result.more else retention_period(RETENTION_PERIOD))

    async def stop(self) -> None:
        """Loops (their runs ended), then sidecars, then the control-plane link and the remote config:
        each on its own, so one that fails is logged and never leaves the others running."""
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        steps: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            ("loops", self.loops.stop), ("sidecars", self.supervisor.stop)]
        if self.link is not None:
            steps.append(("control-plane link", self.link.stop))
        if self.remote is not None:
            steps.append(("remote config", self.remote.stop))
        if self._fetcher is not None:
            steps.append(("artifact fetcher", self._fetcher.aclose))
        steps.append(("engine tasks", self.tasks.stop))  # what is left of the supervised tasks (retention)
        for what, step in steps:
            try:
                await step()
            except Exception:  # the next component still stops
                log.exception("engine stop: stopping the %s failed; stopping the rest", what)
        self.store.transition(ENGINE_KIND, ENGINE_NAME, "stopped", f"engine stopped (pid {self.pid})",
                              {"pid": self.pid})

    def snapshot(self) -> Snapshot:
        return self._with_pressure(self._snapshot())

    def _with_pressure(self, snap: Snapshot) -> Snapshot:
        held, limit = descriptors.usage()  # not cached: it changes without a transition
        if not descriptors.under_pressure(held, limit):
            return snap
        # Under pressure (a flood of clients) is when one encode per version matters most: the same
        # reasons on the same version give the same snapshot object, so snapshot_json's cache holds.
        reasons = tuple(descriptor_reasons(held, limit))
        if self._pressured is None or self._pressured[0] is not snap or self._pressured[1] != reasons:
            self._pressured = (snap, reasons, snap.with_reasons(*reasons))
        return self._pressured[2]

    def _snapshot(self) -> Snapshot:
        version = self.changes.version
        if self._cached is not None and self._cached[0] == version:
            return self._cached[1]
        started, started_cpu = time.monotonic(), time.thread_time()
        things = self.store.things()  # read once: the loops' views and the things' view both need them
        loops, runs = self.loops.views(things)
        cp = self.link.view() if self.link is not None else None
        beats = self.store.heartbeats() if self.link is not None else {}  # each loop's last, from the store
        loops = [replace(lp, last_heartbeat=beats[lp.id].outcome, last_heartbeat_at=beats[lp.id].at,
                         last_heartbeat_reason=f"{beats[lp.id].verdict}: {beats[lp.id].reason}")
                 if lp.id in beats else lp for lp in loops]
        snap = compose(
            now=self.clock.time(),
            host=host_view(self.paths, replace(self.loaded, config=self.config)),
            engine=self.engine_view(),
            things=things_view(things),  # compose leaves out what its typed sections carry
            events=events_view(self.store.recent_events(SNAPSHOT_EVENTS)),
            sidecars=self.supervisor.views(),
            loops=loops,
            runs=runs,
            control_plane=cp,
            remote_config=self.remote.view(cp.status if cp else "") if self.remote else None,
        )
        if self.reload_refused is not None:
            snap = snap.with_reasons(reload_refused_reason(self.reload_refused))
        if self.tasks.trouble:
            snap = snap.with_reasons(*task_reasons(self.tasks.troubles()))
        self._cached = (version, snap)
        self._built(started, started_cpu)  # what the encode adds is counted by encoded_snapshot
        return snap

    def engine_view(self) -> EngineView:
        return EngineView(running=True, source="owner", pid=self.pid, started_at=self.started_at,
                          version=__version__, read_only=self.read_only)

    def snapshot_json(self) -> msgspec.Raw:
        """The snapshot encoded once per version: every request and every watcher of that version gets
        these same bytes (at 1,000 loops an encode is most of what a request costs)."""
        return self.encoded_snapshot()[1]

    def encoded_snapshot(self, *, now: bool = False) -> tuple[int, msgspec.Raw]:
        """(version, bytes): the latest encoded version, built anew only when the state moved on and
        the last build is at least `build_spacing()` old (or an action asked for it, or `now`: the
        socket's publisher keeps the spacing itself). While 1,000 loops start or fire, the version
        moves every few milliseconds and a build costs tens of them: builds take at most about a
        quarter of the engine's time."""
        version = self.changes.version
        built = self._encoded_version
        if built is not None and built[0] == version:
            return built
        started, started_cpu = time.monotonic(), time.thread_time()
        if built is not None and not (now or self._build_now) and started - self._built_at < self.build_spacing():
            # Too soon for another build: the newest one made (by the owner's console, say) is encoded.
            if self._cached is None or self._cached[0] == built[0]:
                return built
            version, snap = self._cached[0], self._with_pressure(self._cached[1])
        else:
            snap = self.snapshot()
        if self._encoded is None or self._encoded[0] is not snap:
            self._encoded = (snap, msgspec.Raw(snap.to_json()))
            self._built(started, started_cpu)
        self._build_now = False
        self._encoded_version = (version, self._encoded[1])
        return self._encoded_version

    def built_snapshot(self) -> Snapshot:
        """The snapshot the latest encoding holds."""
        assert self._encoded is not None, "encoded_snapshot() first"
        return self._encoded[0]

    def _built(self, started: float, started_cpu: float) -> None:
        self._built_at = time.monotonic()
        self._build_cost = self._built_at - started
        self._build_cpus = (*self._build_cpus[1 - STEADY_SAMPLES:], time.thread_time() - started_cpu)

    def build_spacing(self) -> float:
        """The least time between two builds while the state keeps moving: three times the last one's
        cost (a small host's builds are a millisecond apart; 1,000 loops' about 0.1 s), at most 1 s."""
        return min(BUILD_SPACING_FACTOR * self._build_cost, MAX_BUILD_SPACING)

    @property
    def build_cpu(self) -> float:
        """What builds steadily cost in CPU (read from the socket's thread: a tuple swapped whole): the
        least of the last STEADY_SAMPLES measures, 0 until there are as many. CPU, not wall time: a
        loaded machine stretches a small host's millisecond build, not its CPU. One costly build (the
        cold first one, a collection) is no proof of a busy host; 1,000 loops' builds all are."""
        costs = self._build_cpus
        return min(costs) if len(costs) == STEADY_SAMPLES else 0.0

    def build_due_in(self) -> float:
        """Seconds until a build of a newer version may start (0: now)."""
        if self._build_now:
            return 0.0
        return max(0.0, self._built_at + self.build_spacing() - time.monotonic())

    def refuse_reload(self, problem: str) -> None:
        """A SIGHUP whose config could not run: said in the snapshot until a later reload applies."""
        self.reload_refused = problem
        self.changes.bump()

    async def act(self, verb: object, target: object) -> dict[str, Any]:
        try:
            return await self.actions.dispatch(verb, target, read_only=self.read_only)
        finally:
            self._build_now = True  # whoever acted reads the outcome next, not a build from before it
            self.acted_version = self.changes.version

    # -- remote config and plugins -------------------------------------------------------------------

    async def reconfigure(self, config: HostConfig, code_changed: bool) -> None:
        """The staged restart after a flip or a rollback: sidecars first (stop what changed, then start
        it anew), then loops, then their heartbeats. Unchanged components keep running. When the
        code on disk changed and this is the daemon, exit 75 instead: the service manager restarts
        it and the boot runs the new slot (its probation continues across the restart)."""
        async with self.reconfiguring:
            if self.remote is not None:  # what the remote config says now, not when this call began waiting
                config = self.remote.effective()
            await self._reconfigure_now(config, code_changed)

    async def _reconfigure_now(self, config: HostConfig, code_changed: bool) -> None:
        if code_changed and self.reload_exit:
            self.crash("during_restart")
            log.info("plugins changed: exiting 75 for a staged restart by the service manager")
            self.reload_requested.set()
            return
        await self.supervisor.reconfigure(config.sidecar, between=lambda: self.crash("during_restart"))
        await self.loops.reconfigure(config.loop)
        if self.link is not None:
            await self.link.reconfigure(config.loop)
        self.config = config
        self.changes.bump()

    async def reload_local(self, loaded: LoadedConfig) -> str:
        """SIGHUP to `loopctl run`: the local config file, read again. Sidecars and loops apply as the
        staged restart (what did not change keeps running); a change only a new boot can apply
        ([host], [control_plane], [[plugin]]) asks the service manager for a restart (exit 75), as
        new plugin code does. While a remote document is active it still decides sidecars and loops.
        Raises ConfigError, with nothing changed, for a config that cannot run here."""
        async with contextlib.AsyncExitStack() as held:
            if self.remote is not None and self.remote.lock is not None:
                await held.enter_async_context(self.remote.lock)  # first, as an apply takes them
            await held.enter_async_context(self.reconfiguring)
            return await self._reload_local(loaded)

    async def _reload_local(self, loaded: LoadedConfig) -> str:
        old, new = self.loaded.config, loaded.config
        if (new.host, new.control_plane, new.plugin) != (old.host, old.control_plane, old.plugin):
            self.reload_requested.set()
            return "[host], [control_plane] or [[plugin]] changed: exiting 75 for a restart"
        if self.remote is not None:
            from console.remote.apply import effective  # noqa: PLC0415

            target = effective(new, self.remote.document, self.plugins.root)
        else:
            target = resolve(new, self.plugins.root)
        problem = missing_programs(target, self.plugins.root)
        if problem:
            raise ConfigError(f"{loaded.path}: {problem}")
        if self.remote is not None:
            self.remote.local = new
        self.loaded = loaded
        if self.reload_refused is not None:
            self.reload_refused = None
            self.changes.bump()
        if (target.sidecar, target.loop) == (self.config.sidecar, self.config.loop):
            return "nothing to change"
        await self._reconfigure_now(target, code_changed=False)
        return f"applied: {counted(len(target.sidecar), 'sidecar')}, {counted(len(target.loop), 'loop')}"

    async def _fetch(self, url: str, destination: Any, cap: int) -> None:
        if self._fetcher is None:
            from console.controlplane.artifacts import ArtifactFetcher  # noqa: PLC0415

            self._fetcher = ArtifactFetcher()
        await self._fetcher(url, destination, cap)

    async def reconcile_plugins(self) -> None:
        try:
            if self.remote is not None:
                await self.remote.reconcile()
            else:
                async with self.reconfiguring:
                    await self.plugins.reconcile(self.config.plugin)
        except PluginError as exc:
            log.warning("plugin reconcile: %s", exc.message)

    def _on_online(self, _transition: Transition) -> None:
        task = asyncio.get_running_loop().create_task(self.reconcile_plugins(), name="plugin-reconcile")
        self._background.add(task)
        task.add_done_callback(self._background.discard)
