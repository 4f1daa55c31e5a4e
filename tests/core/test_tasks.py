"""The supervisor of the engine's own tasks: a crash is logged, said, restarted with backoff, latched."""

from __future__ import annotations

import asyncio

from console.core import tasks as tasks_module
from console.core.fake_clock import FakeClock
from console.core.tasks import CLEAR_AFTER, LATCH_AFTER, Tasks, restart_delay
from console.readmodel.tray import task_reasons
from tests.conftest import drive


def test_the_backoff_doubles_to_its_cap_then_latches():
    delays = [restart_delay(n) for n in range(1, LATCH_AFTER + 1)]
    assert delays[:4] == [1.0, 2.0, 4.0, 8.0] and max(d for d in delays if d is not None) <= 60.0
    assert delays[-1] is None


async def test_a_crashing_body_is_said_restarted_and_its_reason_clears_once_it_runs():
    clock = FakeClock()
    changes: list[int] = []
    tasks = Tasks(clock, lambda: changes.append(1))
    starts: list[float] = []

    async def body() -> None:
        starts.append(clock.monotonic())
        if len(starts) == 1:
            raise RuntimeError("boom\nsecond line")
        await asyncio.Event().wait()  # the restarted body runs on

    tasks.spawn("host-heartbeat", body, "host:h1")
    await drive(clock, lambda: tasks.trouble, step=0.0, what="the crash")
    [reason] = task_reasons(tasks.troubles())
    assert (reason.code, reason.subject) == ("task_crashed", "host:h1")
    assert reason.text == "engine task host-heartbeat crashed (RuntimeError: boom\u240asecond line); restarting it"
    await drive(clock, lambda: len(starts) == 2, step=0.25, what="the restart")
    assert starts[1] - starts[0] >= 1.0  # after the backoff, not at once
    await drive(clock, lambda: not tasks.trouble, step=5.0, what="the reason to clear")
    assert clock.monotonic() - starts[1] >= CLEAR_AFTER and changes
    await tasks.stop()
    assert tasks._tasks == {}


async def test_a_body_that_keeps_crashing_is_latched_and_stop_never_raises():
    clock = FakeClock()
    tasks = Tasks(clock)
    runs = 0

    async def body() -> None:
        nonlocal runs
        runs += 1
        raise OSError(24, "Too many open files")

    task = tasks.spawn("reaper", body)
    await drive(clock, task.done, step=10.0, what="the latch")
    assert runs == LATCH_AFTER
    [reason] = task_reasons(tasks.troubles())
    assert reason.code == "task_latched" and f"crashed {LATCH_AFTER} times" in reason.text
    await tasks.stop()  # nothing escapes


async def test_a_body_that_returns_is_done_and_a_cancelled_one_stops(monkeypatch):
    monkeypatch.setattr(tasks_module, "CLEAR_AFTER", 1.0)
    clock = FakeClock()
    tasks = Tasks(clock)
    done = asyncio.Event()

    async def finite() -> None:
        done.set()

    await tasks.spawn("once", finite)
    assert done.is_set() and not tasks.trouble
    waiting = tasks.spawn("forever", lambda: asyncio.Event().wait())
    await asyncio.sleep(0)
    await tasks.stop("forever")
    assert waiting.cancelled()
