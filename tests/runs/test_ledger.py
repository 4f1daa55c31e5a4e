"""The ledger's per-loop facts come from its index, whatever the ledger's size."""

from __future__ import annotations

from pathlib import Path

from console.core.fake_clock import FakeClock
from console.core.store import RUN_KIND, Store
from console.runs.ledger import RunIds, last_finished, queue_run, recent_runs


def test_each_loops_last_finished_run_even_when_the_newest_fifty_are_all_one_loops(tmp_path: Path):
    clock = FakeClock()
    store = Store.open(tmp_path / "loopctl.db", clock)
    ids = RunIds()
    loops = [f"loop-{i:03d}" for i in range(300)]
    expected = {}
    with store.batch():
        for loop_id in loops:
            for n, liveness in enumerate(("plan_only", "advanced")):
                run_id = ids.new(clock.time())
                queue_run(store, run_id, loop_id, "test")
                store.transition(RUN_KIND, run_id, "succeeded", "done",
                                 columns={"finished_at": clock.time(), "liveness": liveness})
                clock.advance(1)
                if n == 1:
                    expected[loop_id] = run_id
        busy = []
        for _ in range(60):  # the host's newest runs: all of one loop, the last one still running
            run_id = ids.new(clock.time())
            queue_run(store, run_id, "loop-000", "test")
            store.transition(RUN_KIND, run_id, "succeeded", "done", columns={"finished_at": clock.time(),
                                                                             "liveness": "blocked"})
            busy.append(run_id)
            clock.advance(1)
        running = ids.new(clock.time())
        queue_run(store, running, "loop-000", "test")
        store.transition(RUN_KIND, running, "running", "started", columns={"pid": 1})
    assert {r.loop_id for r in recent_runs(store, 50)} == {"loop-000"}  # what the snapshot's runs would show
    facts = last_finished(store, [*loops, "never-ran"])
    assert set(facts) == set(loops)  # a loop with no finished run has no fact
    assert facts["loop-000"].id == busy[-1] and facts["loop-000"].liveness == "blocked"  # not the running one
    assert all(facts[lp].id == expected[lp] and facts[lp].liveness == "advanced" for lp in loops[1:])
    store.close()
