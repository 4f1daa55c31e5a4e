"""A loop's last heartbeat outcome and its last revival are read from the store: a real engine is
restarted and its successor shows both, to an observing console too, before heartbeating again;
no token ever reaches the snapshot or the screen."""

from __future__ import annotations

import signal
import sqlite3
import sys

from console.core.paths import resolve_paths
from console.tui.app import LoopctlApp
from console.tui.source import ObservedSource
from tests.conftest import Host, wait_for
from tests.controlplane.conftest import admin
from tests.controlplane.test_join import join
from tests.tui.conftest import screen_text, select, wait_snapshot


def loop_view(host: Host) -> dict:
    return host.once_json()[1]["snapshot"]["loops"][0]


def heartbeat_rows(host: Host) -> list[tuple]:
    with sqlite3.connect(f"file:{host.state / 'loopctl.db'}?mode=ro", uri=True) as db:
        return db.execute("SELECT loop_id, at, outcome, verdict, reason FROM loop_heartbeats").fetchall()


def set_round(host: Host, seconds: int) -> None:
    text = host.config_file.read_text()
    head, _, rest = text.partition("[control_plane]\n")
    rest = "".join(line + "\n" for line in rest.splitlines() if not line.startswith("loop_heartbeat_seconds"))
    host.config_file.write_text(f"{head}[control_plane]\nloop_heartbeat_seconds = {seconds}\n{rest}")


async def test_the_last_heartbeat_and_revival_survive_an_engine_restart_without_a_token(host: Host, plane):
    host.write_config(f'[[loop]]\nid = "docs"\ncommand = ["{sys.executable}", "-c", "import time; time.sleep(300)"]\n'
                      f"interval_seconds = 3600\n")
    join(host, plane, admin(plane, "join-tokens")["join_token"], "--token-file", "-", "--no-daemon")
    set_round(host, 5)  # the least a loop's heartbeat round may be
    engine = host.spawn("run")
    host.wait_owner(engine)
    wait_for(lambda: loop_view(host)["last_heartbeat"] == "ok", timeout=30, what="a heartbeat accepted")
    remote = host.once_json()[1]["snapshot"]["things"]
    binding = next(t for t in remote if t["kind"] == "binding")
    first_token = (host.state / "secrets" / "loops" / "docs.token").read_text()
    admin(plane, "expire-token", loop_id=binding["detail"]["remote_id"])  # the next heartbeat is refused
    wait_for(lambda: loop_view(host)["revived_jti"], timeout=30, what="a revival by proof of possession")
    engine.send_signal(signal.SIGTERM)
    assert engine.wait(timeout=15) == 0
    [(loop_id, at, outcome, verdict, reason)] = heartbeat_rows(host)
    assert (loop_id, outcome, verdict) == ("docs", "ok", "live")

    set_round(host, 3600)  # the successor's first heartbeat is a random moment of the hour
    admin(plane, "faults", prefix=f"/v1/loops/{binding['detail']['remote_id']}", stall_seconds=60, times=3)
    successor = host.spawn("run")  # and, stalled, would record nothing while this test looks
    host.wait_owner(successor)
    view = loop_view(host)
    assert (view["last_heartbeat"], view["last_heartbeat_at"]) == ("ok", at)  # the first engine's, from the store
    assert view["last_heartbeat_reason"] == f"{verdict}: {reason}"
    jti = view["revived_jti"]
    assert jti and view["revived_at"] and view["revived_expires_at"]

    paths = resolve_paths(str(host.state), None, {}, host.root / "home")
    app = LoopctlApp(ObservedSource(paths.socket), paths=paths)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_snapshot(pilot, app)
        await select(pilot, app, "3", "loop:docs")
        await pilot.pause()
        screen = screen_text(app)
    line = next(line for line in screen.splitlines() if "last heartbeat" in line)
    assert "heartbeatok " in line and " ago: live: " in line  # the outcome, when, the verdict and its reason
    assert f"token jti {jti}" in screen
    tokens = [first_token, (host.state / "secrets" / "loops" / "docs.token").read_text(),
              (host.state / "secrets" / "refresh_token").read_text()]
    said = [screen, host.run("--once", "--format", "json").stdout, host.run("--once").stdout]
    assert not any(token.strip() in text for token in tokens for text in said), "a token reached a face"
    assert first_token.strip() not in reason and all(t.strip() not in str(view) for t in tokens)

