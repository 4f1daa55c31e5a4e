"""Runs under real `loopctl run` engines: the orphan of a SIGKILLed engine is reaped; CLI cancel."""

from __future__ import annotations

import signal
import sys
import textwrap

import psutil

from console.core.processes import group_alive
from tests.conftest import Host, wait_for

AGENT = """
import subprocess, sys, time
subprocess.Popen(["sleep", "300"])  # a member of the run's process group
print("working", flush=True)
time.sleep(300)
"""


def loop_config(host: Host) -> None:
    agent = host.root / "agent.py"
    agent.write_text(textwrap.dedent(AGENT))
    host.write_config(textwrap.dedent(f"""
        [[loop]]
        id = "worker"
        command = ["{sys.executable}", "{agent}"]
        interval_seconds = 3600
    """))


def runs(host: Host) -> list[dict]:
    _code, report = host.once_json()
    return report["snapshot"]["runs"]


def running(host: Host) -> dict | None:
    return next((r for r in runs(host) if r["status"] == "running" and r["pid"]), None)


def test_the_orphaned_group_of_a_killed_engine_is_reaped_and_retried_once(host: Host):
    loop_config(host)
    first = host.spawn("run")
    wait_for(lambda: running(host), what="a running run")
    run = running(host)
    leader = run["pid"]
    members = [p.pid for p in psutil.process_iter() if p.pid != leader and _pgid(p.pid) == leader]
    assert members, "the agent's group member did not start"
    first.send_signal(signal.SIGKILL)
    first.wait()
    psutil.Process(leader).kill()  # the run's own process dies with the engine gone: only its group remains
    wait_for(lambda: not psutil.pid_exists(leader) or psutil.Process(leader).status() == psutil.STATUS_ZOMBIE,
             what="the leader to die")
    assert group_alive(leader)

    second = host.spawn("run")
    host.wait_owner(second)
    wait_for(lambda: any(r["id"] == run["id"] and r["status"] == "failed" for r in runs(host)), what="reaped")
    lost = next(r for r in runs(host) if r["id"] == run["id"])
    assert lost["stop_reason"] == "process_lost" and lost["error_code"] == "process_lost"
    assert f"its process group {leader} still had 1 process(es) running: terminated" in lost["error_text"]
    assert not group_alive(leader)
    retry = next(r for r in runs(host) if r["retry_of_run_id"] == run["id"])
    assert retry["process_loss_retry_count"] == 1


def test_cancel_over_the_cli_ends_the_run_and_its_group(host: Host):
    loop_config(host)
    host.spawn("run")
    wait_for(lambda: running(host), what="a running run")
    wait_for(lambda: "working" in (host.state / "runs" / running(host)["id"] / "output.log").read_text(),
             what="the agent to be up")
    run = running(host)
    short = run["id"][-8:]  # as the console's Runs table shows it
    result = host.run("cancel", f"run:{short}")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"cancel run:{short}: run {run['id']} cancelled: its process group was " \
                                    f"ended (cancelled)"
    assert not group_alive(run["pid"])
    done = next(r for r in runs(host) if r["id"] == run["id"])
    assert (done["status"], done["stop_reason"]) == ("cancelled", "cancelled")
    again = host.run("cancel", f"run:{run['id']}")
    assert again.returncode == 2 and "already finished (cancelled)" in again.stderr


def _pgid(pid: int) -> int | None:
    import os

    try:
        return os.getpgid(pid)
    except OSError:
        return None


def test_trigger_pause_and_resume_over_the_cli_hold_across_engines(host: Host):
    loop_config(host)  # interval an hour; its agent runs until ended
    first = host.spawn("run")
    wait_for(lambda: running(host), what="a running run")
    run = running(host)
    refused = host.run("trigger", "loop:worker")
    assert refused.returncode == 2 and "one run at a time" in refused.stderr
    assert host.run("--read-only", "pause", "loop:worker").returncode == 2 and group_alive(run["pid"])

    paused = host.run("pause", "loop:worker")
    assert paused.returncode == 0 and "ended (stop reason paused)" in paused.stdout, paused.stderr
    done = next(r for r in runs(host) if r["id"] == run["id"])
    assert (done["status"], done["stop_reason"]) == ("cancelled", "paused") and not group_alive(run["pid"])
    code, report = host.once_json()
    loop = report["snapshot"]["loops"][0]
    assert loop["held_by"] == "loopctl pause loop:worker" and loop["state"] == "active"
    assert code == 1 and report["snapshot"]["tray"]["state"] == "paused"
    assert host.run("trigger", "loop:worker").returncode == 2

    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=15) == 0
    second = host.spawn("run")
    host.wait_owner(second)
    assert running(host) is None and len(runs(host)) == 1  # still paused under the next engine

    resumed = host.run("resume", "loop:worker")
    assert resumed.returncode == 0, resumed.stderr
    wait_for(lambda: running(host), what="a run after resume")
    assert len(runs(host)) == 2
