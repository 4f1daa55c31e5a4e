"""When a loop's runs start: the spread of first runs and the jitter of intervals (README, 'Loops at
scale'). Pure decisions; the scheduler sleeps what they say.

Loops that start together (an engine's boot, a reload that adds many) would otherwise all fire at
once, and, their runs taking alike, fire together again every interval: 1,000 loops on a 60 s interval
spawned 1,000 processes in one burst a minute. So:

- a loop's first run waits `first_run_delay`: its place in a spread of `(starting - 1) /
  STARTS_PER_SECOND` seconds (at most one interval), fixed by a hash of its id, so a loop keeps its
  place across restarts and one loop alone starts at once;
- each pause between runs is the interval plus up to INTERVAL_JITTER of it (at most
  MAX_INTERVAL_JITTER seconds), drawn afresh each time, so loops drift apart instead of into step.
  Never less than the interval: an operator's interval is the least time between runs.
"""

from __future__ import annotations

import hashlib

STARTS_PER_SECOND = 25.0  # first runs begun per second when many loops start together
INTERVAL_JITTER = 0.1  # a pause is the interval plus up to a tenth of it ...
MAX_INTERVAL_JITTER = 30.0  # ... but never more than this many seconds beyond it


def place(loop_id: str) -> float:
    """A fixed fraction in [0, 1) for a loop id: where in a spread the loop goes."""
    digest = hashlib.blake2b(loop_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def first_run_delay(loop_id: str, starting: int, interval: float) -> float:
    """Seconds before the first run of a loop that starts with `starting` loops (itself included)."""
    spread = min(max(interval, 0.0), max(starting - 1, 0) / STARTS_PER_SECOND)
    return spread * place(loop_id)


def pause_after_run(interval: float, draw: float) -> float:
    """The pause before the next run, for a uniform `draw` in [0, 1)."""
    return interval + draw * min(interval * INTERVAL_JITTER, MAX_INTERVAL_JITTER)
