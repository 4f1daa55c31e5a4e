"""Sidecars under real `loopctl run` engines: reclaim after a kill -9, clean stop, CLI actions."""

from __future__ import annotations

import json
import signal
import socket
import sys

import psutil

from console.core.processes import group_alive
from tests.conftest import Host, free_port, wait_for


def web_config(host: Host, port: int, **extra: object) -> None:
    lines = [
        "[[sidecar]]",
        'name = "web"',
        f'command = ["{sys.executable}", "-m", "http.server", "--bind", "127.0.0.1", "{port}"]',
        f"port = {port}",
        f'health = "http://127.0.0.1:{port}/"',
        *[f"{k} = {json.dumps(v)}" for k, v in extra.items()],
    ]
    host.write_config("\n".join(lines) + "\n")


def sidecar(host: Host) -> dict:
    """The one sidecar's view; empty until an engine has recorded it."""
    _code, report = host.once_json()
    sidecars = report["snapshot"]["sidecars"]
    return sidecars[0] if sidecars else {}


def listener_pid(port: int) -> int | None:
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
            return conn.pid
    return None


def test_an_orphan_left_by_a_killed_engine_is_reclaimed_by_the_next(host: Host):
    port = free_port()
    web_config(host, port)
    first = host.spawn("run")
    wait_for(lambda: sidecar(host).get("state") == "ready", what="web ready under the first engine")
    orphan = sidecar(host)["pid"]
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert psutil.pid_exists(orphan) and listener_pid(port) == orphan  # the port is still held: the pm2#2279 trap

    second = host.spawn("run")
    host.wait_owner(second)
    wait_for(lambda: sidecar(host).get("state") == "ready", what="web ready under the second engine")
    view = sidecar(host)
    assert view["pid"] != orphan and listener_pid(port) == view["pid"]
    assert not group_alive(orphan)
    assert view["last_reclaim"].startswith(f"reclaimed: pid {orphan} matches the PID file")
    assert "port_conflict" not in json.dumps(host.once_json()[1]["snapshot"]["events"])


def test_stopping_the_engine_stops_its_sidecars(host: Host):
    port = free_port()
    web_config(host, port)
    engine = host.spawn("run")
    wait_for(lambda: sidecar(host).get("state") == "ready", what="web ready")
    child = sidecar(host)["pid"]
    engine.send_signal(signal.SIGTERM)
    assert engine.wait(timeout=15) == 0
    assert not group_alive(child)
    assert not (host.state / "sidecars" / "web.pid").exists()
    view = sidecar(host)  # from disk now
    assert view["state"] == "stopped" and view["pid"] is None


def test_a_latched_failure_is_a_warning_and_retry_relaunches_it(host: Host):
    port = free_port()
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind(("127.0.0.1", port))
    blocker.listen()
    try:
        web_config(host, port, max_restarts=0)
        engine = host.spawn("run")
        host.wait_owner(engine)
        wait_for(lambda: sidecar(host).get("state") == "failed", what="web failed")
        text = host.run("--once")
        assert text.returncode == 1
        assert text.stdout.splitlines()[0].startswith(f"LOOPCTL WARNING - degraded: web: port {port} is held by")
        assert "-> free port" in text.stdout and "loopctl retry sidecar:web" in text.stdout
    finally:
        blocker.close()
    retried = host.run("retry", "sidecar:web")
    assert retried.returncode == 0, retried.stderr
    assert retried.stdout.strip() == "retry sidecar:web: web: failed cleared, relaunching"
    wait_for(lambda: sidecar(host).get("state") == "ready", what="web ready after retry")
    assert host.run("--once").returncode == 0
    refused = host.run("reclaim", "sidecar:web")
    assert refused.returncode == 2 and "running under this engine" in refused.stderr


def _sleepers(host: Host, *names: str, host_name: str = "") -> None:
    head = f'[host]\nname = "{host_name}"\n\n' if host_name else ""
    host.write_config(head + "".join(f'[[sidecar]]\nname = "{n}"\ncommand = ["sleep", "86400"]\n\n' for n in names))


def _sidecar_pids(host: Host) -> dict[str, int | None]:
    return {s["name"]: s["pid"] for s in host.once_json()[1]["snapshot"]["sidecars"] if s["state"] == "ready"}


def test_sighup_reloads_the_config_file_and_only_what_changed_restarts(host: Host):
    _sleepers(host, "keep", "drop")
    engine = host.spawn("run")
    host.wait_owner(engine)
    wait_for(lambda: len(_sidecar_pids(host)) == 2, what="two sidecars ready")
    before = _sidecar_pids(host)
    _sleepers(host, "keep", "new")
    engine.send_signal(signal.SIGHUP)
    wait_for(lambda: set(_sidecar_pids(host)) == {"keep", "new"}, what="the reloaded set of sidecars")
    after = _sidecar_pids(host)
    assert after["keep"] == before["keep"]  # unchanged: never restarted
    assert not psutil.pid_exists(before["drop"]) or psutil.Process(before["drop"]).status() == psutil.STATUS_ZOMBIE
    assert engine.poll() is None and host.engine_pid() == engine.pid
    assert "SIGHUP: config reloaded" in host.log(engine)


def test_sighup_with_a_broken_config_keeps_everything_running(host: Host):
    _sleepers(host, "keep")
    engine = host.spawn("run")
    host.wait_owner(engine)
    wait_for(lambda: "keep" in _sidecar_pids(host), what="the sidecar ready")
    before = _sidecar_pids(host)
    host.write_config('[[sidecar]]\nname = "keep"\ncommand = "not a list"\n')
    engine.send_signal(signal.SIGHUP)
    wait_for(lambda: "config not reloaded" in host.log(engine), what="the refusal in the log")
    line = next(x for x in host.log(engine).splitlines() if "config not reloaded" in x)
    assert "command" in line and "Traceback" not in host.log(engine)
    assert engine.poll() is None and psutil.Process(before["keep"]).status() != psutil.STATUS_ZOMBIE
    # Said where operators look, not only in the log: one reason from the engine (--once adds none of its own).
    code, report = host.once_json()
    config_reasons = [r for r in report["snapshot"]["tray"]["reasons"] if r["subject"] == "config:file"]
    assert code == 1 and [r["code"] for r in config_reasons] == ["config_reload_refused"]
    assert "sidecar[0].command: expected a list of strings" in config_reasons[0]["text"]
    _sleepers(host, "keep")  # fixed: the next SIGHUP finds nothing to change
    engine.send_signal(signal.SIGHUP)
    wait_for(lambda: "config reloaded" in host.log(engine), what="the second reload")
    assert "nothing to change" in host.log(engine) and _sidecar_pids(host) == before  # nothing stopped, nothing lost
    assert host.once_json()[0] == 0  # the refusal is gone with the reload that applied


def test_sighup_after_a_host_section_change_asks_for_a_restart(host: Host):
    _sleepers(host, "keep", host_name="edge-1")
    engine = host.spawn("run")
    host.wait_owner(engine)
    wait_for(lambda: "keep" in _sidecar_pids(host), what="the sidecar ready")
    pid = _sidecar_pids(host)["keep"]
    _sleepers(host, "keep", host_name="edge-2")
    engine.send_signal(signal.SIGHUP)
    assert engine.wait(timeout=30) == 75  # the service manager restarts it with the new identity
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_thirty_sidecars_cost_the_engine_no_thread_each(host: Host):
    """Python 3.11's default child watcher waits for each child on a thread of its own (200 sidecars:
    201 engine threads); the engine waits by pidfd instead, so its thread count does not grow with them."""
    names = [f"s{i:02d}" for i in range(30)]
    _sleepers(host, *names)
    engine = host.spawn("run")
    host.wait_owner(engine)
    wait_for(lambda: len(_sidecar_pids(host)) == 30, what="thirty sidecars ready", timeout=60)
    assert psutil.Process(engine.pid).num_threads() < 10


def test_stop_keeps_a_working_sidecar_stopped_across_engines_until_start(host: Host):
    port = free_port()
    web_config(host, port)
    first = host.spawn("run")
    wait_for(lambda: sidecar(host).get("state") == "ready", what="web ready")
    pid = sidecar(host)["pid"]
    refused = host.run("--read-only", "stop", "sidecar:web")
    assert refused.returncode == 2 and "--read-only" in refused.stderr and group_alive(pid)

    restarted = host.run("restart", "sidecar:web")
    assert restarted.returncode == 0 and "web: restarted" in restarted.stdout, restarted.stderr
    wait_for(lambda: sidecar(host).get("state") == "ready" and sidecar(host)["pid"] != pid, what="a new web")
    assert not group_alive(pid)

    stopped = host.run("stop", "sidecar:web")
    assert stopped.returncode == 0 and "stays stopped" in stopped.stdout, stopped.stderr
    assert sidecar(host)["state"] == "stopped" and listener_pid(port) is None
    code, report = host.once_json()
    assert code == 1 and report["snapshot"]["tray"]["state"] == "paused"  # asked for: a warning, not a fault
    again = host.run("stop", "sidecar:web")
    assert again.returncode == 2 and "refused (not_applicable)" in again.stderr and "already stopped" in again.stderr

    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=15) == 0
    second = host.spawn("run")
    host.wait_owner(second)
    view = sidecar(host)
    assert view["state"] == "stopped" and view["held_by"] == "loopctl stop sidecar:web" and view["pid"] is None
    assert listener_pid(port) is None

    started = host.run("start", "sidecar:web")
    assert started.returncode == 0, started.stderr
    wait_for(lambda: sidecar(host).get("state") == "ready", what="web ready again")
    assert host.once_json()[0] == 0
