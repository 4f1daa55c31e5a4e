import json

from console.readmodel.report import exit_code, render_json, render_text
from console.readmodel.snapshot import EngineView, EventView, HostView, compose


def snap(running: bool):
    return compose(now=1.0, host=HostView("edge-1", "/srv/state", "/etc/l.toml", True, 0),
                   engine=EngineView(running, "owner" if running else "offline", pid=9 if running else None,
                                     last_owner_pid=None if running else 9, last_stop_clean=True),
                   things=[], events=[EventView(1, 1.0, "engine", "main", None, "running", "engine started")])


def test_text_report_leads_with_a_monitoring_status_line():
    down = render_text(snap(False))
    expected = "LOOPCTL CRITICAL - down: no engine owns /srv/state (last engine pid 9 stopped cleanly)"
    assert down.splitlines()[0] == expected
    assert "-> start it: `loopctl run`" in down
    ok = render_text(snap(True))
    assert ok.splitlines()[0] == "LOOPCTL OK - ok"
    assert "engine: running, pid 9" in ok and "engine:main (new) -> running" in ok


def test_json_report_carries_status_exit_code_and_the_snapshot():
    payload = json.loads(render_json(snap(False)))
    assert payload["status"] == "CRITICAL" and payload["exit_code"] == 2 == exit_code(snap(False))
    assert payload["snapshot"]["tray"]["reasons"][0]["code"] == "engine_not_running"
    assert json.loads(render_json(snap(True)))["exit_code"] == 0


def test_text_report_lists_sidecars_with_state_pid_and_failure():
    from console.readmodel.snapshot import SidecarView

    s = compose(now=1.0, host=HostView("h", "/s", "/c", True, 2), engine=EngineView(True, "owner", pid=1),
                things=[], events=[], sidecars=[
                    SidecarView(name="web", state="ready", pid=812, port=8080),
                    SidecarView(name="mon", state="failed", port=4820, attempts=6, max_restarts=5,
                                reason="port_conflict", reason_text="port 4820 is held by nginx pid 9 (foreign)"),
                ])
    text = render_text(s)
    assert "  web              ready     pid 812, port 8080" in text
    assert "  mon              failed    no process, port 4820, restarts 5/5: port 4820 is held by nginx" in text
    assert text.splitlines()[0] == "LOOPCTL WARNING - degraded: mon: port 4820 is held by nginx pid 9 (foreign)"


def test_text_report_lists_loops_and_recent_runs_with_stop_metadata():
    from console.readmodel.snapshot import LoopView, RunView

    s = compose(now=1.0, host=HostView("h", "/s", "/c", True, 1), engine=EngineView(True, "owner", pid=1),
                things=[], events=[],
                loops=[LoopView(id="docs", state="escalated",
                                reason="run R3 plan_only: continuation attempts exhausted"), LoopView(id="idle")],
                runs=[RunView(id="R3", loop_id="docs", status="timed_out", stop_reason="timeout",
                              effective_timeout_sec=1800, liveness="failed", continuation_attempt=2)])
    text = render_text(s)
    assert "  docs             escalated: run R3 plan_only: continuation attempts exhausted" in text
    assert "  R3  docs         timed_out stop: timeout (1800 s), liveness: failed, continuation 2/2" in text
    assert text.splitlines()[0].startswith("LOOPCTL WARNING - degraded: loop docs escalated")
    assert "  idle             active\n" in text  # no padding left trailing
    assert not any(line != line.rstrip() for line in text.splitlines())


def test_a_running_loop_reads_active_then_its_run_with_no_gap_before_the_comma():
    """It read `notes            active   , running 01K…`: the state's padding before the comma."""
    from console.readmodel.snapshot import LoopView

    s = compose(now=1.0, host=HostView("h", "/s", "/c", True, 1), engine=EngineView(True, "owner", pid=1),
                things=[], events=[], loops=[LoopView(id="notes", current_run="01KRUN"),
                                             LoopView(id="docs", held_by="loopctl pause loop:docs")])
    text = render_text(s)
    assert "  notes            active, running 01KRUN\n" in text
    assert "  docs             active, paused here by `loopctl pause loop:docs`\n" in text
