"""A push draws only what it changed (issue 19): a real console over 1,000 loops, 120x40, Loops tab.

Loops whose rows are out of view changed: their data is written, nothing on screen is redrawn; the
tray, the detail pane, the hidden Overview counts and Config body are not drawn again. What a push
does change on screen (the selected loop, a new reason) is drawn, once."""

from __future__ import annotations

from textual.geometry import Region
from textual.widgets import Static

from console.core.records import replace
from console.readmodel.tray import Level, Reason, roll_up
from console.tui.format import short_id
from console.tui.widgets.detail_pane import DetailPane
from console.tui.widgets.keyed_table import KeyedTable
from console.tui.widgets.tray_bar import TrayBar
from tests.tui.conftest import screen_text
from tests.tui.test_ticking import LOOPS, loops_console


async def test_a_push_that_changed_only_rows_out_of_view_redraws_nothing():
    app, _clock = await loops_console()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("3")
        await pilot.pause()
        table = app.query_one("#table-loops", KeyedTable)
        pane, tray = app.query_one(DetailPane), app.query_one(TrayBar)
        assert app.selected_key() == "loop:loop-0"
        updated: list[str | None] = []
        real_update = Static.update

        def spying_update(self, *args, **kwargs):
            updated.append(self.id)
            return real_update(self, *args, **kwargs)

        refreshed: list[Region | None] = []
        real_refresh = table.refresh

        def spying_refresh(*regions, **kwargs):
            refreshed.extend(regions or [None])
            return real_refresh(*regions, **kwargs)

        snap = app.snapshot
        assert snap is not None
        far = range(LOOPS - 40, LOOPS - 20)
        assert not set(far) & set(table.rows_in_view())
        loops = list(snap.loops)
        for i in far:
            loops[i] = replace(loops[i], current_run=f"01JD{i:022d}")
        before = screen_text(app)
        draws, tray_draws, written = pane.draws, tray.draws, table.cells_written
        Static.update = spying_update  # type: ignore[method-assign]
        table.refresh = spying_refresh  # type: ignore[method-assign]
        try:
            app.show_snapshot(replace(snap, loops=loops, generated_at=snap.generated_at + 0.5))
            await pilot.pause()
        finally:
            Static.update = real_update  # type: ignore[method-assign]
        assert table.cells_written - written == len(far)  # the data is there, for when they scroll in
        assert not refreshed  # and nothing of the table was drawn again
        assert pane.draws == draws and tray.draws == tray_draws and not updated
        assert screen_text(app) == before
        await pilot.press("G")  # scrolled in, the rows read what the push said
        await pilot.pause()
        assert short_id(f"01JD{LOOPS - 21:022d}") in screen_text(app)


async def test_a_push_draws_the_selected_detail_and_the_tray_once_when_they_change():
    app, _clock = await loops_console()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("3")
        await pilot.pause()
        pane, tray = app.query_one(DetailPane), app.query_one(TrayBar)
        snap = app.snapshot
        assert snap is not None
        loops = list(snap.loops)
        loops[0] = replace(loops[0], current_run="01JDSELECTED00000000000000")
        draws, tray_draws = pane.draws, tray.draws
        app.show_snapshot(replace(snap, loops=loops))
        await pilot.pause()
        assert pane.draws == draws + 1 and tray.draws == tray_draws  # the tray says what it said
        assert "01JDSELECTED" in screen_text(app)
        worse = roll_up([*snap.tray.reasons, Reason(Level.DEGRADED, "loop_transient", "loop:loop-7",
                                                     "loop-7 heartbeat failed", "wait")])
        app.show_snapshot(replace(snap, loops=loops, tray=worse))
        await pilot.pause()
        assert tray.draws == tray_draws + 1 and pane.draws == draws + 1
        assert "DEGRADED" in screen_text(app)


async def test_a_tick_draws_the_detail_again_only_when_its_words_moved():
    app, clock = await loops_console()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("3")
        await pilot.pause()
        pane = app.query_one(DetailPane)
        draws = pane.draws
        app._tick()  # the same second: the same words
        await pilot.pause()
        assert pane.draws == draws
        clock.advance(1.0)  # loop-0's next run, a second nearer
        app._tick()
        await pilot.pause()
        assert pane.draws == draws + 1


async def test_a_push_that_moved_only_the_clocks_words_draws_the_detail_without_a_layout():
    app, clock = await loops_console()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("3")
        await pilot.pause()
        pane = app.query_one(DetailPane)
        snap = app.snapshot
        assert snap is not None
        draws, layouts = pane.draws, pane.layouts
        clock.advance(1.0)  # loop-0's countdown a second nearer; its facts as they were
        app.show_snapshot(replace(snap, generated_at=snap.generated_at + 1))
        await pilot.pause()
        assert pane.draws == draws + 1 and pane.layouts == layouts
        loops = list(snap.loops)
        loops[0] = replace(loops[0], state="paused", reason="paused by the control plane")
        app.show_snapshot(replace(snap, loops=loops))  # its facts changed: the shape may have
        await pilot.pause()
        assert pane.draws == draws + 2 and pane.layouts == layouts + 1
        assert "paused by the control plane" in screen_text(app)
