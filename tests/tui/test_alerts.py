"""Toasts for new failures: what went wrong since the last snapshot, not what was wrong already."""

from __future__ import annotations

from console.core.records import replace
from console.readmodel.snapshot import EngineView
from console.readmodel.tray import Level, Reason, roll_up
from console.tui.alerts import Alert, new_failures
from console.tui.scenario import run_id, scenario_snapshot
from tests.tui.conftest import wait_snapshot

NOW_BROKEN = scenario_snapshot()  # agent-monitor port conflict, triage escalated, vector-cache restarting,
                                  # run 006 timed out, run 005 failed


def healthy(snap=NOW_BROKEN):
    """The same host a moment earlier: no failing reasons, runs 005 and 006 still running."""
    reasons = [r for r in snap.tray.reasons if r.level not in (Level.DEGRADED, Level.DOWN)]
    runs = [replace(r, status="running") if r.status in ("failed", "timed_out") else r for r in snap.runs]
    return replace(snap, tray=roll_up(reasons), runs=runs)


def with_reasons(snap, *reasons):
    return replace(snap, tray=roll_up([*snap.tray.reasons, *reasons]))


def test_the_first_snapshot_raises_no_toast_however_broken_the_host():
    assert new_failures(None, NOW_BROKEN) == []


def test_nothing_new_raises_nothing():
    assert new_failures(NOW_BROKEN, NOW_BROKEN) == []
    assert new_failures(healthy(), healthy()) == []


def test_new_failing_reasons_and_failed_runs_each_raise_one_toast():
    alerts = new_failures(healthy(), NOW_BROKEN, limit=10)
    assert alerts == [
        Alert("agent-monitor: port 4820 is held by nginx pid 733 (foreign) (gave up after 6 failed starts)", "warning"),
        Alert(f"loop triage escalated: run {run_id(4)} plan_only: continuation attempts exhausted", "warning"),
        Alert("vector-cache: exited with code 3: cache dir not writable; restart 2 of 5 in 1 s", "warning"),
        Alert(f"run {run_id(5)[-8:]} of loop refactor failed: process_lost", "error"),
        Alert(f"run {run_id(6)[-8:]} of loop refactor timed out: timeout (1800 s)", "error"),
    ]


def test_a_failed_run_without_a_stop_reason_says_its_error_or_nothing_more():
    run = replace(NOW_BROKEN.runs[0], status="failed", stop_reason=None, error_text="spawn failed: ENOENT")
    bare = replace(run, error_text=None)
    assert new_failures(healthy(), replace(healthy(), runs=[run]))[0].text == \
        f"run {run_id(7)[-8:]} of loop refactor failed: spawn failed: ENOENT"
    assert new_failures(healthy(), replace(healthy(), runs=[bare]))[0].text == \
        f"run {run_id(7)[-8:]} of loop refactor failed"


def test_down_is_an_error_and_a_reason_that_worsens_counts_as_new():
    down = Reason(Level.DOWN, "crash_loop", "web: crashed 5 times", "fix it", "sidecar:web")
    degraded = replace(down, level=Level.DEGRADED)
    assert new_failures(with_reasons(healthy(), degraded), with_reasons(healthy(), down)) == \
        [Alert("web: crashed 5 times", "error")]


def test_paused_and_ok_reasons_and_cancelled_runs_are_not_failures():
    paused = Reason(Level.PAUSED, "loop_paused", "loop docs paused by the control plane", "resume it", "loop:docs")
    cancelled = replace(healthy(), runs=[replace(healthy().runs[0], status="cancelled")])
    assert new_failures(healthy(), with_reasons(healthy(), paused)) == []
    assert new_failures(healthy(), cancelled) == []


def test_a_storm_gets_a_count_instead_of_a_wall_of_toasts():
    alerts = new_failures(healthy(), NOW_BROKEN)  # five new problems, three toasts
    assert len(alerts) == 3
    assert alerts[-1] == Alert("and 3 more new problems: see 1 Overview and 4 Runs", "error")


def test_no_toasts_across_an_engine_going_or_coming():
    offline = replace(NOW_BROKEN, engine=EngineView(running=False, source="offline"))
    assert new_failures(healthy(), offline) == []
    assert new_failures(offline, NOW_BROKEN) == []


async def test_the_console_toasts_a_new_failure_and_not_the_ones_it_opened_on(tmp_path):
    from tests.tui.conftest import scenario_app

    app, source = scenario_app(tmp_path)
    source.snapshot = healthy()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_snapshot(pilot, app)
        assert list(app._notifications) == []
        app.show_snapshot(with_reasons(healthy(), Reason(Level.DOWN, "spawn_error", "web: /usr/bin/web not found",
                                                         "fix the command", "sidecar:web")))
        await pilot.pause()
        assert [(n.message, n.severity) for n in app._notifications] == [("web: /usr/bin/web not found", "error")]


async def test_a_toast_shows_the_hosts_text_as_written_and_the_console_keeps_running(tmp_path):
    """Reason texts carry paths and command lines: read as markup, `[/var/lib/x]` raised and stopped
    the console, `[pid 733]` vanished, and `[@click=...]` made the toast run an action when clicked."""
    from textual.widgets._toast import Toast

    from tests.tui.conftest import scenario_app

    text = "web: [/var/lib/web] held by [pid 733]; see [@click=app.quit]here[/]"
    app, source = scenario_app(tmp_path)
    source.snapshot = healthy()
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        await wait_snapshot(pilot, app)
        app.show_snapshot(with_reasons(healthy(), Reason(Level.DOWN, "spawn_error", text, "fix it", "sidecar:web")))
        await pilot.pause(0.2)
        assert app.is_running
        [toast] = app.screen.query(Toast)
        assert toast.render().plain == text
