"""Run ids: ULID-style, time-sortable, Crockford base 32 (the runs concept makes them; faces show their ends)."""

from __future__ import annotations

import os

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class RunIds:
    """ULID-style ids (48-bit millisecond time + 80 bits): sorting by id sorts by creation time.
    Within one millisecond the random part counts up, so order holds there too."""

    def __init__(self) -> None:
        self._last_ms = -1
        self._last_rand = 0

    def new(self, now: float) -> str:
        ms = int(now * 1000)
        if ms <= self._last_ms:
            ms = self._last_ms
            self._last_rand += 1
        else:
            self._last_ms = ms
            self._last_rand = int.from_bytes(os.urandom(10), "big") >> 1  # room to count up
        return ulid(ms, self._last_rand)


def ulid(ms: int, rand: int) -> str:
    """The id of a run queued at `ms` (milliseconds since the epoch), `rand` its 80 random bits."""
    return _encode(ms, 10) + _encode(rand, 16)


def _encode(value: int, width: int) -> str:
    chars = []
    for _ in range(width):
        value, digit = divmod(value, 32)
        chars.append(CROCKFORD[digit])
    return "".join(reversed(chars))
