"""The detail pane: the selected row in full, or why there is none; out of the way on Config."""

from __future__ import annotations

from console.core.records import replace
from console.readmodel.tray import Level, Reason, roll_up
from console.tui.widgets.detail_pane import DetailPane
from console.tui.widgets.keyed_table import KeyedTable
from tests.tui.conftest import scenario_app, screen_text, select, wait_snapshot, write_handoff


async def test_a_host_with_nothing_to_report_says_so_instead_of_asking_for_a_selection(tmp_path):
    app, source = scenario_app(tmp_path)
    source.snapshot = replace(source.snapshot, tray=roll_up([]))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_snapshot(pilot, app)
        shown = screen_text(app)
        assert "Nothing needs attention" in shown and "select a row" not in shown


async def test_a_filter_that_hides_every_row_says_how_to_clear_it(tmp_path):
    app, _ = scenario_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_snapshot(pilot, app)
        await pilot.press("4", "slash", *"zzz")
        await pilot.pause()
        assert "No rows here match the filter 'zzz': esc clears it." in screen_text(app)
        await pilot.press("escape")
        await pilot.pause()
        assert "No rows here match" not in screen_text(app)


async def test_the_config_tab_has_no_detail_pane_and_the_others_get_it_back(tmp_path):
    app, _ = scenario_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_snapshot(pilot, app)
        pane = app.query_one(DetailPane)
        await pilot.press("5")
        await pilot.pause()
        assert not pane.display and "select a row" not in screen_text(app)
        await pilot.press("2")
        await pilot.pause()
        assert pane.display and "agent-monitor" in screen_text(app)


async def test_a_link_in_a_handoff_shows_where_it_points(tmp_path):
    app, source = scenario_app(tmp_path, state_dir=str(tmp_path / "state"))
    run = source.snapshot.runs[0]
    write_handoff(tmp_path / "state", run.id, "Next: apply [the reviewed fix](https://evil.example/payload) first.\n")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_snapshot(pilot, app)
        await select(pilot, app, "4", f"run:{run.id}")
        await pilot.press("enter")
        await pilot.pause()
        assert "the reviewed fix (https://evil.example/payload)" in screen_text(app)


async def test_two_reasons_about_one_thing_are_two_overview_rows_each_with_its_detail_and_action(tmp_path):
    """A remote config rolled back while its polls fail: two reasons, one subject. Each is its own row
    (keyed by subject and code), shows what clears it, and actions still act on the subject."""
    app, source = scenario_app(tmp_path)
    snap = source.snapshot
    extra = [Reason(Level.DEGRADED, "remote_config_poll_failed", "config poll failed (http_error): 502",
                    "check the control plane", "remote_config:host"),
             Reason(Level.DEGRADED, "loop_finalized", "loop triage finalized: heartbeat unauthorized",
                    "re-create it on the control plane", "loop:triage")]
    source.snapshot = replace(snap, tray=roll_up([*snap.tray.reasons, *extra]))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_snapshot(pilot, app)
        table = app.query_one("#table-overview", KeyedTable)
        assert table.row_count == len(source.snapshot.tray.reasons)
        await select(pilot, app, "1", "remote_config:host#remote_config_poll_failed")
        shown = screen_text(app)
        assert "config poll failed (http_error): 502" in shown and "check the control plane" in shown
        assert "no longer in the snapshot" not in shown
        await select(pilot, app, "1", "loop:triage#loop_escalated")
        shown = screen_text(app)
        assert "clears it" in shown and "loopctl retry loop:triage" in shown and "provenance" in shown
        assert app.selected_key() == "loop:triage" and app.refusal("retry") is None  # acts on the loop
