"""The engine's own long-lived tasks under a supervisor (DESIGN rule 10): no task dies silently.

A task body that raises is logged with its traceback, its thing gets a reason (`task_crashed`,
naming the task and the error), and it is started again after a backoff; one that keeps crashing
is latched (`task_latched`) until the engine restarts. A restarted body that runs a minute (or says
it `ran_well`) clears its reason. A body that returns has finished its work.
The decision (`restart_delay`) is pure; the shell (`Tasks`) only creates, waits and cancels.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from console.core.clock import Clock
from console.core.printable import printable
from console.core.records import View
from console.core.waiting import sleep_unless

log = logging.getLogger("loopctl.tasks")

FIRST_DELAY = 1.0
MAX_DELAY = 60.0
LATCH_AFTER = 8  # crashes in a row, none of them after a stable run
STABLE_SECONDS = 300.0  # a body that ran this long before it crashed starts the count anew
CLEAR_AFTER = 60.0  # a restarted body still running after this: its reason clears (the count stays)


def restart_delay(crashes: int) -> float | None:
    """Seconds before the next start after `crashes` crashes in a row; None: latch it."""
    if crashes >= LATCH_AFTER:
        return None
    return min(MAX_DELAY, FIRST_DELAY * 2.0 ** max(0, crashes - 1))


class TaskTrouble(View, frozen=True):
    """A supervised task's last crash, while it is restarting or latched."""

    name: str
    subject: str  # "kind:name" of the thing the task works for ("" for the host)
    error: str  # `Type: message`, one line
    crashes: int
    latched: bool
    restart_at: float | None = None


class Tasks:
    def __init__(self, clock: Clock, on_change: Callable[[], None] = lambda: None) -> None:
        self.clock = clock
        self.on_change = on_change
        self.trouble: dict[str, TaskTrouble] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def spawn(self, name: str, body: Callable[[], Awaitable[None]], subject: str = "") -> asyncio.Task[None]:
        """Run `body()` under supervision as task `name` (a running task of that name is replaced)."""
        old = self._tasks.pop(name, None)
        if old is not None:
            old.cancel()
        task = asyncio.create_task(self._supervise(name, body, subject), name=name)
        self._tasks[name] = task
        task.add_done_callback(lambda done: self._tasks.pop(name, None) if self._tasks.get(name) is done else None)
        return task

    async def _supervise(self, name: str, body: Callable[[], Awaitable[None]], subject: str) -> None:
        crashes = 0
        while True:
            started = self.clock.monotonic()
            running = asyncio.ensure_future(body())
            try:
                if name in self.trouble and await sleep_unless(self.clock, CLEAR_AFTER, running):
                    self.ran_well(name)
                await running
            except asyncio.CancelledError:
                running.cancel()
                raise
            except Exception as exc:  # the point of the supervisor: any bug in a body
                crashes = 1 if self.clock.monotonic() - started >= STABLE_SECONDS else crashes + 1
                delay = restart_delay(crashes)
                error = printable(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__, lines=False)[:300]
                log.error("task %s crashed (%s); %s", name, error,
                          f"restarting in {delay:g} s" if delay is not None else "latched", exc_info=exc)
                self.trouble[name] = TaskTrouble(name, subject, error, crashes, delay is None,
                                                 None if delay is None else self.clock.time() + delay)
                self.on_change()
                if delay is None:
                    return
                await self.clock.sleep(delay)
                continue
            if self.trouble.pop(name, None) is not None:
                self.on_change()
            return

    def ran_well(self, name: str) -> None:
        """A body's iteration succeeded after a crash: its reason clears (the count stays until stable)."""
        if self.trouble.pop(name, None) is not None:
            self.on_change()

    async def stop(self, *names: str) -> None:
        """Cancel the named tasks (all of them without names) and wait; nothing they raise escapes."""
        chosen = [self._tasks[n] for n in names if n in self._tasks] if names else list(self._tasks.values())
        for task in chosen:
            task.cancel()
        await asyncio.gather(*chosen, return_exceptions=True)
        for name in names or list(self.trouble):
            self.trouble.pop(name, None)

    def troubles(self) -> list[TaskTrouble]:
        return sorted(self.trouble.values(), key=lambda t: t.name)
