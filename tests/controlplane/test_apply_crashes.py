"""The apply's crash-point matrix, with the real engine (`loopctl run`) against the reference control plane.

For each named step the engine is SIGKILLed there (LOOPCTL_CRASH_AT, honoured only with
LOOPCTL_TESTING=1), booted again under a stand-in service manager (exit 75 means start me again),
and then: the active document and its etag agree, probation resolves (an orphaned marker is
discarded, a flipped one is cleared by the first successful poll), nothing is half-installed,
and the host ends on the served document with its plugin.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import signal
import subprocess
import sys
import time

import psutil
import pytest

from console.core.crashpoints import APPLY_POINTS, CrashPoints
from console.remote.plugins import RECORD, STAGING, installed
from console.remote.probation import Marker
from console.remote.slots import ControlState, Slots
from tests.conftest import Host, loopctl_argv, make_artifact, wait_for
from tests.controlplane.conftest import admin
from tests.controlplane.test_join import join

TOOL = b"#!/bin/sh\nexec sleep 60\n"


def sleeper(host: Host, name: str) -> dict:
    # The host's root in the command line lets the cleanup find what a SIGKILLed engine left behind.
    return {"name": name, "command": [sys.executable, "-c", "import time, sys; time.sleep(60)", str(host.root)]}


def cleanup(host: Host) -> None:
    for proc in psutil.process_iter(["cmdline", "cwd"]):
        with contextlib.suppress(psutil.Error):
            if proc.pid != 1 and (str(host.root) in " ".join(proc.info["cmdline"] or [])
                                  or str(host.root) in (proc.info["cwd"] or "")):
                proc.kill()


class Service:
    """What systemd does for the unit: start it, and start it again after exit 75."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.proc: subprocess.Popen[str] | None = None
        self.starts = 0

    def start(self, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        log = (self.host.root / f"engine-{self.starts}.log").open("w")
        self.proc = subprocess.Popen([*loopctl_argv(), "run"], env=env or self.host.env, stdout=log,
                                     stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
        self.starts += 1
        self.host.procs.append(self.proc)
        return self.proc

    def keep_up(self) -> None:
        assert self.proc is not None
        code = self.proc.poll()
        assert code in (None, 75), f"the engine exited {code}"
        if code == 75:
            self.start()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=20)

    def hung(self) -> str:
        """The task stacks of an engine that does not finish stopping (SIGUSR1 makes it log them)."""
        if self.proc is None or self.proc.poll() is not None:
            return ""
        self.proc.send_signal(signal.SIGUSR1)
        time.sleep(0.5)
        return (self.host.root / f"engine-{self.starts - 1}.log").read_text()


def report(host: Host, *, restarting: bool = False) -> dict:
    """The `--once --format json` snapshot. `restarting`: the service may be between two engines (one
    exited 75 for its staged restart, the next starting), where `--once` reports the engine as
    unavailable (UNKNOWN), which is then nothing yet rather than a failure."""
    result = host.run("--once", "--format", "json")
    answer = json.loads(result.stdout) if result.stdout else {}
    if restarting and answer.get("error", {}).get("code") == "engine_unavailable":
        return {}
    return answer["snapshot"] if answer else {}


@pytest.fixture
def joined(host: Host, plane):
    token = admin(plane, "join-tokens")["join_token"]
    assert join(host, plane, token, "--token-file", "-", "--no-daemon").returncode == 0
    config = host.config_file.read_text()
    host_id = config.split('host_id = "')[1].split('"')[0]
    assert "poll_interval_seconds = 300.0" in config  # the join answer's interval is written
    host.config_file.write_text(config.replace("poll_interval_seconds = 300.0", "poll_interval_seconds = 5"))
    yield host, host_id
    cleanup(host)


def seed_previous(host: Host) -> tuple[str, bytes]:
    """What an earlier engine left: document X applied in slot a and proven (no marker)."""
    raw = json.dumps({"poll_interval_seconds": 5, "sidecar": [sleeper(host, "alpha")]}).encode()
    etag = '"x-previous"'
    slots = Slots(host.state / "config")
    slots.write_document("a", raw)
    slots.write_etag("a", etag, raw)
    slots.flip("a")
    slots.save_state(ControlState())
    return etag, raw


def served_document(host: Host, plane: str, host_id: str) -> tuple[str, str]:
    art = make_artifact({"bin/tool": TOOL})
    url = admin(plane, "publish", name=f"tool-{host_id}.tgz", content_b64=base64.b64encode(art).decode())["url"]
    doc = {"poll_interval_seconds": 5,
           "plugin": [{"name": "tool", "version": "1.0", "source": url,
                       "artifact_hash": hashlib.sha256(art).hexdigest()}],
           "sidecar": [sleeper(host, "alpha"), {"name": "beta", "command": ["bin/tool"], "plugin": "tool"}]}
    return admin(plane, "set-config", host_id=host_id, document=doc)["etag"], hashlib.sha256(art).hexdigest()


def staging(host: Host) -> set[str]:
    return {p.name for p in (host.state / "plugins" / STAGING).glob("*")}


def check_consistent(host: Host, pin: str, leftovers: set[str]) -> None:
    slots = Slots(host.state / "config")
    name = slots.active_name()
    assert name is not None
    info, _raw = slots.read(name)
    assert info.intact, f"active slot {name} does not match its etag file"
    assert not staging(host) & leftovers, "a half-install from before the crash was left behind"
    for item in installed(host.state / "plugins"):
        assert (host.state / "plugins" / item.name / item.version / RECORD).exists()
        assert item.sha256 == pin


def settled(host: Host, service: Service, new_etag: str) -> bool:
    service.keep_up()
    rc = report(host, restarting=True).get("remote_config") or {}
    return rc.get("running_etag") == new_etag and rc.get("probation_deadline") is None and rc.get("state") == "active"


@pytest.mark.parametrize("point", APPLY_POINTS)
def test_sigkill_at_each_apply_step_then_boot_again(joined, plane, point):
    host, host_id = joined
    seed_previous(host)
    new_etag, pin = served_document(host, plane, host_id)
    service = Service(host)
    crashing = service.start(env={**host.env, "LOOPCTL_TESTING": "1", "LOOPCTL_CRASH_AT": point})
    marker_file = host.state / "crashpoint"
    wait_for(lambda: marker_file.exists() or crashing.poll() is not None, timeout=30, what=f"the engine at {point}")
    assert crashing.poll() is None, (host.root / "engine-0.log").read_text()
    assert marker_file.read_text() == point
    crashing.send_signal(signal.SIGKILL)
    crashing.wait(timeout=10)
    marker_file.unlink()
    leftovers = staging(host)

    slots = Slots(host.state / "config")
    at_crash = slots.load_state()
    service.start()  # no crash point now: the boot judges what was left
    wait_for(lambda: Slots(host.state / "config").load_state().last_boot != at_crash.last_boot, timeout=20,
             what="the engine to boot")
    boot = Slots(host.state / "config").load_state().last_boot
    flipped = point in ("after_flip", "during_restart", "during_probation")
    if point == "after_marker_write":
        assert boot.outcome == "cleared_orphan" and at_crash.marker is not None
    elif not flipped:
        assert boot.outcome == "none" and at_crash.marker is None
    else:
        assert boot.outcome == "none" and isinstance(at_crash.marker, Marker)
    check_consistent(host, pin, leftovers)
    try:
        wait_for(lambda: settled(host, service, new_etag), timeout=40, what="the served document, proven")
    except AssertionError:
        print(service.hung())
        raise
    check_consistent(host, pin, leftovers)
    assert staging(host) == set()
    snap = report(host)
    assert sorted(s["name"] for s in snap["sidecars"]) == ["alpha", "beta"]
    assert [(p["name"], p["version"], p["state"]) for p in snap["plugins"]] == [("tool", "1.0", "installed")]
    service.stop()


def test_a_crash_loop_inside_probation_rolls_back_at_boot_before_anything_starts(joined, plane):
    """The engine keeps dying under a new document; once its window has passed, the next boot rolls
    back before any component starts (the crash-loop case)."""
    host, host_id = joined
    old_etag, _ = seed_previous(host)
    new = json.dumps({"poll_interval_seconds": 5, "sidecar": [sleeper(host, "gamma")]}).encode()
    slots = Slots(host.state / "config")
    slots.write_document("b", new)
    slots.write_etag("b", '"y-crashing"', new)
    past = time.time() - 1000
    slots.save_state(ControlState(marker=Marker("b", '"y-crashing"', past, past + 120, "a", old_etag)))
    slots.flip("b")
    admin(plane, "set-config", host_id=host_id, document=None)  # the server has no remote config now
    service = Service(host)
    service.start()
    wait_for(lambda: (report(host).get("remote_config") or {}).get("running_etag") == old_etag, timeout=20,
             what="the rollback at boot")
    state = Slots(host.state / "config").load_state()
    assert state.last_boot.outcome == "rolled_back"
    assert (state.last_rollback.reason, state.bad.etag) == ("probation_expired", '"y-crashing"')
    snap = report(host)
    assert [s["name"] for s in snap["sidecars"]] == ["alpha"]  # gamma never started
    assert not any(e["name"] == "gamma" for e in snap["events"])
    text = host.run("--once").stdout
    assert "remote_config_rolled_back" in text and "probation_expired" in text
    assert host.run("--once").returncode == 1  # degraded: WARNING
    service.stop()
    offline = report(host)
    assert not offline["engine"]["running"]
    assert offline["remote_config"]["last_rollback"]["reason"] == "probation_expired"


def test_crash_points_are_ignored_without_the_testing_flag(tmp_path):
    assert CrashPoints(tmp_path, env={"LOOPCTL_CRASH_AT": "after_flip"}).armed == ""
    assert CrashPoints(tmp_path, env={"LOOPCTL_CRASH_AT": "after_flip", "LOOPCTL_TESTING": "1"}).armed == "after_flip"
    assert CrashPoints(tmp_path, env={"LOOPCTL_CRASH_AT": "nowhere", "LOOPCTL_TESTING": "1"}).armed == ""


def test_a_change_without_new_code_restarts_in_process_and_spares_unchanged_sidecars(joined, plane):
    host, host_id = joined
    etag, raw = seed_previous(host)
    admin(plane, "set-config", host_id=host_id, raw=raw.decode(), etag=etag)  # it serves what runs: 304s
    stale = host.state / "plugins" / "stale" / "0.9"  # installed once, declared by nothing now
    stale.mkdir(parents=True)
    (stale / RECORD).write_text('{"sha256": "' + "0" * 64 + '"}')
    service = Service(host)
    service.start()
    # The heartbeat path brings the host online: the reconcile wired to that transition removes it.
    wait_for(lambda: not stale.exists(), timeout=20, what="the reconcile on provisioning -> online")
    wait_for(lambda: [s["state"] for s in report(host).get("sidecars", [])] == ["ready"], timeout=20,
             what="alpha from the previous document")
    alpha = report(host)["sidecars"][0]["pid"]
    doc = {"poll_interval_seconds": 5, "sidecar": [sleeper(host, "alpha"), sleeper(host, "delta")]}
    etag = admin(plane, "set-config", host_id=host_id, document=doc)["etag"]
    wait_for(lambda: settled(host, service, etag), timeout=30, what="the new document, proven")
    wait_for(lambda: [s["state"] for s in report(host)["sidecars"]] == ["ready", "ready"], timeout=20,
             what="delta to start")
    snap = report(host)
    assert [s["name"] for s in snap["sidecars"]] == ["alpha", "delta"]
    assert snap["sidecars"][0]["pid"] == alpha  # unchanged: not restarted
    assert service.starts == 1 and service.proc.poll() is None  # no exit 75: no code changed
    service.stop()
    offline = report(host)["remote_config"]  # read from disk now: the engine is gone
    assert offline["running_etag"] == etag and offline["last_apply"]["result"] == "applied"
