"""The real engine (`loopctl run`) against the hostile control plane: whatever the plane answers,
`--once` keeps answering, the tray names the call and what was wrong, the sidecar is untouched and
SIGTERM stops everything (the sidecar included)."""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Iterator

import psutil
import pytest

from console.controlplane.identity import load_or_create_key, store_refresh_token
from tests.conftest import Host, wait_for
from tests.controlplane import hostile
from tests.controlplane.hostile import HostilePlane, Shape

pytestmark = pytest.mark.slow


@pytest.fixture
def evil() -> Iterator[HostilePlane]:
    with HostilePlane() as plane:
        yield plane


def joined_host(host: Host, url: str) -> None:
    """A host joined to `url` (its key and refresh token written as `loopctl join` would)."""
    host.state.mkdir(mode=0o700, parents=True, exist_ok=True)
    load_or_create_key(host.state)
    store_refresh_token(host.state, "rf_good")
    sleep = [sys.executable, "-c", "import time; time.sleep(300)", str(host.root)]
    host.write_config(
        f'[control_plane]\nurl = "{url}"\nhost_id = "h_hostile"\nheartbeat_interval_seconds = 5\n'
        f"loop_heartbeat_seconds = 5\npoll_interval_seconds = 3600\n\n"
        f"[[sidecar]]\nname = \"sleeper\"\ncommand = {json.dumps(sleep)}\n\n"
        f"[[loop]]\nid = \"docs\"\ncommand = {json.dumps(sleep)}\ninterval_seconds = 3600\n")


def report(host: Host) -> dict:
    code, data = host.once_json()
    assert code in (0, 1) and "snapshot" in data, data
    return data


def reasons(data: dict) -> dict[str, str]:
    return {r["code"]: r["text"] for r in data["snapshot"]["tray"]["reasons"]}


def sidecar_pid(data: dict) -> int | None:
    return next((s["pid"] for s in data["snapshot"]["sidecars"] if s["name"] == "sleeper"), None)


def says(host: Host, code: str, *words: str) -> dict:
    """The report once the tray has `code` with all of `words` in its text."""
    found: dict = {}

    def check() -> bool:
        found.update(report(host))
        text = reasons(found).get(code, "")
        return bool(text) and all(w in text for w in words)

    wait_for(check, timeout=20, what=f"{code} naming {words}")
    return found


def stops_cleanly(host: Host, engine: object, pid: int) -> None:
    engine.send_signal(signal.SIGTERM)  # type: ignore[attr-defined]
    assert engine.wait(timeout=20) == 0, host.log(engine)  # type: ignore[arg-type, attr-defined]
    wait_for(lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE,
             timeout=10, what="the sidecar to be stopped with the engine")
    assert "Traceback" not in host.log(engine)  # type: ignore[arg-type]


def test_a_token_endpoint_answering_garbage_keeps_the_engine_beating_and_stoppable(host: Host, evil):
    joined_host(host, evil.url)
    evil.answer(hostile.TOKEN, hostile.PER_CALL[hostile.TOKEN]["expires_in soon"])
    engine = host.spawn("run")
    host.wait_owner(engine)
    data = says(host, "control_plane_bad_answer", "token: HTTP 200", "expires_in")
    pid = sidecar_pid(data)
    assert pid is not None and "control_plane_rejected" not in reasons(data)
    says(host, "remote_config_poll_failed", "config poll failed (bad_answer): token: HTTP 200")
    evil.reset()  # the plane heals: the heartbeat, still trying, clears the reason; nothing restarted meanwhile
    latest: dict = {}

    def healed() -> bool:
        latest.update(report(host))
        return latest["snapshot"]["control_plane"]["status"] == "online" and not {
            "control_plane_bad_answer", "control_plane_unreachable"} & set(reasons(latest))

    wait_for(healed, timeout=20, what="the next heartbeat to clear the reason")
    assert sidecar_pid(latest) == pid
    stops_cleanly(host, engine, pid)


def test_each_call_answered_wrongly_is_named_and_nothing_else_moves(host: Host, evil):
    joined_host(host, evil.url)
    evil.answer(hostile.HOST_HEARTBEAT, hostile.COMMON["gzip header, plain body"])
    evil.answer(hostile.LOOP_CREATE, hostile.PER_CALL[hostile.LOOP_CREATE]["no loop_id"])
    evil.answer(hostile.CONFIG, Shape(200, b"{}", {"ETag": 'W/"w1"'}))
    engine = host.spawn("run")
    host.wait_owner(engine)  # the boot was not stopped by a loop-create answer without loop_id
    data = says(host, "control_plane_bad_answer", "host heartbeat: HTTP 200: corrupt compressed body",
                "loop create: HTTP 201: unexpected answer (Object missing required field `loop_id`)")
    assert "W/" in reasons(data)["remote_config_rejected"]
    pid = sidecar_pid(data)
    assert pid is not None
    evil.reset(hostile.LOOP_CREATE)  # the loop is created on its next round; its heartbeat then gets HTML
    evil.answer(hostile.LOOP_HEARTBEAT, hostile.COMMON["captive portal html"])
    data = says(host, "control_plane_bad_answer", "loop heartbeat: HTTP 200: not JSON")
    assert "loop create" not in reasons(data)["control_plane_bad_answer"]
    loop = next(lp for lp in data["snapshot"]["loops"] if lp["id"] == "docs")
    assert loop["state"] == "transient"  # still live: a bad answer never finalizes a loop
    assert sidecar_pid(data) == pid
    stops_cleanly(host, engine, pid)
