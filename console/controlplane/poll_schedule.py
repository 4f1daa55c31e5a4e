"""When the next config poll happens, pure. Retry-After in either RFC 9110 form (delay-seconds as
ASCII digits, or an HTTP-date read by `email.utils`); anything else (a Unicode digit such as `²`,
thousands of digits, a sign, a fraction) is garbage and falls back to linear backoff. No server can
make a host wait longer than RETRY_AFTER_CAP or spin faster than RETRY_AFTER_FLOOR.
"""

from __future__ import annotations

import email.utils
import re
from datetime import UTC

from console.core.records import View

RETRY_AFTER_FLOOR = 1.0
RETRY_AFTER_CAP = 3600.0
LINEAR_STEP = 30.0
LEGACY_CAP = 3600.0

# Ten ASCII digits are more than the cap in seconds: anything longer is refused before int() sees it.
_SECONDS = re.compile(r"[0-9]{1,10}")
_LONGEST_DATE = 64


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait, or None when the header is absent or not a valid Retry-After."""
    if value is None:
        return None
    text = value.strip(" \t")
    if _SECONDS.fullmatch(text):
        return float(int(text))
    if len(text) > _LONGEST_DATE or not text.isascii():
        return None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # asctime has no zone; HTTP-dates are GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


class Streak(View, frozen=True):
    """Consecutive outcomes that lengthen the wait; any success resets both."""

    failures: int = 0
    not_found: int = 0


def next_delay(status: int | None, interval: float, streak: Streak, retry_after: float | None) -> float:
    """After a poll answered `status` (None: no answer), and the streak including this poll."""
    if status in (200, 304):
        return interval
    if status == 404:  # a control plane without remote config: ask rarely, longer each time
        return min(max(interval, LEGACY_CAP), interval * 2.0 ** max(0, streak.not_found - 1))
    if status in (429, 503) and retry_after is not None:
        return min(RETRY_AFTER_CAP, max(RETRY_AFTER_FLOOR, retry_after))
    return min(interval, LINEAR_STEP * max(1, streak.failures))


def advance(streak: Streak, status: int | None, failed: bool) -> Streak:
    if status == 404:
        return Streak(failures=0, not_found=streak.not_found + 1)
    if failed:
        return Streak(failures=streak.failures + 1, not_found=0)
    return Streak()
