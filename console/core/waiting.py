"""Waiting on the clock, or on whatever happens first. One shape for every timer that something
real (an exit, a cancel, an operator) may cut short."""

from __future__ import annotations

import asyncio
from typing import Any

from console.core.clock import Clock


async def first_done(*futures: asyncio.Future[Any]) -> None:
    """Return when any of `futures` is done. None of them is cancelled: the caller decides."""
    await asyncio.wait(set(futures), return_when=asyncio.FIRST_COMPLETED)


async def sleep_unless(clock: Clock, seconds: float, *events: asyncio.Future[Any]) -> bool:
    """Sleep `seconds` on the clock unless one of `events` completes first. True when the whole
    time passed. The events are left running (or done) for the caller to inspect."""
    # The deadline is fixed now, not when the sleeping task first runs: time that passes before the
    # event loop gets to it (a busy loop, or a fake clock advanced at once) still counts.
    pause = asyncio.ensure_future(_sleep_until(clock, clock.monotonic() + seconds))
    try:
        await first_done(pause, *events)
        return pause.done() and not pause.cancelled()
    finally:
        pause.cancel()


async def _sleep_until(clock: Clock, deadline: float) -> None:
    await clock.sleep(deadline - clock.monotonic())


async def cancel_and_wait(task: asyncio.Future[Any]) -> None:
    """Cancel `task` and wait until it has finished. Its own CancelledError ends here; the caller's
    (a cancel that arrives while the caller waits) goes on up, never swallowed with the task's. A
    caller already being cancelled (cleaning up in its `except` or `finally`) still waits the task out:
    only a cancel that came during this wait is the caller's."""
    current = asyncio.current_task()
    before = current.cancelling() if current is not None else 0
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        if current is not None and current.cancelling() > before:
            raise
