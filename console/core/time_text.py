"""How times and durations read, the same on screen, in `--once` reports and in the Config tab. Pure."""

from __future__ import annotations

import time


def duration(seconds: float | None) -> str:
    """`45s`, `12m05s`, `3h02m`, `2d04h`: short enough for a table cell."""
    if seconds is None:
        return "-"
    s = int(max(0.0, seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 86400}d{(s % 86400) // 3600:02d}h"


def clock_time(at: float | None) -> str:
    """A moment in the host's local time, to the second."""
    return "-" if at is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))
