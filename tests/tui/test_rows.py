"""The tables as plain data: what an empty table says."""

from __future__ import annotations

from console.core.records import replace
from console.tui.detail import sidecar_detail
from console.tui.rows import (
    SELECT_HINT,
    TABLES,
    loop_rows,
    matches,
    placeholder,
    reason_for,
    reason_rows,
    run_rows,
    sidecar_rows,
)
from console.tui.scenario import NOW, run_id, scenario_snapshot
from tests.tui.conftest import field


def test_a_table_with_rows_asks_for_a_selection():
    assert placeholder("runs", 3, "") == SELECT_HINT
    assert placeholder("runs", 3, "triage") == SELECT_HINT


def test_an_empty_table_says_why_and_a_filter_that_hides_everything_says_how_to_clear_it():
    assert placeholder("overview", 0, "").startswith("Nothing needs attention")
    assert placeholder("sidecars", 0, "") == "No sidecars: this host's config declares none."
    assert placeholder("runs", 0, "nope") == "No rows here match the filter 'nope': esc clears it."


def test_every_table_has_its_own_empty_text():
    texts = [spec.empty for spec in TABLES.values()]
    assert all(texts) and len(set(texts)) == len(texts)


def test_a_sidecar_that_gave_up_used_its_restarts_and_no_more():
    snap = scenario_snapshot()  # agent-monitor: 6 failed starts, max 5 restarts; vector-cache: 2, in backoff
    cells = {key: row[4] for key, row in sidecar_rows(snap, NOW)}
    assert cells == {"sidecar:embeddings": "-", "sidecar:agent-monitor": "5/5", "sidecar:vector-cache": "2/5"}
    monitor = next(s for s in snap.sidecars if s.name == "agent-monitor")
    assert field(sidecar_detail(monitor, NOW), "restarts") == "5 of 5"


def test_runs_show_the_short_id_and_the_filter_still_finds_the_whole_one():
    snap = scenario_snapshot()
    rows = run_rows(snap, NOW)
    [(key, cells)] = [row for row in rows if row[0] == f"run:{run_id(6)}"]
    assert cells[0] == run_id(6)[-8:] and len(cells[0]) == 8
    assert len({cells[0] for _key, cells in rows}) == len(rows)  # still tells the runs apart
    assert [row[0] for row in rows if matches(row, run_id(6))] == [key]  # pasted whole, from the detail pane
    assert [row[0] for row in rows if matches(row, run_id(6)[-8:].lower())] == [key]
    refactor = next(cells for key, cells in loop_rows(snap, NOW) if key == "loop:refactor")
    assert refactor[2] == run_id(7)[-8:]  # its current run


def test_every_table_keys_its_rows_uniquely_even_with_several_reasons_about_one_thing():

    from console.readmodel.tray import Level, Reason, roll_up

    snap = scenario_snapshot()
    same = [Reason(Level.DEGRADED, "remote_config_poll_failed", "poll failed", "check", "remote_config:host"),
            Reason(Level.DEGRADED, "remote_config_poll_failed", "poll failed again", "check", "remote_config:host"),
            Reason(Level.OK, "nothing_configured", "nothing configured", "declare something", "")]
    snap = replace(snap, tray=roll_up([*snap.tray.reasons, *same]))
    for tab, spec in TABLES.items():
        keys = [key for key, _cells in spec.rows(snap, NOW)]
        assert len(keys) == len(set(keys)), tab
    # and each Overview key names its own reason, the repeated one included
    assert [reason_for(snap, key) for key, _cells in reason_rows(snap, NOW)] == snap.tray.reasons


async def test_advanced_does_not_borrow_the_degraded_glyph_at_80_or_120_columns(tmp_path):
    """`▲` was both degraded (the tray) and advanced (a run), the good news drawn as the bad."""
    from console.tui.format import LIVENESS_BADGES
    from console.tui.palette import GLYPHS
    from tests.tui.conftest import scenario_app, screen_text, wait_snapshot

    assert LIVENESS_BADGES["advanced"].split()[0] not in set(GLYPHS.values())
    for size in ((80, 24), (120, 40)):
        app, _source = scenario_app(tmp_path)
        async with app.run_test(size=size) as pilot:
            await wait_snapshot(pilot, app)
            await pilot.press("4")
            await pilot.pause()
            text = screen_text(app)
            assert "» advanced" in text and "▲ advanced" not in text, size


async def test_the_events_tab_names_runs_by_short_id_so_the_reason_fits_at_80_and_120(tmp_path):
    from console.tui.format import short_id
    from tests.tui.conftest import scenario_app, screen_text, wait_snapshot

    for size in ((80, 24), (120, 40)):
        app, _source = scenario_app(tmp_path)
        async with app.run_test(size=size) as pilot:
            await wait_snapshot(pilot, app)
            await pilot.press("6")
            await pilot.pause()
            table = screen_text(app).split("────")[0]  # the table, above the detail pane
        assert f"run:{short_id(run_id(6))}" in table and run_id(6) not in table, size
        assert "timed_out: timeout" in table, size  # the reason column has room to say it


def test_a_loops_last_liveness_read_offline_comes_from_the_runs_the_snapshot_has():
    """Offline there is no per-loop index: the row falls back to the newest finished run it carries."""
    from console.core.records import replace
    from console.tui.rows import loop_rows
    from console.tui.scenario import NOW, scenario_snapshot

    snap = scenario_snapshot()
    offline = replace(snap, loops=[replace(lp, last_run_id=None, last_liveness=None) for lp in snap.loops])
    online_cells = {key: cells[4] for key, cells in loop_rows(snap, NOW)}
    offline_cells = {key: cells[4] for key, cells in loop_rows(offline, NOW)}
    assert offline_cells == online_cells and any(str(c) != "-" for c in offline_cells.values())
