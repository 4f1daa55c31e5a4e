"""The real `loopctl` executable inside tmux, driven with send-keys and read with capture-pane:
an operator cancels a running run."""

from __future__ import annotations

import json
import shutil
import subprocess
import time

import pytest

from console.engine.procs import group_alive
from tests.conftest import Host, loopctl_argv, wait_for
from tests.test_cli_runs import loop_config


@pytest.fixture
def tmux(tmp_path):
    assert shutil.which("tmux"), "tmux is required for this test (.ci/run installs it)"
    socket = f"loopctl-test-{tmp_path.name}"

    def run(*args: str) -> str:
        return subprocess.run(["tmux", "-L", socket, *args], capture_output=True, text=True, check=True).stdout

    yield run
    subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, check=False)


def test_an_operator_cancels_a_running_run_from_the_console(host: Host, tmux):
    loop_config(host)  # one loop whose agent keeps a member of its process group running
    env = " ".join(f"{k}={v}" for k, v in host.env.items() if k in ("LOOPCTL_HOME", "XDG_CONFIG_HOME", "HOME", "PATH"))
    tmux("new-session", "-d", "-s", "console", "-x", "120", "-y", "40", f"env {env} {' '.join(loopctl_argv())}")

    def screen() -> str:
        return tmux("capture-pane", "-p", "-t", "console")

    def running_run() -> dict | None:
        _code, report = host.once_json()
        return next((r for r in report["snapshot"]["runs"] if r["status"] == "running"), None)

    wait_for(lambda: "owner" in screen(), timeout=20, what="the console to own the host")
    wait_for(running_run, timeout=20, what="a running run")
    run = running_run()
    wait_for(lambda: "working" in (host.state / "runs" / run["id"] / "output.log").read_text(), what="agent up")
    tmux("send-keys", "-t", "console", "4")
    wait_for(lambda: run["id"] in screen() and "running" in screen(), what="the run on the Runs tab")
    tmux("send-keys", "-t", "console", "c")
    wait_for(lambda: f"Cancel run:{run['id']}?" in screen(), what="the confirmation")
    tmux("send-keys", "-t", "console", "y")
    wait_for(lambda: (r := _run(host, run["id"])) is not None and r["status"] == "cancelled", what="cancelled")
    assert _run(host, run["id"])["stop_reason"] == "cancelled"
    assert not group_alive(run["pid"])
    wait_for(lambda: "cancelled" in screen(), what="the console to show it")
    tmux("send-keys", "-t", "console", "q")
    wait_for(lambda: not (host.state / "engine.sock").exists(), what="the console's engine to stop")


def _run(host: Host, run_id: str) -> dict | None:
    _code, report = host.once_json()
    return next((r for r in report["snapshot"]["runs"] if r["id"] == run_id), None)


def test_json_report_is_available_while_the_console_owns_the_host(host: Host, tmux):
    env = " ".join(f"{k}={v}" for k, v in host.env.items() if k in ("LOOPCTL_HOME", "XDG_CONFIG_HOME", "HOME", "PATH"))
    start = time.monotonic()
    tmux("new-session", "-d", "-s", "console", "-x", "80", "-y", "24", f"env {env} {' '.join(loopctl_argv())}")
    wait_for(lambda: "OK" in tmux("capture-pane", "-p", "-t", "console"), timeout=20, what="the first frame")
    assert time.monotonic() - start < 20
    code, report = host.once_json()
    assert code == 0 and report["snapshot"]["engine"]["source"] == "owner"
    assert json.dumps(report).count("nothing_configured") == 1
