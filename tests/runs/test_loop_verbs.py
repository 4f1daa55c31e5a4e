"""trigger, pause and resume of a loop: real agent processes, the fake clock for intervals and grace."""

from __future__ import annotations

import asyncio

import pytest

from console.core.actions import ActionError, Target
from console.core.processes import group_alive
from console.readmodel.snapshot import EngineView, HostView, compose
from console.readmodel.tray import Level
from console.runs.ledger import get_run
from console.runs.scheduler import LOOP_KIND
from tests.conftest import finish_with_clock
from tests.runs.test_scheduler import finished

DOCS = Target("loop", "docs")



async def test_pause_ends_the_running_run_with_stop_reason_paused_and_holds_across_engines(rig):
    loops = rig.loops(rig.loop("hang-group", interval_seconds=1))
    await loops.start()
    await rig.drive(rig.agent_up, step=0.0, what="agent up")
    run = rig.runs()[0]
    result = await loops.pause(DOCS)
    assert f"run {run.id} ended (stop reason paused)" in result["message"]
    run = get_run(rig.store, run.id)
    assert (run.status, run.stop_reason) == ("cancelled", "paused") and not group_alive(run.pgid)
    assert run.error_text == "paused by `loopctl pause loop:docs`"
    view = loops.views()[0][0]
    assert view.held_by == "loopctl pause loop:docs" and view.next_run_at is None
    assert view.state == "active"  # the control plane's state is its own: a local pause is shown apart
    snap = compose(now=1.0, host=HostView("h", "/s", "/c", True, 1), engine=EngineView(True, "owner"),
                   things=[], events=[], loops=[view])
    assert snap.tray.state is Level.PAUSED and snap.tray.top.code == "loop_held"
    rig.clock.advance(60)  # far past its interval: nothing starts
    await asyncio.sleep(0.2)
    assert len(rig.runs()) == 1
    with pytest.raises(ActionError, match="already paused"):
        await loops.pause(DOCS)
    with pytest.raises(ActionError, match=r"paused .*loopctl resume loop:docs"):
        await loops.trigger(DOCS)

    await finish_with_clock(rig.clock, loops.stop())
    rig.made.remove(loops)
    again = rig.loops(rig.loop("hang-group", interval_seconds=1))  # the next engine reads the hold
    await again.start()
    rig.clock.advance(60)
    await asyncio.sleep(0.2)
    assert len(rig.runs()) == 1
    await again.resume(DOCS)
    await rig.drive(lambda: len(rig.runs()) == 2 and rig.runs()[1].status == "running", step=0.0,
                    what="a run after resume")
    with pytest.raises(ActionError, match="not paused locally"):
        await again.resume(DOCS)


async def test_trigger_starts_the_next_run_now_and_is_refused_while_one_runs(rig):
    loops = rig.loops(rig.loop("advance", interval_seconds=3600))
    await loops.start()
    await rig.drive(finished(rig, 1), step=0.05, what="first run")
    await asyncio.sleep(0.1)
    assert len(rig.runs()) == 1  # an hour to go
    result = await loops.trigger(DOCS)
    assert "starts now" in result["message"]
    await rig.drive(finished(rig, 2), step=0.0, what="the triggered run")
    hanging = rig.loops(rig.loop("hang", id="slow", interval_seconds=3600))
    await hanging.start()
    await rig.drive(lambda: any(r.status == "running" for r in rig.runs("slow")), step=0.0, what="slow running")
    with pytest.raises(ActionError, match="one run at a time") as refused:
        await hanging.trigger(Target("loop", "slow"))
    assert refused.value.code == "not_applicable"


async def test_trigger_says_why_a_held_loop_does_not_run(rig):
    loops = rig.loops(rig.loop("advance", interval_seconds=3600), rig.loop("advance", id="off", enabled=False))
    await loops.start()
    await rig.drive(finished(rig, 1), step=0.05, what="first run")
    rig.store.transition(LOOP_KIND, "docs", "escalated", "continuations exhausted")
    with pytest.raises(ActionError, match="escalated: `loopctl retry loop:docs` clears it"):
        await loops.trigger(DOCS)
    rig.store.transition(LOOP_KIND, "docs", "paused", "paused by the control plane")
    with pytest.raises(ActionError, match="the control plane paused it"):
        await loops.trigger(DOCS)
    with pytest.raises(ActionError, match="not paused locally: nothing to resume; the control plane paused it"):
        await loops.resume(DOCS)
    with pytest.raises(ActionError, match="disabled"):
        await loops.trigger(Target("loop", "off"))
    with pytest.raises(ActionError, match="no loop named 'nope'"):
        await loops.pause(Target("loop", "nope"))


async def test_a_loop_shows_its_last_revival_from_the_log_long_after_it_left_the_recent_events(rig):
    loops = rig.loops(rig.loop("advance", interval_seconds=3600))
    rig.store.transition("binding", "docs", "bound", "created (token jti j1)", {"jti": "j1", "expires_at": 10.0})
    rig.clock.advance(5)
    revived_at = rig.clock.time()
    rig.store.transition("binding", "docs", "bound", "revived by proof of possession (token jti j2)",
                         {"jti": "j2", "expires_at": revived_at + 3600})
    for i in range(200):  # the snapshot's recent events move on
        rig.store.transition("sidecar", "web", "ready" if i % 2 else "starting", f"step {i}")
    view = loops.views()[0][0]
    assert (view.revived_at, view.revived_jti, view.revived_expires_at) == (revived_at, "j2", revived_at + 3600)
