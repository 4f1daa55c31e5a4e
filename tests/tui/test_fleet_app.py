"""The fleet view's redraws: a burst of pushes from the watches' thread is one redraw, never a lost one."""

from __future__ import annotations

import asyncio
import threading

from console.core.fake_clock import FakeClock
from console.fleet.table import Counts, HostStatus
from console.readmodel.tray import Level
from console.tui.fleet_app import FleetApp
from console.tui.widgets.keyed_table import KeyedTable

NOW = 1_767_225_600.0


class Burst:
    """A feed whose hosts change from another thread, as the fleet's watches do."""

    def __init__(self) -> None:
        self.notify = None
        self.problem = ""
        self.ready = 0
        self.lock = threading.Lock()

    def statuses(self) -> list[HostStatus]:
        with self.lock:
            ready = self.ready
        return [HostStatus(name="edge-1", url="local", level=Level.OK, pushed_at=NOW,
                           counts=Counts(sidecars_ready=ready, sidecars_total=200))]

    def push(self, count: int) -> None:
        for _ in range(count):
            with self.lock:
                self.ready += 1
            assert self.notify is not None
            self.notify()


async def test_a_burst_of_pushes_is_drawn_once_and_its_last_change_shows():
    feed = Burst()
    app = FleetApp(feed, title="fleet · 1 host", clock=FakeClock(start=NOW))
    redraws = 0
    async with app.run_test(size=(100, 10)) as pilot:
        table = app.query_one(KeyedTable)
        while table.row_count < 1:
            await pilot.pause(0.02)
        draw = app._refresh

        def counted() -> None:
            nonlocal redraws
            redraws += 1
            draw()

        app._refresh = counted  # type: ignore[method-assign]
        pusher = threading.Thread(target=feed.push, args=(200,))
        pusher.start()
        await asyncio.to_thread(pusher.join)
        async with asyncio.timeout(10):
            while "200/200" not in str(table.get_row_at(0)):
                await pilot.pause(0.02)
    assert 1 <= redraws < 200
