"""The loopctl console. It owns the host in-process when no engine runs, else observes the owner."""

from __future__ import annotations

import asyncio
from typing import ClassVar

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import Footer, Static

from console.engine.clock import SystemClock
from console.engine.config import LoadedConfig
from console.engine.lease import Lease
from console.engine.observe import offline_snapshot, wait_until_released
from console.engine.owner import Owner
from console.engine.paths import Paths, ensure_state_dir
from console.engine.snapshot import Snapshot
from console.tui.feed import follow_engine, follow_socket
from console.tui.widgets.events import EventsTable
from console.tui.widgets.overview import OverviewPane
from console.tui.widgets.tray_bar import TrayBar


class LoopctlApp(App[int]):
    TITLE = "loopctl"
    CSS = """
    #events-title { padding: 0 2; text-style: bold; height: 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("q", "quit", "Quit")]

    def __init__(self, paths: Paths, loaded: LoadedConfig, *, owner: Owner | None,
                 read_only: bool = False) -> None:
        super().__init__()
        self.paths = paths
        self.loaded = loaded
        self.owner = owner
        self.read_only = read_only
        self.role = "owner" if owner is not None else "observer"
        self.snapshot: Snapshot | None = None

    def compose(self) -> ComposeResult:
        yield TrayBar(id="tray")
        with Vertical():
            yield OverviewPane(id="overview")
            yield Static("Events", id="events-title")
            yield EventsTable(id="events")
        yield Footer()

    async def on_mount(self) -> None:
        self.run_worker(self._feed(), name="feed", exclusive=True)

    async def _feed(self) -> None:
        if self.owner is not None:
            engine = await self.owner.start()
            await follow_engine(engine, self.show_snapshot)
            return
        await follow_socket(self.paths.socket, self.show_snapshot)
        # The owner went away: once it has let go of the lease, show what is on disk and say so.
        await asyncio.to_thread(wait_until_released, self.paths.lock)
        self.role = "observer (owner gone)"
        self.show_snapshot(offline_snapshot(self.paths, self.loaded, SystemClock()))
        self.notify("The engine that owned this host has stopped. Restart loopctl to take over.",
                    severity="warning", timeout=30)

    def show_snapshot(self, snap: Snapshot) -> None:
        self.snapshot = snap
        self.query_one(TrayBar).show(snap, self.role)
        self.query_one(OverviewPane).show(snap)
        self.query_one(EventsTable).show(snap.events)

    async def on_unmount(self) -> None:
        if self.owner is not None:
            await self.owner.stop()


def run_console(paths: Paths, loaded: LoadedConfig, *, read_only: bool = False) -> int:
    ensure_state_dir(paths)
    lease = Lease.try_acquire(paths.lock)
    owner = None
    if lease is not None:
        owner = Owner(paths, loaded, SystemClock(), lease, read_only=read_only)
        try:
            owner.prepare()  # a corrupt database is one line on the terminal, not a broken screen
        except BaseException:
            asyncio.run(owner.stop())
            raise
    app = LoopctlApp(paths, loaded, owner=owner, read_only=read_only)
    app.run()
    return app.return_code or 0
