"""Injected time. Backoff, probation, heartbeat and timeouts read a Clock, never `time` directly.

Tests use `FakeClock` (fake_clock.py) and `advance()` it: nothing sleeps for real to test a timer.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float:
        """Wall-clock seconds since the epoch (for records and display)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards (for deadlines)."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        # Imported here: asyncio costs ~75 ms to import and `--once` never sleeps.
        import asyncio  # noqa: PLC0415

        await asyncio.sleep(max(0.0, seconds))
