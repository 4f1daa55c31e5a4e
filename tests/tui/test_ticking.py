"""The one-second tick at scale (issue 19): a real console over 1,000 loops, 120x40, Loops tab.

The tick writes only the ticking cells (countdowns, ages, running durations) of the rows in view,
never builds the rows again, and redraws only the rows it wrote; the countdowns still read right
every second, in view and as rows scroll into it; sort and selection are untouched by it."""

from __future__ import annotations

import re

from rich.text import Text
from textual.geometry import Region

from console.core.fake_clock import FakeClock
from console.core.records import replace
from console.readmodel.snapshot import EngineView, HostView, LoopView, Snapshot, compose
from console.tui import app as app_module
from console.tui.app import LoopctlApp
from console.tui.format import countdown
from console.tui.rows import RowMemo, loop_rows, matches, run_rows
from console.tui.scenario import NOW, run_id, scenario_snapshot
from console.tui.source import FixedSource
from console.tui.ticking import Ticking
from console.tui.widgets.keyed_table import KeyedTable
from tests.tui.conftest import screen_text

T0 = 1_790_000_000.0
LOOPS = 1000


def loop_at(i: int) -> float:
    return T0 + 5 + (i * 7) % 60  # spread over a minute, as jitter spreads loops on one interval


def big_snapshot() -> Snapshot:
    loops = [LoopView(id=f"loop-{i}", state="active", objective="o", interval_seconds=60.0,
                      run_timeout_seconds=1800.0, next_run_at=loop_at(i), provenance="managed")
             for i in range(LOOPS)]
    return compose(now=T0, host=HostView("bench", "/var/lib/loopctl", "/etc/loopctl.toml", True, LOOPS),
                   engine=EngineView(running=True, source="owner", pid=4242, started_at=T0 - 3600),
                   things=[], events=[], sidecars=[], loops=loops, runs=[])


def shown_next(table: KeyedTable, index: int) -> tuple[str, str]:
    """(loop id, its `next run` cell as the table holds it) of the row at `index`."""
    row = table.get_row_at(index)
    return row[0].plain, row[3].plain


def expected_next(loop_id: str, now: float) -> str:
    return countdown(loop_at(int(loop_id.removeprefix("loop-"))), now)


async def loops_console() -> tuple[LoopctlApp, FakeClock]:
    clock = FakeClock(start=T0)
    app = LoopctlApp(FixedSource(big_snapshot()), paths=None, clock=clock)
    return app, clock


def test_ticking_cells_read_the_time_they_are_drawn_at():
    assert Ticking("countdown", 100.0).text(40.0) == "in 1m00s" and Ticking("countdown", 100.0).text(101) == "now"
    assert Ticking("ago", 100.0).text(165.0) == "1m05s ago"
    assert Ticking("elapsed", 100.0).text(130.0) == "30s"
    # As numbers, for sorting: two cells of one kind keep their order as time passes.
    early, late = Ticking("countdown", 50.0), Ticking("countdown", 65.0)
    assert all(early.seconds(now) < late.seconds(now) for now in (0.0, 55.0, 70.0))


def test_rows_carry_absolute_times_so_a_row_equals_itself_a_second_later():
    snap = scenario_snapshot()
    assert loop_rows(snap, NOW) == loop_rows(snap, NOW + 1)
    assert run_rows(snap, NOW) == run_rows(snap, NOW + 1)
    running = dict(run_rows(snap, NOW))[f"run:{run_id(7)}"]
    assert running[6] == Ticking("elapsed", NOW - 95)
    # The filter never matches a countdown's words: the row would leave the table a second later.
    assert not matches(("loop:a", ("a", Ticking("countdown", NOW + 5))), "in 5s")
    assert matches(("loop:a", ("a", Text("active"))), "act")


async def test_a_tick_writes_only_the_ticking_cells_of_the_rows_in_view_and_redraws_only_those_rows():
    app, clock = await loops_console()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("3")
        await pilot.pause()
        table = app.query_one("#table-loops", KeyedTable)
        assert table.row_count == LOOPS
        in_view = table.rows_in_view()
        assert 20 < len(in_view) < 40  # the table's share of a 40-line screen

        rebuilt: list[int] = []
        real_rows = app_module.TABLES["loops"].rows

        def counting_rows(snap, now):
            rebuilt.append(1)
            return real_rows(snap, now)

        refreshed: list[Region | None] = []
        real_refresh = table.refresh

        def spying_refresh(*regions, **kwargs):
            refreshed.extend(regions or [None])
            return real_refresh(*regions, **kwargs)

        app_module.TABLES["loops"] = replace(app_module.TABLES["loops"], rows=counting_rows)
        table.refresh = spying_refresh  # type: ignore[method-assign]
        try:
            for second in range(1, 4):
                clock.advance(1.0)
                written = table.cells_written
                changed = table.tick(clock.time())
                await pilot.pause()
                # Every row in view has a countdown; those whose words changed this second were written.
                assert 0 < changed <= len(in_view) and table.cells_written - written == changed
                for index in in_view:
                    loop_id, cell = shown_next(table, index)
                    assert cell == expected_next(loop_id, clock.time()), (second, loop_id)
                # A row out of view is not touched: it still says what it said when drawn.
                far_id, far_cell = shown_next(table, LOOPS - 1)
                assert far_cell == expected_next(far_id, T0)
        finally:
            app_module.TABLES["loops"] = replace(app_module.TABLES["loops"], rows=real_rows)
        assert not rebuilt  # no row was built again, no snapshot walked
        assert refreshed and all(r is not None and r.height == 1 for r in refreshed)  # rows, never the table
        text = screen_text(app)
        line = next(line for line in text.splitlines() if re.search(r"\bloop-0\b", line))
        assert expected_next("loop-0", clock.time()) in line  # on screen, not only in the table's data


async def test_rows_scrolled_into_view_read_the_time_now_and_the_sort_and_selection_hold():
    app, clock = await loops_console()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("3")
        await pilot.pause()
        table = app.query_one("#table-loops", KeyedTable)
        for _second in range(5):  # five ticks through the timer's own path: the app's tick
            clock.advance(1.0)
            app._tick()
        await pilot.pause()
        await pilot.press("G")  # to the last row: those rows were drawn five seconds ago
        await pilot.pause()
        assert table.cursor_row == LOOPS - 1
        for index in table.rows_in_view():
            loop_id, cell = shown_next(table, index)
            assert cell == expected_next(loop_id, clock.time())

        await pilot.press("s", "s", "s", "s")  # sorted by `next run`: soonest first, by time, not by words
        assert table.sort_text == "sorted by next run ↑"
        order = [table.get_row_at(i)[0].plain for i in range(LOOPS)]
        times = [loop_at(int(k.removeprefix("loop-"))) for k in order]
        assert times == sorted(times)
        table.move_cursor(row=10)
        selected = table.selected_key
        for _second in range(3):
            clock.advance(1.0)
            app._tick()
            await pilot.pause()
        assert [table.get_row_at(i)[0].plain for i in range(LOOPS)] == order  # the ticks did not re-sort
        assert table.selected_key == selected and table.cursor_row == 10


async def test_a_push_writes_only_the_cells_that_changed():
    app, clock = await loops_console()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("3")
        await pilot.pause()
        table = app.query_one("#table-loops", KeyedTable)
        snap = app.snapshot
        assert snap is not None
        loops = list(snap.loops)
        loops[3] = replace(loops[3], state="paused", reason="paused by the control plane")
        clock.advance(2.0)
        written = table.cells_written
        app.show_snapshot(replace(snap, loops=loops))
        await pilot.pause()
        # The state and the reason of one loop, and the countdowns in view that moved two seconds.
        ticked = sum(1 for i in table.rows_in_view() if expected_next(shown_next(table, i)[0], T0 + 2)
                     != expected_next(shown_next(table, i)[0], T0))
        assert table.cells_written - written == 2 + ticked
        assert table.get_row_at(table.get_row_index("loop:loop-3"))[1].plain == "paused"


async def test_a_running_runs_duration_ticks_on_the_runs_tab(tmp_path):
    from tests.tui.conftest import scenario_app

    app, _source = scenario_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("4")
        await pilot.pause()
        table = app.query_one("#table-runs", KeyedTable)
        index = table.get_row_index(f"run:{run_id(7)}")
        assert table.get_row_at(index)[6].plain == "1m35s"
        app.clock.advance(30.0)  # type: ignore[attr-defined]
        app._tick()
        await pilot.pause()
        assert table.get_row_at(index)[6].plain == "2m05s"


def test_a_push_builds_again_only_the_rows_of_records_that_changed():
    snap = big_snapshot()
    memo = RowMemo()
    first = loop_rows(snap, T0, memo)
    loops = list(snap.loops)
    loops[3] = replace(loops[3], state="paused", reason="paused by the control plane")
    second = loop_rows(replace(snap, loops=loops[:-1]), T0 + 1, memo)  # and the last loop is gone
    assert sum(a is b for a, b in zip(first[:-1], second, strict=True)) == LOOPS - 2  # the very tuples: skipped
    assert second[3][1][1].plain == "paused"
    third = loop_rows(snap, T0 + 2, memo)  # the gone loop back: built anew, not a stale row
    assert third[-1] == first[-1] and third[-1] is not first[-1]
