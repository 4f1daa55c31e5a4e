"""`loopctl demo --once`: every designed state within a bounded time, WARNING, and nothing left running."""

from __future__ import annotations

import re
import subprocess

import psutil

from tests.conftest import loopctl_argv, wait_for


def survivors(marker: str) -> list[str]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if any(marker in arg for arg in proc.info["cmdline"] or []):
                found.append(" ".join(proc.info["cmdline"]))
        except psutil.Error:
            continue
    return found


def end_survivors(marker: str) -> None:
    """After a failed test only: kill what a broken demo left, so one failure does not leak into the next."""
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if any(marker in arg for arg in proc.info["cmdline"] or []):
                proc.kill()
        except psutil.Error:
            continue


def test_the_demo_shows_every_state_then_ends_every_process(tmp_path):
    root = tmp_path / "demo"
    result = subprocess.run([*loopctl_argv(), "demo", "--once", "--state-dir", str(root)], capture_output=True,
                            text=True, timeout=150, check=False, stdin=subprocess.DEVNULL)
    out = result.stdout
    assert "not every designed state" not in result.stderr, result.stderr
    assert result.returncode == 1 and out.startswith("LOOPCTL WARNING - degraded: agent-monitor: port ")
    assert "port_conflict [sidecar:agent-monitor]" in out and "(foreign)" in out  # names the holder
    assert "web              ready" in out
    assert "loop_escalated [loop:triage]" in out and "continuation attempts exhausted" in out
    assert "loop_finalized [loop:ci-bot]" in out and "heartbeat unauthorized" in out
    # the probation timer runs: a real time left on the demo's update, not a placeholder
    assert "remote_config_probation" in out
    assert re.search(r'probation +"[^"]+" until [\d-]+ [\d:]+ \(\d+[dhms](\d\d[hms])? left\)', out), out
    assert 'last rollback  "demo-b" -> "demo-a"' in out and "probation_expired (rolled_back)" in out
    assert "repo-tools 2.4.1 (installed)" in out
    events = subprocess.run([*loopctl_argv(), "--once", "--format", "json", "--state-dir", str(root / "state"),
                             "--config", str(root / "loopctl.toml")], capture_output=True, text=True, timeout=30,
                            check=False).stdout
    assert "revived by proof of possession" in events
    assert '"stop_reason": "process_lost"' in events and '"stop_reason": "timeout"' in events
    assert '"liveness": "advanced"' in events and '"liveness": "plan_only"' in events
    refresh = (root / "state" / "secrets" / "refresh_token").read_text()
    assert refresh not in out and refresh not in events
    # The control plane, the foreign listener, sidecars and runs all name the demo's directory.
    assert survivors(str(root)) == []


def test_under_timeout_beside_a_bystander_in_its_group_the_demo_exits_1_and_ends_only_its_own(tmp_path):
    """`timeout 170 loopctl demo --once`, from a Python parent: loopctl shares this test's process group.
    A bystander of that group, started after the demo and naming its directory (as the `timeout` parent
    does), is neither the demo's to end nor a reason to fail: before, the sweep hit the signal guard
    (RefusedSignal, exit 3), or killed a bystander outside the group."""
    import sys

    root = tmp_path / "demo"
    demo = subprocess.Popen(["timeout", "170", *loopctl_argv(), "demo", "--once", "--state-dir", str(root)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    sleeper = [sys.executable, "-c", "import time; time.sleep(120)", str(root)]
    wait_for((root / "state").exists, 60, "the demo under way")
    in_group = subprocess.Popen(sleeper, process_group=demo.pid)  # timeout leads the group loopctl is in
    outside = subprocess.Popen(sleeper, start_new_session=True)
    try:
        out, err = demo.communicate(timeout=160)
        assert demo.returncode == 1, err
        assert out.startswith("LOOPCTL WARNING"), out
        assert in_group.poll() is None and outside.poll() is None, "the demo ended a process it did not start"
        bystanders = {" ".join(p.args) for p in (in_group, outside)}
        assert [s for s in survivors(str(root)) if s not in bystanders] == []
    finally:
        for proc in (in_group, outside):
            proc.kill()
            proc.wait()
        if demo.poll() is None:
            demo.kill()
            demo.wait()
        end_survivors(str(root))
