"""Sidecar supervision with real child processes on 127.0.0.1 and the fake clock for every timer
(backoff, stability, ready timeout, stop grace)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from console.core.actions import ActionError, Target
from console.core.config import SidecarConfig
from console.core.fake_clock import FakeClock
from console.core.processes import group_alive
from console.core.store import Store
from console.readmodel.snapshot import EngineView, HostView, compose
from console.readmodel.tray import Level
from console.sidecars.supervisor import Supervisor
from tests.conftest import drive, execed, free_port, http_server

DEFAULT_STEP = 0.05

PY = sys.executable


def script(tmp: Path, name: str, body: str) -> list[str]:
    path = tmp / f"{name}.py"
    path.write_text(textwrap.dedent(body))
    return [PY, str(path)]


@dataclass
class Rig:
    tmp: Path
    clock: FakeClock
    store: Store
    changes: list[int] = field(default_factory=list)
    made: list[Supervisor] = field(default_factory=list)

    def supervisor(self, *cfgs: SidecarConfig) -> Supervisor:
        sup = Supervisor(list(cfgs), directory=self.tmp / "sidecars", store=self.store, clock=self.clock,
                         on_change=lambda: self.changes.append(1))
        self.made.append(sup)
        return sup

    async def drive(self, until, *, step: float = DEFAULT_STEP, timeout: float = 30.0, what: str = "a state"):
        await drive(self.clock, until, step=step, timeout=timeout, what=what)

    def events(self, name: str) -> list[tuple[str | None, str]]:
        return [(e.previous, e.new) for e in reversed(self.store.recent_events(500)) if e.name == name]



def state(sup: Supervisor, name: str):
    return sup.runners[name].view()


async def test_a_healthy_sidecar_becomes_ready_with_a_pid_file_and_output(rig):
    port = free_port()
    sup = rig.supervisor(SidecarConfig(name="web", command=http_server(port), port=port,
                                       health=f"http://127.0.0.1:{port}/"))
    await sup.start()
    await rig.drive(lambda: state(sup, "web").state == "ready", what="ready")
    view = state(sup, "web")
    pidfile = rig.tmp / "sidecars" / "web.pid"
    assert view.pid and pidfile.exists() and f'"pid": {view.pid}' in pidfile.read_text()
    assert os.getpgid(view.pid) == view.pid != os.getpgrp()  # its own process group
    assert rig.events("web") == [(None, "starting"), ("starting", "ready")]
    await rig.drive(lambda: any("GET /" in line for line in state(sup, "web").output_tail), what="output")


async def test_a_crash_loop_ends_failed_with_the_attempt_count(rig):
    # Readiness is a real listener (tcp), so fake time racing ahead can never call a crash "ready".
    cmd = script(rig.tmp, "crash", "import sys\nprint('fatal: config missing', flush=True)\nsys.exit(3)\n")
    sup = rig.supervisor(SidecarConfig(name="crashy", command=cmd, port=free_port(), max_restarts=2))
    await sup.start()
    await rig.drive(lambda: state(sup, "crashy").state == "failed", step=0.25, what="failed")
    view = state(sup, "crashy")
    assert view.reason == "crash_loop" and view.attempts == 3
    assert view.restarts == 2  # three failed starts are the first start and both restarts it was allowed
    assert view.reason_text == "exited with code 3: fatal: config missing (gave up after 3 failed starts)"
    assert "loopctl retry sidecar:crashy" in view.action
    assert rig.events("crashy") == [(None, "starting"), ("starting", "backoff"), ("backoff", "starting"),
                                    ("starting", "backoff"), ("backoff", "starting"), ("starting", "failed")]
    # latched: time passing does not relaunch it
    rig.clock.advance(600)
    await asyncio.sleep(0.05)
    assert state(sup, "crashy").state == "failed"


async def test_backoff_waits_on_the_clock_between_restarts(rig):
    cmd = script(rig.tmp, "crash", "import sys; sys.exit(1)\n")
    sup = rig.supervisor(SidecarConfig(name="c", command=cmd, port=free_port(), max_restarts=5))
    await sup.start()
    # restart 1 is immediate, restart 2 waits 1 s of (fake) time: without the clock it never comes
    await rig.drive(lambda: state(sup, "c").attempts == 2, what="second failure")
    view = state(sup, "c")
    assert view.state == "backoff" and view.next_retry_at == pytest.approx(rig.clock.time() + 1.0, abs=0.06)
    assert view.restarts == 2  # the one this backoff has scheduled counts
    await asyncio.sleep(0.3)
    assert state(sup, "c").attempts == 2  # real time alone does not move it


def listen_on_third_run(tmp: Path, port: int) -> list[str]:
    """Exits 1 on its first two runs; from the third on it listens on `port` and stays up."""
    counter = tmp / "runs"
    return script(tmp, "flaky", f"""
        import pathlib, socket, sys, time
        p = pathlib.Path({str(counter)!r})
        n = int(p.read_text()) if p.exists() else 0
        p.write_text(str(n + 1))
        if n < 2:
            sys.exit(1)
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", {port})); s.listen()
        time.sleep(120)
    """)


async def test_stability_resets_the_restart_count(rig):
    port = free_port()
    sup = rig.supervisor(SidecarConfig(name="flaky", command=listen_on_third_run(rig.tmp, port), port=port,
                                       max_restarts=5))
    await sup.start()
    await rig.drive(lambda: state(sup, "flaky").state == "ready", what="ready after two failures")
    assert state(sup, "flaky").attempts == 2
    rig.changes.clear()
    rig.clock.advance(4.9)
    await asyncio.sleep(0.05)
    assert state(sup, "flaky").attempts == 2
    rig.clock.advance(0.2)
    for _ in range(200):  # the woken watcher runs on the loop's next turns: real time, the clock stays put
        if state(sup, "flaky").attempts == 0:
            break
        await asyncio.sleep(0.01)
    assert state(sup, "flaky").attempts == 0
    assert rig.changes, "the reset was not announced to watchers"


async def test_the_stability_window_counts_from_ready_even_if_the_loop_is_late(rig):
    """Time that passes between the state turning ready and the watcher's next turn still counts."""
    port = free_port()
    sup = rig.supervisor(SidecarConfig(name="flaky", command=listen_on_third_run(rig.tmp, port), port=port,
                                       max_restarts=5))
    await sup.start()
    runner = sup.runners["flaky"]
    seen = []
    original = runner._set

    def set_and_advance(gen, state_name, *rest):
        changed = original(gen, state_name, *rest)
        if state_name == "ready" and not seen:
            seen.append(True)
            # Queued ahead of the stability timer's first step: time passes before that timer runs.
            asyncio.get_running_loop().call_soon(rig.clock.advance, 5.1)
        return changed

    runner._set = set_and_advance
    await rig.drive(lambda: state(sup, "flaky").state == "ready", what="ready after two failures")
    for _ in range(200):
        if state(sup, "flaky").attempts == 0:
            break
        await asyncio.sleep(0.01)
    assert state(sup, "flaky").attempts == 0  # 5.1 s had passed since ready: stable


async def test_a_foreign_listener_ends_in_port_conflict_naming_it_and_is_never_touched(rig):
    port = free_port()
    foreign = subprocess.Popen([PY, "-c", textwrap.dedent(f"""
        import socket, time
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", {port})); s.listen(); print("listening", flush=True); time.sleep(120)
    """)], stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert foreign.stdout.readline().strip() == "listening"
        sup = rig.supervisor(SidecarConfig(name="agent-monitor", command=http_server(port), port=port,
                                           max_restarts=2))
        await sup.start()
        await rig.drive(lambda: state(sup, "agent-monitor").state == "failed", step=0.25, what="failed")
        view = state(sup, "agent-monitor")
        assert view.reason == "port_conflict"
        assert view.holder is not None and view.holder.pid == foreign.pid and view.holder.ours is False
        assert f"port {port} is held by python" in view.reason_text
        assert f"pid {foreign.pid} (foreign)" in view.reason_text
        assert f"free port {port} (stop pid {foreign.pid})" in view.action
        assert foreign.poll() is None, "the foreign listener was signalled"
        snap = compose(now=1.0, host=HostView("h", "/s", "/c", True, 1), engine=EngineView(True, "owner"),
                       things=[], events=[], sidecars=sup.views())
        assert snap.tray.state is Level.DEGRADED and snap.tray.top.code == "port_conflict"
        assert snap.tray.top.text.startswith(f"agent-monitor: port {port} is held by python")
    finally:
        foreign.kill()
        foreign.wait()


async def test_without_port_or_url_ready_means_still_up_after_the_settle_time(rig):
    sup = rig.supervisor(SidecarConfig(name="worker", command=["sleep", "60"]))
    await sup.start()
    await rig.drive(lambda: state(sup, "worker").pid is not None, step=0.0, what="spawned")
    began = rig.clock.monotonic()
    for _ in range(9):
        rig.clock.advance(0.1)
        await asyncio.sleep(0.01)
    assert state(sup, "worker").state == "starting"
    await rig.drive(lambda: state(sup, "worker").state == "ready", what="ready")
    assert rig.clock.monotonic() - began >= 1.0


async def test_a_missing_program_is_a_spawn_error(rig):
    sup = rig.supervisor(SidecarConfig(name="ghost", command=["/nonexistent/bin/ghost"], max_restarts=0))
    await sup.start()
    await rig.drive(lambda: state(sup, "ghost").state == "failed", what="failed")
    view = state(sup, "ghost")
    assert view.reason == "spawn_error" and "cannot start '/nonexistent/bin/ghost'" in view.reason_text
    assert not (rig.tmp / "sidecars" / "ghost.pid").exists()


async def test_not_healthy_in_time_is_a_ready_timeout_and_the_process_is_ended(rig):
    port = free_port()  # nothing will listen there
    sup = rig.supervisor(SidecarConfig(name="slow", command=["sleep", "60"], port=port, health="tcp",
                                       ready_timeout_seconds=3, max_restarts=0))
    await sup.start()
    await rig.drive(lambda: state(sup, "slow").pid is not None, what="spawned")
    pid = state(sup, "slow").pid
    await rig.drive(lambda: state(sup, "slow").state == "failed", step=0.1, what="failed")
    assert state(sup, "slow").reason == "ready_timeout"
    assert "not healthy within 3 s (check: tcp)" in state(sup, "slow").reason_text
    assert not group_alive(pid)
    assert not (rig.tmp / "sidecars" / "slow.pid").exists()


async def test_stop_terms_the_group_waits_the_grace_then_kills(rig):
    cmd = script(rig.tmp, "stubborn", """
        import signal, subprocess, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        subprocess.Popen(["sleep", "120"])  # a member of the same group
        print("up", flush=True)
        time.sleep(120)
    """)
    sup = rig.supervisor(SidecarConfig(name="stubborn", command=cmd, stop_grace_seconds=2))
    await sup.start()
    await rig.drive(lambda: "up" in state(sup, "stubborn").output_tail, step=0.0, what="up")
    await rig.drive(lambda: state(sup, "stubborn").state == "ready", what="ready")
    pid = state(sup, "stubborn").pid
    stopping = asyncio.ensure_future(sup.runners["stubborn"].stop("operator stop"))
    await asyncio.sleep(0.3)
    assert not stopping.done() and group_alive(pid)  # SIGTERM ignored; the grace is on the fake clock
    await rig.drive(stopping.done, step=0.5, what="stopped")
    assert not group_alive(pid)
    assert not (rig.tmp / "sidecars" / "stubborn.pid").exists()
    assert rig.events("stubborn")[-2:] == [("ready", "stopping"), ("stopping", "stopped")]


async def test_a_superseded_launch_cannot_write_over_a_newer_one(rig):
    port = free_port()
    sup = rig.supervisor(SidecarConfig(name="never", command=["sleep", "60"], port=port, health="tcp"))
    runner = sup.runners["never"]
    await sup.start()
    await rig.drive(lambda: runner.view().pid is not None, what="spawned")
    old = runner.generation
    stopping = asyncio.ensure_future(runner.stop("operator stop"))
    await rig.drive(stopping.done, what="stopped")
    # The old launch's child exited during the stop: its loop would call that a crash. It must not land.
    assert runner.state == "stopped"
    assert rig.events("never")[-1] == ("stopping", "stopped")
    assert "backoff" not in [new for _prev, new in rig.events("never")]
    # And a late outcome from the old generation is refused outright.
    assert runner._set(old, "ready", "", "late probe answer") is False
    assert runner.state == "stopped" and rig.store.thing("sidecar", "never").state == "stopped"


async def test_retry_clears_the_latch_and_relaunches(rig):
    port = free_port()
    sup = rig.supervisor(SidecarConfig(name="w", command=listen_on_third_run(rig.tmp, port), port=port,
                                       max_restarts=1))
    await sup.start()
    await rig.drive(lambda: state(sup, "w").state == "failed", what="failed")
    with pytest.raises(ActionError) as info:
        await sup.reclaim(Target("sidecar", "nope"))
    assert info.value.code == "unknown_target"
    result = await sup.retry(Target("sidecar", "w"))
    assert result["previous"] == "failed" and "relaunching" in result["message"]
    await rig.drive(lambda: state(sup, "w").state == "ready", what="ready after retry")
    with pytest.raises(ActionError) as refused:
        await sup.retry(Target("sidecar", "w"))
    assert refused.value.code == "not_applicable" and "is ready, not failed" in refused.value.message
    with pytest.raises(ActionError) as running:
        await sup.reclaim(Target("sidecar", "w"))
    assert running.value.code == "not_applicable" and "running under this engine" in running.value.message


async def test_a_pid_file_naming_the_engines_own_group_is_stale_and_the_sidecar_launches(rig):
    from console.core.processes import boot_time, identify
    from console.sidecars.pidfile import PidRecord, write_pidfile

    directory = rig.tmp / "sidecars"
    directory.mkdir()
    me = identify(os.getpid())
    write_pidfile(directory / "w.pid", PidRecord(os.getpid(), os.getpgrp(), "x", me.create_time, me.cmdline,
                                                 boot_time(), 0.0))
    sup = rig.supervisor(SidecarConfig(name="w", command=["sleep", "60"]))
    await sup.start()
    await rig.drive(lambda: state(sup, "w").state == "ready", what="ready")  # was failed: RefusedSignal each try
    assert state(sup, "w").last_reclaim.startswith("stale_pidfile: ") and "engine's own" in state(sup, "w").last_reclaim


async def test_a_sidecar_process_no_runner_launched_is_reclaimed_after_a_reconfigure(rig):
    """What an earlier engine spawned and never recorded: found by this host's session prefix."""
    from console.sidecars.reclaim import TOKEN_VARIABLE

    sup = rig.supervisor(SidecarConfig(name="w", command=["sleep", "60"]))
    await sup.start()
    await rig.drive(lambda: state(sup, "w").state == "ready", what="ready")
    ghost = execed(subprocess.Popen(["sleep", "61"], start_new_session=True,
                                    env={**os.environ, TOKEN_VARIABLE: f"{sup.prefix}:gone:0123"}))
    stranger = execed(subprocess.Popen(["sleep", "62"], start_new_session=True,  # another state dir's sidecar
                                       env={**os.environ, TOKEN_VARIABLE: f"{'0' * 32}:gone:0123"}))
    try:
        assert oct((rig.tmp / "sidecars" / ".session").stat().st_mode & 0o777) == "0o600"  # a secret
        kept = state(sup, "w").pid
        await sup.reconfigure([SidecarConfig(name="w", command=["sleep", "60"])])  # unchanged: w keeps running
        events = [e for e in rig.store.recent_events(50) if e.name == "gone"]
        assert len(events) == 1, f"ghost {ghost.pid} not reclaimed: {rig.store.recent_events(10)}"
        [event] = events
        ghost.wait(timeout=5)
        assert state(sup, "w").pid == kept and stranger.poll() is None
        assert event.new == "stopped" and "reclaimed after a reconfigure" in event.reason
        assert "no longer in the config" in event.reason and str(ghost.pid) in event.reason
    finally:
        for proc in (ghost, stranger):
            proc.kill()
            proc.wait()


async def test_a_failed_sidecar_stays_failed_through_reloads_unless_its_own_config_changed(rig):
    failing = SidecarConfig(name="w", command=[PY, "-c", "import sys; sys.exit(3)"], max_restarts=0)
    sup = rig.supervisor(failing)
    await sup.start()
    await rig.drive(lambda: state(sup, "w").state == "failed", what="failed")
    launches = len([e for e in rig.events("w") if e[1] == "starting"])
    other = SidecarConfig(name="other", command=["sleep", "60"])
    await sup.reconfigure([failing, other])  # a reload that changes something else
    await rig.drive(lambda: state(sup, "other").state == "ready", what="the other sidecar up")
    assert state(sup, "w").state == "failed"
    assert len([e for e in rig.events("w") if e[1] == "starting"]) == launches  # never relaunched
    changed = SidecarConfig(name="w", command=["sleep", "60"], max_restarts=0)
    await sup.reconfigure([changed, other])  # its own config changed: a new try
    await rig.drive(lambda: state(sup, "w").state == "ready", what="the changed sidecar up")


async def test_the_sweep_after_a_reconfigure_spares_the_sidecar_it_just_started(rig, monkeypatch):
    """The sweep that follows a reconfigure read the runners' tokens before its process scan; a runner
    begun by that reconfigure spawned while the scan ran, and the sweep ended it as untracked (the test
    above failed so on a loaded machine). Here the scan waits until that sidecar has spawned."""
    import psutil

    import console.sidecars.supervisor as supervisor_module

    real, seen = supervisor_module.carrying, []

    def scan_after_the_spawn(*args, **kwargs):
        deadline = time.monotonic() + 10  # a thread of the engine's: the runner spawns on the loop meanwhile
        while time.monotonic() < deadline:
            launch = sup.runners["w"].launch
            with contextlib.suppress(psutil.Error):
                if launch is not None and psutil.Process(launch.proc.pid).cmdline() == ["sleep", "60"]:
                    seen.append(launch.proc.pid)
                    break
            time.sleep(0.01)
        return real(*args, **kwargs)

    sup = rig.supervisor(SidecarConfig(name="w", command=[PY, "-c", "import sys; sys.exit(3)"], max_restarts=0))
    await sup.start()
    await rig.drive(lambda: state(sup, "w").state == "failed", what="failed")
    monkeypatch.setattr(supervisor_module, "carrying", scan_after_the_spawn)
    await sup.reconfigure([SidecarConfig(name="w", command=["sleep", "60"], max_restarts=0)])
    assert seen, "the scan never saw the new sidecar spawned: the race was not set up"
    await rig.drive(lambda: state(sup, "w").state in ("ready", "failed"), what="the changed sidecar to settle")
    assert state(sup, "w").state == "ready" and state(sup, "w").pid == seen[0], state(sup, "w")


async def test_no_descriptor_left_is_never_a_latched_failure_of_the_sidecar(rig, monkeypatch):
    """EMFILE at spawn is the engine's exhaustion (the tray says descriptors_exhausted), not the
    command's fault: the sidecar waits, counts no restart, and starts once descriptors are back."""
    import asyncio
    import errno

    real = asyncio.create_subprocess_exec
    failures = {"left": 3}

    async def exhausted(*args, **kwargs):
        if failures["left"]:
            failures["left"] -= 1
            raise OSError(errno.EMFILE, "Too many open files")
        return await real(*args, **kwargs)

    monkeypatch.setattr(asyncio, "create_subprocess_exec", exhausted)
    sup = rig.supervisor(SidecarConfig(name="web", command=["sleep", "60"], max_restarts=0))
    await sup.start()
    await rig.drive(lambda: state(sup, "web").reason == "descriptors_exhausted", step=0.05, what="the wait")
    assert state(sup, "web").state == "backoff" and "ran out of file descriptors" in state(sup, "web").reason_text
    await rig.drive(lambda: state(sup, "web").state == "ready", step=1.0, what="ready once descriptors are back")
    assert sup.runners["web"].attempts == 0  # max_restarts=0: one counted failure would have latched it


def test_descriptor_pressure_is_a_reason_of_its_own():
    from console.readmodel.tray import descriptor_reasons

    assert descriptor_reasons(500, 1024) == [] and descriptor_reasons(10, 0) == []
    [reason] = descriptor_reasons(1000, 1024)
    assert reason.code == "descriptors_exhausted" and "holds 1000 of its 1024 file descriptors" in reason.text


@pytest.mark.parametrize("kind", ["fifo", "link to an empty file of someone else"])
async def test_a_log_path_that_is_not_a_regular_file_is_replaced_never_opened_through(rig, kind):
    """A FIFO at the sidecar's log path blocked the engine in open(); a link made it append the
    sidecar's output to the link's target (as root, to any file)."""
    import stat as stat_module

    victim = rig.tmp / "victim.txt"
    victim.write_text("")  # empty: an empty log is not rotated aside, so the old code appended through the link
    log = rig.tmp / "sidecars" / "web.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    if kind == "fifo":
        os.mkfifo(log)
    else:
        log.symlink_to(victim)
    cmd = script(rig.tmp, "talk", "import time\nprint('hello from web', flush=True)\ntime.sleep(60)\n")
    sup = rig.supervisor(SidecarConfig(name="web", command=cmd))
    await sup.start()
    await rig.drive(lambda: state(sup, "web").state == "ready", what="ready")
    await rig.drive(lambda: "hello from web" in log.read_text(), what="the output in a log of its own")
    assert stat_module.S_ISREG(os.lstat(log).st_mode) and victim.read_text() == ""
