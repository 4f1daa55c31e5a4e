"""A version counter that watchers await: the socket's `watch` and the TUI push a new snapshot
when something changed, not on a timer. Slow watchers coalesce to the newest version.

Runs on the event loop thread only.
"""

from __future__ import annotations

import asyncio


class ChangeFeed:
    def __init__(self) -> None:
        self.version = 0
        self._waiters: list[asyncio.Future[int]] = []

    def bump(self) -> None:
        self.version += 1
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(self.version)

    async def wait_newer(self, seen: int) -> int:
        """Return the current version once it is newer than `seen`."""
        if self.version > seen:
            return self.version
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            return await fut
        finally:
            if fut in self._waiters:
                self._waiters.remove(fut)
