"""Verbs for healthy sidecars: stop (held across restarts until started), start, restart; and reclaim
refused when a foreign process holds the port. Real child processes, the fake clock for every timer."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap

import pytest

from console.core.actions import ActionError, Target
from console.core.config import SidecarConfig
from console.core.holds import Holds
from console.core.processes import group_alive
from console.readmodel.snapshot import EngineView, HostView, compose
from console.readmodel.tray import Level
from console.sidecars.supervisor import Supervisor
from tests.conftest import finish_with_clock, free_port, http_server
from tests.sidecars.test_supervisor import PY, Rig, state

WEB = Target("sidecar", "web")



def sleeper() -> SidecarConfig:
    return SidecarConfig(name="web", command=["sleep", "300"])


async def ready(rig: Rig, sup: Supervisor) -> int:
    await rig.drive(lambda: state(sup, "web").state == "ready", what="ready")
    pid = state(sup, "web").pid
    assert pid is not None
    return pid


async def test_stop_holds_a_working_sidecar_stopped_across_a_new_engine_until_started(rig):
    sup = rig.supervisor(sleeper())
    await sup.start()
    pid = await ready(rig, sup)
    await finish_with_clock(rig.clock, sup.stop_one(WEB))
    view = state(sup, "web")
    assert view.state == "stopped" and view.held_by == "loopctl stop sidecar:web" and not group_alive(pid)
    assert json.loads((rig.tmp / "sidecars" / "holds.json").read_text())["sidecar:web"]["verb"] == "stop"
    assert os.stat(rig.tmp / "sidecars" / "holds.json").st_mode & 0o777 == 0o600
    snap = compose(now=1.0, host=HostView("h", "/s", "/c", True, 1), engine=EngineView(True, "owner"),
                   things=[], events=[], sidecars=sup.views())
    assert snap.tray.state is Level.PAUSED and snap.tray.top.code == "sidecar_stopped"
    assert "loopctl start sidecar:web" in snap.tray.top.action
    for verb in (sup.stop_one, sup.retry, sup.reclaim, sup.restart_one):
        with pytest.raises(ActionError, match="loopctl start sidecar:web") as refused:
            await verb(WEB)
        assert refused.value.code == "not_applicable"

    await finish_with_clock(rig.clock, sup.stop())  # the engine goes; the next one reads the hold
    again = rig.supervisor(sleeper())
    await again.start()
    rig.clock.advance(5)
    assert state(again, "web").state == "stopped" and state(again, "web").pid is None
    await again.reconfigure([sleeper(), SidecarConfig(name="other", command=["sleep", "300"])])
    assert state(again, "web").state == "stopped"  # a reload does not start it either

    result = await again.start_one(WEB)
    assert "started" in result["message"]
    await ready(rig, again)
    assert state(again, "web").held_by == "" and Holds(rig.tmp / "sidecars" / "holds.json").get("sidecar:web") is None
    with pytest.raises(ActionError, match="not stopped by an operator"):
        await again.start_one(WEB)


async def test_restart_relaunches_a_ready_sidecar_and_refuses_a_failed_one(rig):
    sup = rig.supervisor(sleeper(), SidecarConfig(name="ghost", command=["/nonexistent/ghost"], max_restarts=0))
    await sup.start()
    first = await ready(rig, sup)
    await finish_with_clock(rig.clock, sup.restart_one(WEB))
    second = await ready(rig, sup)
    assert second != first and not group_alive(first)
    await rig.drive(lambda: state(sup, "ghost").state == "failed", what="ghost failed")
    with pytest.raises(ActionError, match="loopctl retry sidecar:ghost"):
        await sup.restart_one(Target("sidecar", "ghost"))
    with pytest.raises(ActionError, match="no sidecar named 'nope'"):
        await sup.stop_one(Target("sidecar", "nope"))


async def test_reclaim_is_refused_when_a_foreign_process_holds_the_port_and_it_is_never_touched(rig):
    port = free_port()
    foreign = subprocess.Popen([PY, "-c", textwrap.dedent(f"""
        import socket, time
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", {port})); s.listen(); print("listening", flush=True); time.sleep(120)
    """)], stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert foreign.stdout is not None and foreign.stdout.readline().strip() == "listening"
        sup = rig.supervisor(SidecarConfig(name="web", command=http_server(port), port=port, max_restarts=0))
        await sup.start()
        await rig.drive(lambda: state(sup, "web").state == "failed", step=0.25, what="failed")
        with pytest.raises(ActionError, match=r"free the port.*loopctl retry sidecar:web") as refused:
            await sup.reclaim(WEB)
        assert f"pid {foreign.pid} (foreign)" in refused.value.message
        assert foreign.poll() is None
        assert state(sup, "web").state == "failed"  # nothing relaunched into the same conflict
    finally:
        foreign.kill()
        foreign.wait()


def test_a_damaged_holds_file_holds_nothing_and_a_link_is_not_followed(tmp_path, caplog):
    path = tmp_path / "holds.json"
    path.write_text("{not json")
    assert Holds(path).get("sidecar:web") is None
    path.write_text(json.dumps({"sidecar:web": {"verb": "stop", "by": 3, "at": "x"}}))
    assert Holds(path).get("sidecar:web") is None
    path.unlink()
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text(json.dumps({"sidecar:web": {"verb": "stop", "by": "me", "at": 1.0}}))
    path.symlink_to(elsewhere)
    assert Holds(path).get("sidecar:web") is None
    assert "holding nothing" in caplog.text
