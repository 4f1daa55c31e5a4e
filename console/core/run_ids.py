"""Run ids: ULID-style, time-sortable, Crockford base 32 (the runs concept makes them; faces show their ends)."""

from __future__ import annotations

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid(ms: int, rand: int) -> str:
    """The id of a run queued at `ms` (milliseconds since the epoch), `rand` its 80 random bits."""
    return _encode(ms, 10) + _encode(rand, 16)


def _encode(value: int, width: int) -> str:
    chars = []
    for _ in range(width):
        value, digit = divmod(value, 32)
        chars.append(CROCKFORD[digit])
    return "".join(reversed(chars))
