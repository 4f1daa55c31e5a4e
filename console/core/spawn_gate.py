"""At most a few process spawns in flight for the whole engine, with a turn for everything else after each.

A spawn is a handful of blocking steps on the event loop (its intent committed at synchronous=FULL,
fork and exec, the PID recorded): harmless one at a time, a stall when 1,000 loops or 200 sidecars
start in the same moment and the socket waits behind all of them. Through the gate they queue
(waiting costs nothing), at most `in_flight` proceed, and each leaves by yielding to the event loop,
so a snapshot request is answered between two spawns whatever the burst.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

SPAWNS_IN_FLIGHT = 4


class SpawnGate:
    def __init__(self, in_flight: int = SPAWNS_IN_FLIGHT) -> None:
        self._slots = asyncio.Semaphore(in_flight)
        self.in_flight = in_flight
        self.waiting = 0  # for the USR1 dump and the tests: how many spawns queue at the gate

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        try:
            yield
        finally:
            self._slots.release()
        await asyncio.sleep(0)  # the others' turn (the socket's among them) before this task goes on
