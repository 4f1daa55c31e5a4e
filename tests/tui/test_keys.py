"""Every key path of the console, driven with Pilot over the fixed scenario (80x24)."""

from __future__ import annotations

from console.tui.scenario import run_id
from console.tui.screens.confirm import ConfirmScreen
from console.tui.screens.help import HelpScreen
from console.tui.widgets.detail_pane import DetailPane
from console.tui.widgets.keyed_table import KeyedTable
from tests.tui.conftest import scenario_app, screen_text, select, wait_snapshot

SIZE = (80, 24)


async def ready(pilot, app) -> None:
    await wait_snapshot(pilot, app)


def notes(app) -> list[str]:
    return [n.message for n in app._notifications]


async def test_number_keys_switch_tabs_and_arrows_move_the_selection(fixed_app):
    app, _calls = fixed_app
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        for key, tab in zip("123456", ["overview", "sidecars", "loops", "runs", "config", "events"], strict=True):
            await pilot.press(key)
            assert app.active_tab() == tab
        await pilot.press("2")
        assert app.selected_key() == "sidecar:embeddings"
        await pilot.press("down")
        assert app.selected_key() == "sidecar:agent-monitor"


async def test_enter_enlarges_the_detail_pane_and_shrinks_it_again(fixed_app):
    app, _ = fixed_app
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await pilot.press("2", "enter")
        assert app.query_one(DetailPane).has_class("enlarged")
        await pilot.press("enter")
        assert not app.query_one(DetailPane).has_class("enlarged")


async def test_retry_applies_to_a_failed_sidecar_and_reports_the_outcome(fixed_app):
    app, calls = fixed_app
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await select(pilot, app, "2", "sidecar:agent-monitor")
        await pilot.press("t")
        await pilot.pause()
        assert calls == [("retry", "sidecar:agent-monitor")]
        assert "retry sidecar:agent-monitor: done" in notes(app)


async def test_an_action_that_does_not_apply_is_refused_with_the_reason_and_nothing_is_sent(fixed_app):
    app, calls = fixed_app
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await select(pilot, app, "2", "sidecar:embeddings")
        assert app.check_action("act", ("retry",)) is None  # dimmed in the footer
        await pilot.press("t", "c")
        await pilot.pause()
        assert calls == []
        assert "retry refused: sidecar embeddings is ready, not failed" in notes(app)
        assert "cancel refused: cancel applies to runs; sidecars are retried or reclaimed" in notes(app)


async def test_reclaim_asks_first_and_no_sends_nothing(fixed_app):
    app, calls = fixed_app
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await select(pilot, app, "2", "sidecar:vector-cache")
        await pilot.press("r")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen) and "Reclaim sidecar:vector-cache?" in app.screen.question
        await pilot.press("n")
        await pilot.pause()
        assert calls == [] and not isinstance(app.screen, ConfirmScreen)
        await pilot.press("r")
        await pilot.pause()
        assert app.screen.focused is app.screen.query_one("#no")
        await pilot.press("enter")  # out of habit: answers no
        await pilot.pause()
        assert calls == [] and not isinstance(app.screen, ConfirmScreen)
        await pilot.press("r")
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause()
        assert calls == [("reclaim", "sidecar:vector-cache")]


async def test_cancel_asks_first_then_cancels_the_running_run(fixed_app):
    app, calls = fixed_app
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await select(pilot, app, "4", f"run:{run_id(7)}")
        await pilot.press("c")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert calls == []
        await pilot.press("c")
        await pilot.pause()
        await pilot.click("#yes")
        await pilot.pause()
        assert calls == [("cancel", f"run:{run_id(7)}")]


async def test_retrying_an_escalated_loop_and_refusing_an_active_one(fixed_app):
    app, calls = fixed_app
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await select(pilot, app, "3", "loop:triage")
        await pilot.press("t")
        await pilot.pause()
        await select(pilot, app, "3", "loop:docs")
        await pilot.press("t")
        await pilot.pause()
        assert calls == [("retry", "loop:triage")]
        assert "retry refused: loop docs is active, not escalated" in notes(app)


async def test_read_only_disables_every_action(tmp_path):
    app, source = scenario_app(tmp_path, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await select(pilot, app, "2", "sidecar:agent-monitor")
        for verb in ("reclaim", "retry", "cancel"):
            assert app.check_action("act", (verb,)) is None
        await pilot.press("r", "t", "c")
        await pilot.pause()
        assert source.calls == [] and not isinstance(app.screen, ConfirmScreen)
        assert notes(app).count("retry refused: read-only console: actions are disabled (--read-only)") == 1
        assert "owner · read-only · cp: online" in screen_text(app).splitlines()[0]  # said in the header too


async def test_an_engine_refusal_is_shown_as_an_error(tmp_path):
    from console.core.actions import ActionError

    async def refuse(verb: str, target: str) -> dict:
        raise ActionError("kill_failed", "group 812 survived SIGKILL")

    app, _source = scenario_app(tmp_path, handler=refuse)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await select(pilot, app, "2", "sidecar:agent-monitor")
        await pilot.press("t")
        await pilot.pause()
        assert "retry sidecar:agent-monitor refused (kill_failed): group 812 survived SIGKILL" in notes(app)


async def test_tab_moves_into_the_detail_pane_whose_arrows_scroll_it_and_shift_tab_comes_back(fixed_app):
    app, calls = fixed_app
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await select(pilot, app, "4", f"run:{run_id(6)}")
        pane, table = app.query_one(DetailPane), app.query_one("#table-runs", KeyedTable)
        assert pane.max_scroll_y > 0  # at 80x24 the run's detail is longer than the pane
        await pilot.press("tab", "down", "down")
        await pilot.pause()
        assert app.focused is pane and pane.scroll_y == 2 and app.selected_key() == f"run:{run_id(6)}"
        await pilot.press("t")  # the action keys still act on the selected row
        await pilot.pause()
        assert calls == [("retry", f"run:{run_id(6)}")]
        await pilot.press("shift+tab", "up")
        await pilot.pause()
        assert app.focused is table and app.selected_key() != f"run:{run_id(6)}"


async def test_the_config_tab_scrolls_by_keys_to_what_is_below_the_fold(fixed_app):
    from textual.containers import VerticalScroll

    from tests.tui.conftest import screen_text

    app, _ = fixed_app
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await pilot.press("5")
        await pilot.pause()
        body = app.query_one("#config", VerticalScroll)
        assert app.focused is body and body.max_scroll_y > 0  # at 80x24 the local config is below the fold
        assert "state dir" not in screen_text(app)
        await pilot.press("end")
        await pilot.pause()
        assert "state dir" in screen_text(app)
        await pilot.press("4")  # and the next tab's table has the arrows again
        await pilot.pause()
        assert app.focused is app.query_one("#table-runs")


async def test_slash_filters_rows_and_escape_clears(fixed_app):
    app, _ = fixed_app
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await pilot.press("4")
        table = app.query_one("#table-runs", KeyedTable)
        assert table.row_count == 7
        await pilot.press("slash", *"triage")
        await pilot.pause()
        assert table.row_count == 3
        await pilot.press("enter")  # back to the table, filter kept
        assert app.focused is table and table.row_count == 3
        await pilot.press("escape")
        await pilot.pause()
        assert table.row_count == 7


async def test_escape_dismisses_the_toasts_first_and_then_clears_the_filter(fixed_app):
    app, _ = fixed_app
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await ready(pilot, app)
        await pilot.press("4", "slash", *"triage", "enter")
        table = app.query_one("#table-runs", KeyedTable)
        app.notify("run X of loop triage failed: process_lost", severity="error", timeout=60)
        app.notify("sidecar web: port 80 is held", severity="warning", timeout=60)
        await pilot.pause(0.2)
        assert len(app.screen.query("Toast")) == 2
        await pilot.press("escape")  # no mouse to click them away: esc does, and only that
        await pilot.pause(0.2)
        assert not app.screen.query("Toast") and not notes(app)
        assert table.row_count == 3 and app.filter_text == "triage"
        await pilot.press("escape")  # nothing left to dismiss: the filter goes
        await pilot.pause()
        assert table.row_count == 7 and app.filter_text == ""


async def test_the_filter_box_is_made_on_first_use_and_escape_before_it_is_harmless(fixed_app):
    app, _ = fixed_app
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        assert not app.query("#filter")  # not part of the first frame
        await pilot.press("escape")
        await pilot.pause()
        assert app.is_running and app.focused is app.query_one("#table-overview")
        await pilot.press("slash", "x")
        await pilot.pause()
        [box] = app.query("#filter")
        order = [child.id for child in app.screen.children]
        assert order.index("filter") == order.index("detail") - 1 and box.has_focus and box.value == "x"
        await pilot.press("escape", "slash")  # reopened: the same box, emptied
        await pilot.pause()
        assert app.query("#filter").only_one() is box and box.value == "" and box.has_focus


async def test_on_the_config_tab_the_filter_is_dimmed_and_refused_with_its_reason(fixed_app):
    from console.tui.widgets.key_bar import KeyBar

    app, _ = fixed_app
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)

        def filter_key_style() -> str:
            line = app.query_one(KeyBar).render()
            start = line.plain.index("/ Filter")
            return str(next(span.style for span in line.spans if span.start == start))

        assert filter_key_style() != "dim"
        await pilot.press("5", "slash")
        await pilot.pause()
        assert filter_key_style() == "dim" and not app.query("#filter")
        assert notes(app) == ["filter refused: the Config tab has no rows to filter"]
        await pilot.press("4")
        await pilot.pause()
        assert filter_key_style() != "dim"


async def test_question_mark_shows_every_key_and_at_80x24_scrolls_to_the_last(fixed_app):
    from textual.containers import VerticalScroll

    from console.tui.screens.help import KEYS

    app, _ = fixed_app
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        box = app.screen.query_one(VerticalScroll)
        assert box.region.bottom <= SIZE[1]  # the box ends on screen, its bottom border with it
        assert "esc closes · ↑ ↓ PgUp PgDn scroll" in screen_text(app)  # said on the border, always in view
        assert "quit (an engine this console owns" not in screen_text(app)  # q is below the fold ...
        await pilot.press("end")
        await pilot.pause()
        assert "quit (an engine this console owns" in screen_text(app)  # ... and one key away
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)
    assert KEYS[-1][0] == "q ctrl+c"


async def run_from_palette(pilot, command: str) -> None:
    await pilot.press("ctrl+p")
    await pilot.pause()
    await pilot.press(*command)
    await pilot.pause(0.3)
    await pilot.press("enter")
    await pilot.pause(0.3)


async def test_the_palette_offers_the_same_actions(fixed_app):
    app, calls = fixed_app
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await select(pilot, app, "2", "sidecar:agent-monitor")
        await pilot.press("ctrl+p")
        await pilot.pause(0.3)
        from textual.command import CommandList

        listed = [str(option.prompt).splitlines()[0] for option in app.screen.query_one(CommandList).options]
        assert listed[:3] == ["Retry sidecar:agent-monitor", "Reclaim sidecar:agent-monitor",
                              "Cancel sidecar:agent-monitor"]  # the actions first, as the keys offer them
        assert listed[3:6] == ["Restart sidecar:agent-monitor", "Stop sidecar:agent-monitor",
                               "Start sidecar:agent-monitor"]
        assert listed[6:9] == ["Trigger sidecar:agent-monitor", "Pause sidecar:agent-monitor",
                               "Resume sidecar:agent-monitor"]
        assert listed[9:15] == [f"Show {tab}" for tab in ("Overview", "Sidecars", "Loops", "Runs", "Config", "Events")]
        await pilot.press("escape")
        await pilot.pause()
        await run_from_palette(pilot, "Retry sidecar")
        assert calls == [("retry", "sidecar:agent-monitor")]


async def test_the_palette_opens_the_filter_box(fixed_app):
    app, _ = fixed_app
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await run_from_palette(pilot, "Filter rows")
        [box] = app.query("#filter")
        assert box.has_focus and box.has_class("shown")


async def test_q_quits(fixed_app):
    app, _ = fixed_app
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0


async def test_the_clock_keeps_ticking_under_a_modal(fixed_app):
    """The 1 Hz refresh must find its widgets while help, a confirm or the palette is on top."""
    app, _ = fixed_app
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await pilot.press("question_mark")
        await pilot.pause()
        app._tick()  # what the interval timer calls
        await pilot.press("escape")
        await select(pilot, app, "2", "sidecar:vector-cache")
        await pilot.press("r")
        await pilot.pause()
        app._tick()
        assert isinstance(app.screen, ConfirmScreen)


async def test_verbs_for_a_healthy_sidecar_ask_first_and_the_footer_lists_what_applies(fixed_app):
    from console.tui.widgets.key_bar import KeyBar

    app, calls = fixed_app
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await select(pilot, app, "2", "sidecar:embeddings")  # ready
        await pilot.pause()
        footer = app.query_one(KeyBar).render().plain
        assert "R Restart" in footer and "x Stop" in footer and "l Logs" in footer
        assert "r Reclaim" not in footer and "u Start" not in footer and len(footer) <= 80
        await pilot.press("u")
        await pilot.pause()
        assert "start refused: sidecar embeddings is ready, not stopped by an operator" in notes(app)
        await pilot.press("x")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen) and app.screen.question == "Stop sidecar:embeddings?"
        assert "stays stopped" in app.screen.detail
        await pilot.press("y")
        await pilot.pause()
        await pilot.press("R", "y")
        await pilot.pause()
        assert calls == [("stop", "sidecar:embeddings"), ("restart", "sidecar:embeddings")]


async def test_reclaim_is_not_offered_when_a_foreign_process_holds_the_port(fixed_app):
    from console.tui.widgets.key_bar import KeyBar

    app, calls = fixed_app
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await select(pilot, app, "2", "sidecar:agent-monitor")  # port 4820 held by nginx pid 733, foreign
        await pilot.pause()
        assert "r Reclaim" not in app.query_one(KeyBar).render().plain
        await pilot.press("r")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen) and calls == []
        assert any("reclaim refused: port 4820 is held by a foreign process (pid 733)" in n and "free the port" in n
                   for n in notes(app))


async def test_read_only_offers_no_verb_and_refuses_each(tmp_path):
    from console.tui.widgets.key_bar import KeyBar

    app, source = scenario_app(tmp_path, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await select(pilot, app, "2", "sidecar:embeddings")
        await pilot.pause()
        footer = app.query_one(KeyBar).render().plain
        assert not any(f"{key} {label}" in footer for key, label in (("x", "Stop"), ("R", "Restart"), ("r", "Reclaim")))
        await pilot.press("x", "R", "u")
        await pilot.pause()
        assert source.calls == [] and not isinstance(app.screen, ConfirmScreen)
        assert sum("read-only console" in n for n in notes(app)) == 3


async def test_loop_verbs_trigger_pause_and_resume_each_with_its_refusal(fixed_app):
    from console.tui.widgets.key_bar import KeyBar

    app, calls = fixed_app
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await select(pilot, app, "3", "loop:docs")  # active, between runs
        await pilot.pause()
        footer = app.query_one(KeyBar).render().plain
        assert "T Trigger" in footer and "p Pause" in footer and "P Resume" not in footer and len(footer) <= 80
        await pilot.press("T")
        await pilot.pause()
        await pilot.press("P")
        await pilot.pause()
        assert "resume refused: loop docs is not paused here" in notes(app)
        await pilot.press("p")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen) and "stop reason `paused`" in app.screen.detail
        await pilot.press("y")
        await pilot.pause()
        await select(pilot, app, "3", "loop:refactor")  # a run is running
        await pilot.press("T")
        await pilot.pause()
        assert any(n.startswith("trigger refused: loop refactor is running run ") and "one at a time" in n
                   for n in notes(app))
        await select(pilot, app, "3", "loop:triage")  # escalated
        await pilot.press("T")
        await pilot.pause()
        assert "trigger refused: loop triage is escalated: it starts no runs" in notes(app)
        assert calls == [("trigger", "loop:docs"), ("pause", "loop:docs")]


async def test_ctrl_c_quits_as_q_does(fixed_app):
    app, _ = fixed_app
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await pilot.press("ctrl+c")
        await pilot.pause()
        assert not any("ctrl+q" in n for n in notes(app))
    assert app.return_code == 0 and not app.is_running


async def test_j_k_g_G_home_and_end_move_the_selection(fixed_app):
    app, _ = fixed_app
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await pilot.press("2")
        order = ["sidecar:embeddings", "sidecar:agent-monitor", "sidecar:vector-cache"]
        assert app.selected_key() == order[0]
        await pilot.press("j")
        assert app.selected_key() == order[1]
        await pilot.press("G")
        assert app.selected_key() == order[2]
        await pilot.press("k")
        assert app.selected_key() == order[1]
        await pilot.press("g")
        assert app.selected_key() == order[0]
        await pilot.press("end")
        assert app.selected_key() == order[2]
        await pilot.press("home")
        assert app.selected_key() == order[0]


async def test_y_writes_the_selected_id_as_osc_52_and_says_so(fixed_app):
    import base64

    app, _ = fixed_app
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        written: list[str] = []
        real = app._driver.write

        def seen(data: str) -> None:  # the real write still happens: this only reads what goes out
            written.append(data)
            real(data)

        app._driver.write = seen
        await select(pilot, app, "4", f"run:{run_id(7)}")
        await pilot.press("y")
        await pilot.pause()
        osc = f"\x1b]52;c;{base64.b64encode(run_id(7).encode()).decode()}\a"
        assert osc in written
        assert any(n.startswith(f"copied run id {run_id(7)}") for n in notes(app))


async def test_the_filter_prompt_is_one_line(fixed_app):
    from textual.widgets import Input

    app, _ = fixed_app
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await pilot.press("2", "slash", *"vector")
        await pilot.pause()
        box = app.query_one("#filter", Input)
        assert box.region.height == 1
        assert app.query_one("#table-sidecars", KeyedTable).row_count == 1
