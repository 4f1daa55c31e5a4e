"""Crash and restart with the real engine (`loopctl run`): SIGKILL at the moment in question, boot
again, and the promises hold: one live run per loop whoever started it, a run spawned but never
recorded is found and adopted (never spawned again), no sidecar process is left untracked."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap

import psutil
import pytest

from tests.conftest import Host, gone, loopctl_argv, wait_for

# Each run records who it is and which other runs of its loop were alive as it began, then waits for
# its own release file (written by the test) before it hands off and exits.
AGENT = """
import json, os, sys, time
import psutil
me, loop, run = os.getpid(), os.environ["LOOPCTL_LOOP_ID"], os.environ["LOOPCTL_RUN_ID"]
others = []
for proc in psutil.process_iter(["pid"]):
    try:
        env = proc.environ()
    except psutil.Error:
        continue
    if proc.pid != me and env.get("LOOPCTL_LOOP_ID") == loop and env.get("LOOPCTL_RUN_ID") != run \
            and env.get("LOOPCTL_HOME") == os.environ["LOOPCTL_HOME"]:  # this host's: others run loops too
        others.append(env.get("LOOPCTL_RUN_ID"))
with open(sys.argv[1], "a") as log:
    log.write(json.dumps({"run": run, "pid": me, "others": others}) + "\\n")
release = os.path.join(sys.argv[2], run)
while not os.path.exists(release):
    time.sleep(0.02)
with open(os.environ["LOOPCTL_HANDOFF"], "w") as f:
    json.dump({"summary": "did it", "evidence": {"files_changed": ["a.py"]}}, f)
"""


class Rig:
    def __init__(self, host: Host) -> None:
        self.host = host
        self.seen_file = host.root / "seen.jsonl"
        self.release = host.root / "release"
        self.release.mkdir()
        agent = host.root / "agent.py"
        agent.write_text(textwrap.dedent(AGENT))
        command = [sys.executable, str(agent), str(self.seen_file), str(self.release)]
        host.write_config(f"[[loop]]\nid = \"docs\"\ncommand = {json.dumps(command)}\ninterval_seconds = 0\n")
        self.engines: list[subprocess.Popen[str]] = []

    def start(self, **env: str) -> subprocess.Popen[str]:
        log = (self.host.root / f"engine-{len(self.engines)}.log").open("w")
        proc = subprocess.Popen([*loopctl_argv(), "run"], env={**self.host.env, **env}, stdout=log,
                                stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
        self.engines.append(proc)
        self.host.procs.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen[str]) -> None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    @property
    def seen(self) -> list[dict]:
        if not self.seen_file.exists():
            return []
        return [json.loads(line) for line in self.seen_file.read_text().splitlines()]

    def runs(self) -> dict[str, dict]:
        _code, report = self.host.once_json()
        return {r["id"]: r for r in report["snapshot"]["runs"]}  # type: ignore[index]

    def live_agents(self) -> list[str]:
        """Run ids of the live processes of loop docs (scanned by LOOPCTL_LOOP_ID), this host's only."""
        found = []
        for proc in psutil.process_iter(["pid"]):
            with contextlib.suppress(psutil.Error):
                env = proc.environ()
                if env.get("LOOPCTL_LOOP_ID") == "docs" and env.get("LOOPCTL_HOME") == str(self.host.state) \
                        and proc.status() != psutil.STATUS_ZOMBIE:
                    found.append(env.get("LOOPCTL_RUN_ID", "?"))
        return found

    def cleanup(self) -> None:
        for proc in psutil.process_iter(["pid"]):
            with contextlib.suppress(psutil.Error):
                if proc.environ().get("LOOPCTL_HOME") == str(self.host.state) and proc.pid != os.getpid():
                    proc.kill()


@pytest.fixture
def rig(host: Host):
    r = Rig(host)
    yield r
    for proc in r.engines:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=15)
    r.cleanup()


def test_a_run_alive_from_a_killed_engine_is_the_only_one_and_cancel_ends_its_group(rig: Rig):
    first = rig.start()
    wait_for(lambda: len(rig.seen) == 1, 20, "the first run")
    [a] = rig.seen
    rig.kill(first)  # the agent, in its own session, runs on
    second = rig.start()
    rig.host.wait_owner(second)
    wait_for(lambda: rig.runs()[a["run"]].get("error_code") == "process_detached", 15, "the run adopted")
    assert rig.live_agents() == [a["run"]]
    result = rig.host.run("cancel", f"run:{a['run']}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert gone(a["pid"])
    wait_for(lambda: rig.runs()[a["run"]]["status"] == "cancelled", 15, "the adopted run settled")
    assert rig.runs()[a["run"]]["stop_reason"] == "cancelled"
    # The scheduler goes on once the adopted run has ended, and only then.
    wait_for(lambda: len(rig.seen) == 2, 20, "the next run")
    b = rig.seen[1]
    assert b["run"] != a["run"] and b["others"] == []


def test_a_run_spawned_but_not_recorded_is_adopted_never_spawned_again(rig: Rig):
    first = rig.start(LOOPCTL_TESTING="1", LOOPCTL_CRASH_AT="run_after_spawn")
    wait_for((rig.host.state / "crashpoint").exists, 20, "the engine at the spawn")
    wait_for(lambda: len(rig.seen) == 1, 20, "the spawned agent up")
    rig.kill(first)
    [a] = rig.seen
    second = rig.start()
    rig.host.wait_owner(second)
    wait_for(lambda: rig.runs()[a["run"]].get("pid") == a["pid"], 15, "the spawned process found by its run id")
    assert rig.live_agents() == [a["run"]]
    (rig.release / a["run"]).touch()
    wait_for(lambda: rig.runs()[a["run"]]["status"] == "succeeded", 20, "the adopted run settled")
    run = rig.runs()[a["run"]]
    assert (run["stop_reason"], run["liveness"]) == ("completed", "advanced")
    wait_for(lambda: len(rig.seen) == 2, 20, "the next run")
    ids = [s["run"] for s in rig.seen]
    assert len(set(ids)) == 2, f"a run was spawned twice: {ids}"
    assert rig.seen[1]["others"] == []


def test_a_run_recorded_but_never_spawned_is_lost_once_and_retried(rig: Rig):
    """The other side of the window: the intent is on record, no process carries the run id."""
    from console.core.fake_clock import FakeClock
    from console.core.store import RUN_KIND, Store
    from console.runs.ledger import RunIds, queue_run

    rig.host.state.mkdir(parents=True, exist_ok=True)
    store = Store.open(rig.host.state / "loopctl.db", FakeClock())
    run_id = RunIds().new(store.clock.time())
    queue_run(store, run_id, "docs", "scheduled")
    store.transition(RUN_KIND, run_id, "running", "spawning", {"loop": "docs"}, columns={"session_token": run_id})
    store.close()
    engine = rig.start()
    rig.host.wait_owner(engine)
    wait_for(lambda: len(rig.seen) == 1, 20, "the process-loss retry")
    assert rig.seen[0]["run"] != run_id
    lost = rig.runs()[run_id]
    assert (lost["status"], lost["stop_reason"]) == ("failed", "process_lost")
    assert "no process leads a group with its run id" in lost["error_text"]


def sidecars_config(rig: Rig, *names: str) -> None:
    """Process-health sidecars (no port: a second copy could run beside the first unnoticed)."""
    body = "".join(f"[[sidecar]]\nname = \"{name}\"\ncommand = {json.dumps([sys.executable, '-c', SLEEPER])}\n\n"
                   for name in names)
    rig.host.write_config(body)


SLEEPER = "import time\nwhile True: time.sleep(60)"


def sidecar_processes(rig: Rig) -> dict[int, str]:
    """pid -> session token of every live sidecar process of this host (scanned by its environment)."""
    found = {}
    for proc in psutil.process_iter(["pid"]):
        with contextlib.suppress(psutil.Error):
            env = proc.environ()
            if env.get("LOOPCTL_HOME") == str(rig.host.state) and "LOOPCTL_SIDECAR_TOKEN" in env \
                    and proc.status() != psutil.STATUS_ZOMBIE:
                found[proc.pid] = env["LOOPCTL_SIDECAR_TOKEN"]
    return found


def pidfile_pids(rig: Rig) -> dict[str, int]:
    return {p.stem: json.loads(p.read_text())["pid"] for p in (rig.host.state / "sidecars").glob("*.pid")}


def sidecar_state(rig: Rig, name: str) -> str | None:
    _code, report = rig.host.once_json()
    return next((s["state"] for s in report["snapshot"]["sidecars"] if s["name"] == name), None)  # type: ignore[index]


def test_untracked_sidecars_are_found_by_their_token_and_reclaimed_at_boot(rig: Rig):
    """Two ways a sidecar process outlives what records it: dropped from the config while the engine was
    dead, and spawned by an engine killed before its PID file was written. Each boot reclaims them."""
    sidecars_config(rig, "web", "extra")
    first = rig.start()
    rig.host.wait_owner(first)
    wait_for(lambda: sidecar_state(rig, "extra") == "ready" and sidecar_state(rig, "web") == "ready", 20, "ready")
    extra = pidfile_pids(rig)["extra"]
    rig.kill(first)
    sidecars_config(rig, "web")  # extra dropped while no engine runs
    second = rig.start(LOOPCTL_TESTING="1", LOOPCTL_CRASH_AT="sidecar_after_spawn")
    wait_for((rig.host.state / "crashpoint").exists, 20, "the engine at web's spawn")
    assert gone(extra), "the sidecar dropped from the config runs on"
    assert "extra" not in pidfile_pids(rig)
    untracked = [pid for pid in sidecar_processes(rig) if pid not in pidfile_pids(rig).values()]
    assert len(untracked) == 1, sidecar_processes(rig)  # web's new process, which no PID file names yet
    rig.kill(second)
    (rig.host.state / "crashpoint").unlink()
    third = rig.start()
    rig.host.wait_owner(third)
    wait_for(lambda: sidecar_state(rig, "web") == "ready", 20, "web ready")
    wait_for(lambda: gone(untracked[0]), 10, "the untracked sidecar ended")
    live = sidecar_processes(rig)
    assert list(live) == [pidfile_pids(rig)["web"]], f"sidecar processes {live}, PID files {pidfile_pids(rig)}"
    _code, report = rig.host.once_json()
    reasons = [e["reason"] for e in report["snapshot"]["events"] if e["kind"] == "sidecar"]  # type: ignore[index]
    assert any("reclaimed at boot" in r and "no longer in the config" in r for r in reasons), reasons
