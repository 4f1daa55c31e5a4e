"""Running a coroutine on another thread's event loop and awaiting it from this one.

The socket's thread hands what only the engine may do (actions, the event log, a log's tail) to the
engine's loop this way. Unlike `asyncio.run_coroutine_threadsafe`, a caller that is cancelled waits
until the coroutine has really ended on the other loop (its `finally` blocks done): what it touched
there (a log tail's generator, say) may then be used again at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class LoopGone(ConnectionAbortedError):
    """The other loop has closed, or cancelled the work itself (it is shutting down)."""


async def on_loop(target: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T]) -> T:
    here = asyncio.get_running_loop()
    outcome: asyncio.Future[T] = here.create_future()
    started: list[asyncio.Task[T]] = []

    def settle(task: asyncio.Task[T]) -> None:  # on this loop
        if outcome.done():
            return
        if task.cancelled():
            outcome.set_exception(LoopGone("the engine cancelled the request: it is stopping"))
        elif (exc := task.exception()) is not None:
            outcome.set_exception(exc)
        else:
            outcome.set_result(task.result())

    def launch() -> None:  # on the target loop
        task = target.create_task(coro)
        started.append(task)
        task.add_done_callback(lambda t: _call_soon(here, settle, t))

    try:
        target.call_soon_threadsafe(launch)
    except RuntimeError:  # its loop has closed
        coro.close()
        raise LoopGone("the engine's event loop has stopped") from None
    try:
        return await asyncio.shield(outcome)
    except asyncio.CancelledError:
        # Callbacks run in the order given: this one runs after `launch`, so the task is there.
        def cancel() -> None:  # on the target loop
            started[0].cancel()

        if not _call_soon(target, cancel):
            raise
        await asyncio.wait([outcome])  # its end, whatever it was; a second cancel of ours goes on up
        if not outcome.cancelled():
            outcome.exception()  # retrieved: ours is the cancel that goes on
        raise


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[..., object], *args: Any) -> bool:
    """False when that loop has closed: nobody is left to tell."""
    try:
        loop.call_soon_threadsafe(callback, *args)
    except RuntimeError:
        return False
    return True
