"""At most one render of the engine's pushes per spacing: the latest push, at once when the last was
long enough ago, else when the spacing is up (never a queue of old ones).

A 1,000-loop host pushes about eight snapshots a second while its loops run, and each one drawn
cost the console its decode, its rows and a screen's layout: most of its CPU (issue 19). Four a
second is more than an operator reads; a change on a quiet host still shows at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

SPACING = 0.25  # seconds between renders of pushes, at most four a second


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

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._pending = None
