"""Loops and runs with real agent processes (small scripts that write handoffs) and the fake clock
for intervals, timeouts and grace periods."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from console.core.actions import ActionError, Target
from console.core.config import LoopConfig
from console.core.fake_clock import FakeClock
from console.core.processes import boot_time, group_alive, identify
from console.core.store import RUN_KIND, Store
from console.runs.ledger import RunIds, get_run, latest_runs, queue_run
from console.runs.scheduler import LOOP_KIND, Loops
from tests.conftest import drive, execed, finish_with_clock

DEFAULT_STEP = 0.5

AGENT = """
import json, os, subprocess, sys, time
mode = sys.argv[1]
with open(sys.argv[2], "a") as log:
    log.write(json.dumps({k: os.environ.get(k) for k in ("LOOPCTL_RUN_ID", "LOOPCTL_LOOP_ID", "LOOPCTL_HANDOFF",
              "LOOPCTL_CONTINUATION", "LOOPCTL_CONTINUATION_ATTEMPT")}
              | {"continuation_text": open(os.environ["LOOPCTL_CONTINUATION"]).read()
                 if os.environ.get("LOOPCTL_CONTINUATION") else None, "pid": os.getpid()}) + "\\n")
handoff = os.environ["LOOPCTL_HANDOFF"]
def write(obj):
    with open(handoff, "w") as f:
        json.dump(obj, f)
if mode == "advance":
    print("changed a.py"); write({"summary": "did it", "evidence": {"files_changed": ["a.py"]}})
elif mode == "plan":
    write({"summary": "a plan", "next_action": "edit README", "actionability": "runnable"})
elif mode == "silent":
    pass
elif mode == "garbage":
    open(handoff, "w").write("{not json")
elif mode == "crash":
    print("boom"); sys.exit(4)
elif mode in ("hang", "hang-group"):
    if mode == "hang-group":
        subprocess.Popen(["sleep", "300"])  # a member of the run's group
    print("working", flush=True)
    time.sleep(300)
"""


@dataclass
class Rig:
    tmp: Path
    clock: FakeClock
    store: Store
    made: list[Loops] = field(default_factory=list)

    @property
    def seen(self) -> list[dict]:
        path = self.tmp / "seen.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def loop(self, mode: str, **kw) -> LoopConfig:
        agent = self.tmp / "agent.py"
        agent.write_text(textwrap.dedent(AGENT))
        command = [sys.executable, str(agent), mode, str(self.tmp / "seen.jsonl")]
        return LoopConfig(id=kw.pop("id", "docs"), command=command,
                          objective=kw.pop("objective", "keep the README true"), **kw)

    def agent_up(self) -> bool:
        return any("working" in p.read_text() for p in (self.tmp / "runs").glob("*/output.log"))

    def loops(self, *cfgs: LoopConfig) -> Loops:
        loops = Loops(list(cfgs), store=self.store, clock=self.clock, runs_root=self.tmp / "runs",
                      on_change=lambda: None)
        self.made.append(loops)
        return loops

    async def drive(self, until, *, step: float = DEFAULT_STEP, timeout: float = 30.0, what: str = "a state"):
        await drive(self.clock, until, step=step, timeout=timeout, what=what)

    def runs(self, loop_id: str = "docs"):
        return list(reversed(latest_runs(self.store, loop_id, 100)))

    def loop_state(self, loop_id: str = "docs") -> str | None:
        thing = self.store.thing(LOOP_KIND, loop_id)
        return thing.state if thing else None



async def parked(loops: Loops, loop_id: str = "docs") -> None:
    """Wait until the loop's scheduler waits (held, or in its pause): from there only a wake or its own
    due time starts a run, so a check made now is not a race against the scheduler."""
    async with asyncio.timeout(10):
        await loops.runners[loop_id].parked.wait()


async def watch_waits_out_its_last_second(rig: Rig) -> None:
    """A run's watch, woken by the advance to 1 s before its timeout, has looked and gone back to sleep
    for exactly that last second: it saw no timeout due (had it fired, it would be ending the group)."""
    await rig.drive(lambda: rig.clock.monotonic() + 1.0 in rig.clock.pending_deadlines(), step=0.0,
                    what="the watch asleep until its timeout")


def finished(rig: Rig, n: int, loop_id: str = "docs"):
    return lambda: len([r for r in rig.runs(loop_id) if r.finished_at]) >= n


async def test_an_advancing_run_is_recorded_and_the_next_waits_for_the_interval(rig):
    loops = rig.loops(rig.loop("advance", interval_seconds=600))
    await loops.start()
    await rig.drive(finished(rig, 1), step=0.05, what="first run")
    run = rig.runs()[0]
    assert (run.status, run.stop_reason, run.liveness) == ("succeeded", "completed", "advanced")
    assert run.exit_code == 0 and run.pid and run.started_at and run.finished_at
    assert run.summary == "did it" and run.last_useful_action_at is not None
    await parked(loops)
    due = loops.runners["docs"].next_run_at
    rig.clock.advance(590)
    await parked(loops)  # still in the same pause, its due time ahead: so no run can have started
    assert loops.runners["docs"].next_run_at == due and due > rig.clock.time()
    assert len(rig.runs()) == 1, "the next run started before the interval"
    await rig.drive(finished(rig, 2), step=1.0, what="second run")
    env = rig.seen[0]
    assert env["LOOPCTL_RUN_ID"] == run.id and env["LOOPCTL_LOOP_ID"] == "docs"
    assert env["LOOPCTL_HANDOFF"] == str(rig.tmp / "runs" / run.id / "handoff.json")
    assert env["LOOPCTL_CONTINUATION"] is None and env["LOOPCTL_CONTINUATION_ATTEMPT"] == "0"
    assert (rig.tmp / "runs" / run.id / "output.log").read_text().startswith("changed a.py")


async def test_a_loop_held_while_it_waits_shows_no_next_run(rig):
    loops = rig.loops(rig.loop("advance", interval_seconds=600))
    await loops.start()
    await rig.drive(finished(rig, 1), step=0.05, what="first run")
    await rig.drive(lambda: loops.views()[0][0].next_run_at is not None, step=0.0, what="the pause")
    # as the control-plane link finalizes a loop: a transition, the scheduler left asleep
    rig.store.transition(LOOP_KIND, "docs", "finalized", "heartbeat unauthorized")
    [view], _runs = loops.views()
    assert view.state == "finalized" and view.next_run_at is None
    rig.clock.advance(700)  # past the pause: the scheduler wakes, sees the loop held, and parks for good
    await rig.drive(lambda: loops.runners["docs"].parked.is_set() and loops.runners["docs"].next_run_at is None,
                    step=0.0, what="the scheduler parked as held")
    assert len(rig.runs()) == 1  # and indeed nothing starts


def test_a_user_loop_is_shown_as_one_even_without_a_binding(rig):
    user = rig.loop("advance", id="ci-bot", provenance="user", token_file=str(rig.tmp / "t"), remote_id="l_1")
    local = rig.loop("advance", id="docs")
    views = {v.id: v.provenance for v in rig.loops(user, local).views()[0]}
    assert views == {"ci-bot": "user", "docs": "local"}


async def test_a_continuation_chain_stops_at_two_and_escalates_the_loop(rig):
    loops = rig.loops(rig.loop("plan", interval_seconds=5))
    await loops.start()
    await rig.drive(lambda: rig.loop_state() == "escalated", step=0.05, what="escalation")
    runs = rig.runs()
    assert [r.continuation_attempt for r in runs] == [0, 1, 2]
    assert all(r.liveness == "plan_only" and r.chain_id == runs[0].id for r in runs)
    assert runs[-1].liveness_reason.endswith("continuation attempts exhausted")
    seen = rig.seen
    assert [s["LOOPCTL_CONTINUATION_ATTEMPT"] for s in seen] == ["0", "1", "2"]
    assert seen[0]["LOOPCTL_CONTINUATION"] is None
    text = seen[2]["continuation_text"]
    for title in ("## Status", "## Mode", "## Objective", "## Recent runs", "## Next action"):
        assert title in text
    assert "keep the README true" in text and "Do it now, not another plan: edit README" in text
    assert runs[0].id in text and runs[1].id in text
    # escalated: no new runs, however long we wait
    rig.clock.advance(3600)
    await parked(loops)  # held: it waits for a wake (the operator's retry), never for the clock
    assert loops.runners["docs"].next_run_at is None and len(rig.runs()) == 3
    with pytest.raises(ActionError) as unknown:
        await loops.retry(Target("loop", "other"))
    assert unknown.value.code == "unknown_target"
    result = await loops.retry(Target("loop", "docs"))
    assert "escalation cleared" in result["message"]
    with pytest.raises(ActionError) as again:
        await loops.retry(Target("loop", "docs"))
    assert again.value.code == "not_applicable" and "not escalated" in again.value.message
    await rig.drive(lambda: len(rig.runs()) >= 4, step=0.05, what="a run after the operator's retry")
    assert rig.runs()[3].continuation_attempt == 0  # a fresh chain


async def test_a_timeout_ends_the_whole_group_and_says_so(rig):
    loops = rig.loops(rig.loop("hang-group", run_timeout_seconds=30))
    await loops.start()
    await rig.drive(lambda: rig.runs() and rig.runs()[0].status == "running", step=0.0, what="running")
    await rig.drive(rig.agent_up, step=0.0, what="agent up")
    run = rig.runs()[0]
    rig.clock.advance(29)
    await watch_waits_out_its_last_second(rig)
    assert get_run(rig.store, run.id).status == "running"
    await rig.drive(finished(rig, 1), step=0.5, what="timed out")
    run = get_run(rig.store, run.id)
    assert (run.status, run.stop_reason, run.timeout_fired) == ("timed_out", "timeout", True)
    assert run.timeout_configured and run.effective_timeout_sec == 30 and run.liveness == "failed"
    assert not group_alive(run.pgid)


async def test_cancel_of_a_running_run_kills_its_whole_group(rig):
    loops = rig.loops(rig.loop("hang-group"))
    await loops.start()
    await rig.drive(rig.agent_up, step=0.0, what="agent up")
    run = rig.runs()[0]
    result = await loops.cancel(Target("run", run.id))
    assert result["status"] == "cancelled"
    run = get_run(rig.store, run.id)
    assert (run.status, run.stop_reason) == ("cancelled", "cancelled")
    assert run.error_text == "cancelled by the operator"
    assert not group_alive(run.pgid)
    with pytest.raises(ActionError) as again:
        await loops.cancel(Target("run", run.id))
    assert again.value.code == "not_applicable" and "already finished (cancelled)" in again.value.message


async def test_retry_makes_one_new_run_and_is_idempotent(rig):
    cfg = rig.loop("crash", interval_seconds=3600)
    loops = rig.loops(cfg)
    await loops.start()
    await rig.drive(finished(rig, 1), step=0.05, what="crashed run")
    crashed = rig.runs()[0]
    assert (crashed.status, crashed.stop_reason, crashed.exit_code) == ("failed", "adapter_failed", 4)
    first = await loops.retry(Target("run", crashed.id))
    second = await loops.retry(Target("run", crashed.id))
    assert second["run"] == first["run"] and "already being retried" in second["message"]
    await rig.drive(finished(rig, 2), step=0.05, what="the retry")
    retry = get_run(rig.store, first["run"])
    assert retry.retry_of_run_id == crashed.id
    with pytest.raises(ActionError, match="no run 'nope'"):
        await loops.retry(Target("run", "nope"))


async def test_a_run_is_named_by_its_whole_id_or_by_the_end_of_it_as_the_console_shows_it(rig):
    loops = rig.loops(rig.loop("hang-group", interval_seconds=3600))
    ids = RunIds()
    done = ids.new(rig.clock.time())
    twin = done[:-5] + ("0" if done[-5] != "0" else "1") + done[-4:]  # another run, the same last 4 characters
    for run_id in (done, twin):  # finished runs of another loop, in the ledger before the engine starts
        queue_run(rig.store, run_id, "other", "scheduled")
        rig.store.transition(RUN_KIND, run_id, "succeeded", "done", {"loop": "other"},
                             columns={"finished_at": rig.clock.time(), "stop_reason": "completed"})
    await loops.start()
    await rig.drive(rig.agent_up, step=0.0, what="agent up")
    [running] = [r for r in rig.runs() if r.status == "running"]
    result = await loops.cancel(Target("run", running.id[-8:].lower()))  # as the console shows it, any case
    assert result["status"] == "cancelled" and running.id in result["message"]  # the answer names it whole
    assert get_run(rig.store, running.id).status == "cancelled"
    with pytest.raises(ActionError) as finished_run:
        await loops.cancel(Target("run", done[-8:]))
    assert finished_run.value.code == "not_applicable" and done in finished_run.value.message
    with pytest.raises(ActionError) as ambiguous:
        await loops.cancel(Target("run", done[-4:]))
    assert ambiguous.value.code == "ambiguous_target" and "give more of it" in ambiguous.value.message
    for name in (done[-3:], "%" + done[-4:], "Z_Z_"):  # too short; not an id's characters
        with pytest.raises(ActionError) as unknown:
            await loops.cancel(Target("run", name))
        assert unknown.value.code == "unknown_target"


@pytest.mark.parametrize(("mode", "problem"), [("silent", "no handoff file"), ("garbage", "not JSON")])
async def test_missing_or_malformed_handoffs_are_classified_never_a_crash(rig, mode, problem):
    loops = rig.loops(rig.loop(mode, interval_seconds=3600))
    await loops.start()
    await rig.drive(finished(rig, 1), step=0.05, what="a run")
    run = rig.runs()[0]
    assert run.status == "succeeded" and run.liveness == "empty_response"
    assert problem in run.liveness_reason
    await rig.drive(lambda: len(rig.runs()) >= 2, step=0.05, what="a continuation")  # empty responses continue too
    assert rig.runs()[1].continuation_attempt == 1


async def test_a_missing_program_is_a_spawn_failure(rig):
    loops = rig.loops(LoopConfig(id="docs", command=["/nonexistent/agent"], interval_seconds=3600))
    await loops.start()
    await rig.drive(finished(rig, 1), step=0.05, what="a run")
    run = rig.runs()[0]
    assert (run.status, run.stop_reason, run.error_code) == ("failed", "adapter_failed", "spawn_failed")
    assert "cannot start '/nonexistent/agent'" in run.error_text


def plant_running(rig: Rig, loop_id: str, pid: int, *, pgid: int | None = None, create_time: float | None = None,
                  retries: int = 0) -> str:
    """What a killed engine leaves: a `running` row whose handle died with it."""
    run_id = RunIds().new(rig.clock.time())
    queue_run(rig.store, run_id, loop_id, "planted", process_loss_retry_count=retries)
    rig.store.transition(RUN_KIND, run_id, "running", "planted", columns={
        "pid": pid, "pgid": pgid or pid, "create_time": create_time, "boot_time": boot_time(),
        "session_token": run_id, "started_at": rig.clock.time()})
    return run_id


async def test_exactly_one_process_loss_retry_across_repeated_boots(rig):
    gone = subprocess.Popen(["true"])
    gone.wait()
    lost = plant_running(rig, "docs", gone.pid)
    cfg = rig.loop("advance", interval_seconds=3600)
    await rig.loops(cfg).reap()
    run = get_run(rig.store, lost)
    assert (run.status, run.stop_reason, run.error_code) == ("failed", "process_lost", "process_lost")
    retries = [r for r in rig.runs() if r.retry_of_run_id == lost]
    assert len(retries) == 1 and retries[0].process_loss_retry_count == 1 and retries[0].status == "queued"
    for _ in range(3):  # more boots find nothing new to retry
        await rig.loops(cfg).reap()
    assert len([r for r in rig.runs() if r.retry_of_run_id == lost]) == 1
    # the retry itself is lost too: no second retry, the loop escalates
    rig.store.transition(RUN_KIND, retries[0].id, "running", "planted", columns={"pid": gone.pid, "pgid": gone.pid})
    await rig.loops(cfg).reap()
    assert get_run(rig.store, retries[0].id).stop_reason == "process_lost"
    assert len(rig.runs()) == 2
    assert rig.loop_state() == "escalated"


async def test_a_pid_reused_by_a_foreign_process_is_never_touched(rig):
    foreign = subprocess.Popen(["sleep", "60"], start_new_session=True)  # leads its own group: pgid == pid
    try:
        real = identify(foreign.pid).create_time
        lost = plant_running(rig, "docs", foreign.pid, create_time=real - 100.0)
        await rig.loops(rig.loop("advance", interval_seconds=3600)).reap()  # returns once it has decided
        assert foreign.poll() is None, "a foreign process was signalled"
        assert get_run(rig.store, lost).stop_reason == "process_lost"
    finally:
        foreign.kill()
        foreign.wait()


async def test_a_dead_leader_with_a_live_group_is_terminated_and_said_so(rig):
    # The leader exits at once; a member carrying the run's id keeps running in the group.
    run_id = RunIds().new(rig.clock.time())
    leader = subprocess.Popen(["sh", "-c", "sleep 300 & exit 0"], start_new_session=True,
                              env={**os.environ, "LOOPCTL_RUN_ID": run_id})
    leader.wait()
    time.sleep(0.1)
    assert group_alive(leader.pid)
    queue_run(rig.store, run_id, "docs", "planted")
    rig.store.transition(RUN_KIND, run_id, "running", "planted", columns={"pid": leader.pid, "pgid": leader.pid})
    await rig.loops(rig.loop("advance", interval_seconds=3600)).reap()
    run = get_run(rig.store, run_id)
    assert run.stop_reason == "process_lost"
    assert f"its process group {leader.pid} still had 1 process(es) running: terminated" in run.error_text
    assert not group_alive(leader.pid)


async def test_a_live_run_of_ours_stays_running_detached_and_settles_when_it_exits(rig):
    run_id = RunIds().new(rig.clock.time())
    runs_dir = rig.tmp / "runs" / run_id
    runs_dir.mkdir(parents=True)
    agent = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE,
                             start_new_session=True, env={**os.environ, "LOOPCTL_RUN_ID": run_id})
    try:
        queue_run(rig.store, run_id, "docs", "planted")
        rig.store.transition(RUN_KIND, run_id, "running", "planted", columns={
            "pid": agent.pid, "pgid": agent.pid, "create_time": identify(agent.pid).create_time})
        loops = rig.loops(rig.loop("advance", interval_seconds=3600, enabled=False))
        await loops.reap()
        run = get_run(rig.store, run_id)
        assert (run.status, run.error_code) == ("running", "process_detached")
        (runs_dir / "handoff.json").write_text(json.dumps({"summary": "s", "evidence": {"commits": ["abc"]}}))
        await rig.drive(lambda: get_run(rig.store, run_id).error_code is None, step=1.0, what="activity clears it")
        agent.stdin.close()
        agent.wait()
        await rig.drive(lambda: get_run(rig.store, run_id).finished_at is not None, step=0.1, what="settled")
        run = get_run(rig.store, run_id)
        assert (run.status, run.liveness) == ("succeeded", "advanced")
        assert run.error_text == "exit status unknown: the run ended while detached"
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()


async def test_escalation_survives_an_engine_restart(rig):
    cfg = rig.loop("plan", interval_seconds=5)
    first = rig.loops(cfg)
    await first.start()
    await rig.drive(lambda: rig.loop_state() == "escalated", step=0.05, what="escalation")
    await finish_with_clock(rig.clock, first.stop())
    second = rig.loops(cfg)
    await second.start()
    rig.clock.advance(3600)
    await parked(second)  # held: it waits for a wake (the operator's retry), never for the clock
    assert second.runners["docs"].next_run_at is None and len(rig.runs()) == 3
    assert rig.loop_state() == "escalated"


async def test_a_live_process_without_the_run_id_in_its_readable_environment_is_foreign(rig):
    # Same pid, same start time: an exact forged identity, but its environment says it is not the run.
    foreign = execed(subprocess.Popen(["sleep", "60"], start_new_session=True, env={"PATH": os.environ["PATH"]}))
    try:
        lost = plant_running(rig, "docs", foreign.pid, create_time=identify(foreign.pid).create_time)
        loops = rig.loops(rig.loop("advance", interval_seconds=3600))
        await loops.reap()
        assert not loops.detached, "a process without the run id was adopted as the run"
        run = get_run(rig.store, lost)
        assert run.stop_reason == "process_lost"
        assert foreign.poll() is None, "a foreign process was signalled"
    finally:
        foreign.kill()
        foreign.wait()


async def test_an_adopted_run_keeps_its_timeout_and_is_ended_through_its_group(rig):
    run_id = RunIds().new(rig.clock.time())
    agent = execed(subprocess.Popen(["sh", "-c", "sleep 300 & sleep 301"], start_new_session=True,
                                    env={**os.environ, "LOOPCTL_RUN_ID": run_id}))
    try:
        queue_run(rig.store, run_id, "docs", "planted", timeout=30)
        rig.store.transition(RUN_KIND, run_id, "running", "planted", columns={
            "pid": agent.pid, "pgid": agent.pid, "create_time": identify(agent.pid).create_time,
            "started_at": rig.clock.time()})
        loops = rig.loops(rig.loop("advance", interval_seconds=3600))
        await loops.reap()
        assert get_run(rig.store, run_id).error_code == "process_detached"
        rig.clock.advance(29)
        await watch_waits_out_its_last_second(rig)
        assert get_run(rig.store, run_id).status == "running"
        await rig.drive(lambda: get_run(rig.store, run_id).finished_at is not None, step=0.5, what="timed out")
        run = get_run(rig.store, run_id)
        assert (run.status, run.stop_reason, run.timeout_fired) == ("timed_out", "timeout", True)
        assert not group_alive(agent.pid)
    finally:
        if agent.poll() is None:
            agent.kill()
        agent.wait()


async def test_stopping_the_engine_ends_an_adopted_run_as_it_ends_its_own(rig):
    run_id = RunIds().new(rig.clock.time())
    agent = execed(subprocess.Popen(["sh", "-c", "sleep 300 & sleep 301"], start_new_session=True,
                                    env={**os.environ, "LOOPCTL_RUN_ID": run_id}))
    try:
        plant = {"pid": agent.pid, "pgid": agent.pid, "create_time": identify(agent.pid).create_time}
        queue_run(rig.store, run_id, "docs", "planted")
        rig.store.transition(RUN_KIND, run_id, "running", "planted", columns=plant)
        loops = rig.loops(rig.loop("advance", interval_seconds=3600))
        await loops.reap()
        assert get_run(rig.store, run_id).error_code == "process_detached"
        await finish_with_clock(rig.clock, loops.stop())
        run = get_run(rig.store, run_id)
        assert (run.status, run.stop_reason, run.error_text) == ("cancelled", "cancelled", "engine stopping")
        assert not group_alive(agent.pid), "an adopted run outlived the engine's stop"
    finally:
        if agent.poll() is None:
            agent.kill()
        agent.wait()


async def test_the_reaper_leaves_a_run_this_engine_is_spawning_alone(rig):
    """Between its intent (running, no pid) and its pid the run is the executor's, not a lost one: the
    minute's reap landing in that window once marked it lost and queued a retry beside it."""
    run_id = RunIds().new(rig.clock.time())
    queue_run(rig.store, run_id, "docs", "scheduled")
    rig.store.transition(RUN_KIND, run_id, "running", "spawning", columns={"session_token": run_id})
    loops = rig.loops(rig.loop("advance", interval_seconds=3600))
    loops.executor.starting.add(run_id)  # as `execute` holds it across the spawn's await
    await loops.reap()
    assert get_run(rig.store, run_id).status == "running" and len(rig.runs()) == 1
    loops.executor.starting.discard(run_id)
    await loops.reap()  # the same row with no spawn in flight: a dead engine's, lost and retried once
    assert get_run(rig.store, run_id).stop_reason == "process_lost" and len(rig.runs()) == 2


async def test_a_run_whose_spawn_is_in_flight_when_the_engine_stops_is_ended_with_it(rig):
    """The stop cancelled the runs it held; one recorded as spawning, its spawn not yet returned, was
    in none of them: the scheduler's task was cancelled around it and the agent outlived the engine."""
    import psutil

    loops = rig.loops(rig.loop("hang", interval_seconds=3600))
    stopping: list[asyncio.Task] = []

    def stop_now(_transition) -> None:  # the engine's stop, arriving while the spawn is awaited
        if not stopping:
            stopping.append(asyncio.get_running_loop().create_task(loops.stop()))

    rig.store.bus.subscribe(stop_now, kind=RUN_KIND, from_="queued", to="running")
    await loops.start()
    await rig.drive(lambda: bool(stopping) and stopping[0].done(), step=0.5, what="the stop")
    runs_dir = str(rig.tmp / "runs")
    alive = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if proc.environ().get("LOOPCTL_HANDOFF", "").startswith(runs_dir) \
                    and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc.pid)
        except psutil.Error:
            continue
    assert alive == [], "a run outlived the engine's stop"
    [run] = rig.runs()
    assert (run.status, run.stop_reason, run.error_text) == ("cancelled", "cancelled", "engine stopping")


async def test_many_lost_runs_are_reaped_with_one_scan_and_each_group_ended(rig, monkeypatch):
    """An engine of many loops killed: the next one's boot scanned the process table once per lost run
    (minutes at 1,000 loops, the socket waiting all along). Now one scan finds every run's leftovers."""
    from console.runs import reaping

    scans: list[int] = []
    real = reaping.carrying
    monkeypatch.setattr(reaping, "carrying", lambda *a: scans.append(1) or real(*a))
    leaders = {}
    for n in range(12):
        loop_id = f"l{n}"
        run_id = RunIds().new(rig.clock.time())
        leader = subprocess.Popen(["sh", "-c", "sleep 300 & exit 0"], start_new_session=True,
                                  env={**os.environ, "LOOPCTL_RUN_ID": run_id})
        leader.wait()
        leaders[run_id] = leader.pid
        queue_run(rig.store, run_id, loop_id, "planted")
        rig.store.transition(RUN_KIND, run_id, "running", "planted", columns={"pid": leader.pid, "pgid": leader.pid})
    foreign = subprocess.Popen(["sleep", "60"], start_new_session=True)  # in no run's group, carrying nothing
    try:
        await drive(rig.clock, lambda: all(group_alive(pid) for pid in leaders.values()), step=0.0,
                    what="each group's member up")
        loops = rig.loops(*(rig.loop("advance", id=f"l{n}", interval_seconds=3600) for n in range(12)))
        await loops.reap()
        assert len(scans) == 1  # every group's members found at once (no survivor left for a second look)
        for run_id, pgid in leaders.items():
            run = get_run(rig.store, run_id)
            assert run.stop_reason == "process_lost"
            assert f"its process group {pgid} still had 1 process(es) running: terminated" in run.error_text
            assert not group_alive(pgid)
        assert foreign.poll() is None
    finally:
        foreign.kill()
        foreign.wait()
