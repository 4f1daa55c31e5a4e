import json

from console.engine.report import exit_code, render_json, render_text
from console.engine.snapshot import EngineView, EventView, HostView, compose


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
