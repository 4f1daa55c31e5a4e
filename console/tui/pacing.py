"""At most one render of the engine's pushes per spacing: the latest push, at once when the last was
long enough ago, else when the spacing is up (never a queue of old ones).

A 1,000-loop host pushes about eight snapshots a second while its loops run, and each one drawn
cost the console its decode, its rows and a frame: most of its CPU (issue 19). One a second is
what an operator reads during a burst (top redraws every 3 s); a change on a quiet host still shows
at once, and so does the outcome of an operator's own action (`expedite`). The console's 1 s tick
draws a held push itself (`flush`), so a push and the second's countdowns make one frame.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

SPACING = 1.0  # seconds between renders of pushes during a burst, at most one a second


class Pacer(Generic[T]):
    """`pacer(item)` hands `sink` the latest item, paced. Frame pacing is the screen's own time (the
    event loop's clock), not the engine's injected one: a fake clock must not stop the screen."""

    def __init__(self, sink: Callable[[T], None], spacing: float = SPACING,
                 now: Callable[[], float] = time.monotonic) -> None:
        self._sink = sink
        self._spacing = spacing
        self._now = now
        self._last = float("-inf")
        self._pending: T | None = None
        self._timer: asyncio.TimerHandle | None = None

    def __call__(self, item: T) -> None:
        self._pending = item
        if self._timer is not None:  # a render is due already: it takes this one, the latest
            return
        wait = self._last + self._spacing - self._now()
        if wait <= 0:
            self._flush()
        else:
            self._timer = asyncio.get_running_loop().call_later(wait, self._flush)

    def _flush(self) -> None:
        self._timer = None
        item, self._pending = self._pending, None
        if item is None:
            return
        self._last = self._now()
        self._sink(item)

    def flush(self) -> bool:
        """The held item now, if there is one (the tick draws it): True if one was handed on."""
        if self._pending is None:
            return False
        if self._timer is not None:
            self._timer.cancel()
        self._flush()
        return True

    def expedite(self) -> None:
        """An operator acted: what is held now, and the next item (the action's outcome) at once."""
        self.flush()
        self._last = float("-inf")

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._pending = None
