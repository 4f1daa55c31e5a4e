"""cancel_and_wait: the task's cancellation ends there, the caller's own never does."""

from __future__ import annotations

import asyncio

import pytest

from console.core.waiting import cancel_and_wait


async def slow_to_stop(stopping: asyncio.Event, release: asyncio.Event) -> None:
    try:
        await asyncio.Event().wait()
    finally:  # a task that takes a while to finish once cancelled (a grace period, a last write)
        stopping.set()
        await release.wait()


async def test_the_tasks_cancellation_is_absorbed():
    stopping, release = asyncio.Event(), asyncio.Event()
    release.set()
    task = asyncio.ensure_future(slow_to_stop(stopping, release))
    await asyncio.sleep(0)
    await cancel_and_wait(task)
    assert task.cancelled()


async def test_the_callers_own_cancellation_goes_on_up():
    stopping, release = asyncio.Event(), asyncio.Event()
    inner = asyncio.ensure_future(slow_to_stop(stopping, release))
    went_on = asyncio.Event()

    async def caller() -> None:
        await cancel_and_wait(inner)
        went_on.set()  # with the cancellation swallowed, the caller carried on from here

    outer = asyncio.ensure_future(caller())
    await stopping.wait()  # the inner task is finishing; now the caller itself is cancelled
    outer.cancel()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await outer
    assert outer.cancelled() and not went_on.is_set()


async def test_a_caller_cleaning_up_after_its_own_cancel_still_waits_the_task_out():
    """A `finally` of a cancelled task stopping a helper task: the helper is waited out (it ran its own
    cleanup), the caller's cleanup after it goes on (a socket's close stopped at its publisher and left
    its thread running), and the caller's cancel is still the caller's to re-raise."""
    ended, went_on = asyncio.Event(), asyncio.Event()

    async def helper() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.sleep(0.01)  # its own cleanup takes a step or two
            ended.set()

    async def caller() -> None:
        task = asyncio.ensure_future(helper())
        await asyncio.sleep(0)
        try:
            await asyncio.Event().wait()
        finally:
            await cancel_and_wait(task)
            went_on.set()

    outer = asyncio.ensure_future(caller())
    await asyncio.sleep(0.01)
    outer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await outer
    assert ended.is_set() and went_on.is_set()
