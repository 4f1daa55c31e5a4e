"""When runs start at scale: first runs spread by loop id, intervals jittered, spawns through one gate,
and a fresh run queued and marked running in one commit. Real agent processes, the fake clock."""

from __future__ import annotations

import asyncio
import random
import sqlite3

from hypothesis import given
from hypothesis import strategies as st

from console.core.spawn_gate import SpawnGate
from console.runs.ledger import latest_runs
from console.runs.pacing import (
    INTERVAL_JITTER,
    MAX_INTERVAL_JITTER,
    STARTS_PER_SECOND,
    first_run_delay,
    pause_after_run,
    place,
)
from tests.runs.test_scheduler import finished, parked

ids = st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=40)


@given(ids, st.integers(1, 5000), st.floats(0, 86400))
def test_a_first_run_waits_at_most_the_spread_and_never_longer_than_an_interval(loop_id, starting, interval):
    delay = first_run_delay(loop_id, starting, interval)
    assert 0 <= delay <= min(interval, (starting - 1) / STARTS_PER_SECOND)
    assert first_run_delay(loop_id, starting, interval) == delay  # its place is fixed: the same after a restart


@given(ids)
def test_a_loop_alone_starts_at_once(loop_id):
    assert first_run_delay(loop_id, 1, 3600) == 0


def test_places_of_many_loops_spread_evenly():
    places = sorted(place(f"loop-{n}") for n in range(1000))
    tenths = [sum(1 for p in places if k / 10 <= p < (k + 1) / 10) for k in range(10)]
    assert all(60 <= n <= 140 for n in tenths), tenths  # about 100 a tenth: no pile-up at one moment


@given(st.floats(0, 86400), st.floats(0, 1, exclude_max=True))
def test_a_pause_is_the_interval_plus_a_bounded_jitter(interval, draw):
    pause = pause_after_run(interval, draw)
    assert interval <= pause <= interval + min(interval * INTERVAL_JITTER, MAX_INTERVAL_JITTER)


async def test_the_gate_lets_few_through_at_once_and_the_loop_turn_between_them():
    gate = SpawnGate(in_flight=3)
    inside = 0
    most = 0
    turns: list[str] = []

    async def spawn(n: int) -> None:
        nonlocal inside, most
        async with gate.slot():
            inside += 1
            most = max(most, inside)
            turns.append(f"spawn {n}")
            await asyncio.sleep(0)  # the spawn's own await (create_subprocess_exec)
            inside -= 1

    async def probe() -> None:  # what the socket's reader is to the event loop: ready, now and then
        for _ in range(40):
            turns.append("probe")
            await asyncio.sleep(0)

    await asyncio.gather(*(spawn(n) for n in range(30)), probe())
    assert most == 3 and gate.waiting == 0
    between, longest = 0, 0
    for turn in turns[:turns.index("probe", 0) + 40]:
        between = 0 if turn == "probe" else between + 1
        longest = max(longest, between)
    assert longest <= 3 * 2, turns  # never a run of spawns that keeps the probe waiting


async def test_loops_that_start_together_begin_their_first_runs_spread_by_id(rig):
    count = 40
    cfgs = [rig.loop("advance", id=f"l{n:02d}", interval_seconds=3600) for n in range(count)]
    loops = rig.loops(*cfgs)
    await loops.start()
    spread = (count - 1) / STARTS_PER_SECOND
    await rig.drive(lambda: all(finished(rig, 1, c.id)() for c in cfgs), step=spread / 40, what="every first run")
    started = {c.id: latest_runs(rig.store, c.id, 1)[0].started_at for c in cfgs}
    t0 = min(started.values())
    delays = {c.id: first_run_delay(c.id, count, 3600) for c in cfgs}
    for a, due_a in delays.items():  # in the order of their places, but for those due within a few steps
        for b, due_b in delays.items():
            if due_a + 3 * spread / 40 < due_b:
                assert started[a] <= started[b], (a, b)
    assert max(started.values()) - t0 >= spread * 0.5  # not all at once ...
    for c in cfgs:  # ... and each near its place (within the drive's step and the gate's queue)
        assert abs(started[c.id] - t0 - first_run_delay(c.id, count, 3600)) <= spread / 10 + 0.5


async def test_the_pause_after_a_run_is_jittered_within_its_bound(rig):
    loops = rig.loops(rig.loop("advance", id="a", interval_seconds=600), rig.loop("advance", id="b",
                                                                                  interval_seconds=600))
    loops.rng = random.Random(7)
    await loops.start()
    await rig.drive(lambda: finished(rig, 1, "a")() and finished(rig, 1, "b")(), step=0.05, what="first runs")
    await parked(loops, "a")
    await parked(loops, "b")
    pauses = []
    for loop_id in ("a", "b"):
        run = latest_runs(rig.store, loop_id, 1)[0]
        due = loops.runners[loop_id].next_run_at
        assert due is not None
        pauses.append(due - run.finished_at)
    for pause in pauses:
        assert 600 <= pause <= 600 + min(60, MAX_INTERVAL_JITTER) + 0.1
    assert abs(pauses[0] - pauses[1]) > 0.01  # the same interval, not the same moment


async def test_a_fresh_run_is_queued_and_marked_running_in_one_commit(rig):
    statements: list[str] = []
    conn: sqlite3.Connection = rig.store._conn
    conn.set_trace_callback(statements.append)
    loops = rig.loops(rig.loop("advance", interval_seconds=3600))
    await loops.start()
    await rig.drive(finished(rig, 1), step=0.05, what="the run")
    conn.set_trace_callback(None)
    run = latest_runs(rig.store, "docs", 1)[0]
    queued = next(n for n, s in enumerate(statements) if "INSERT" in s and run.id in s and "runs" in s)
    spawning = next(n for n, s in enumerate(statements) if n > queued and "UPDATE runs" in s and run.id in s)
    commits = [s for s in statements[queued:spawning] if s.strip().upper() == "COMMIT"]
    assert not commits, statements[queued:spawning + 1]
    assert any(s.strip().upper() == "COMMIT" for s in statements[spawning:])
