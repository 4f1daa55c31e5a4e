"""How times, durations and run metadata read on screen. Pure: `now` is always passed in."""

from __future__ import annotations

import time

from console.engine.snapshot import RunView


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


def ago(at: float | None, now: float) -> str:
    return "-" if at is None else f"{duration(now - at)} ago"


def countdown(at: float | None, now: float) -> str:
    if at is None:
        return "-"
    left = at - now
    return "now" if left <= 0 else f"in {duration(left)}"


def clock_time(at: float | None) -> str:
    return "-" if at is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))


def stop_text(run: RunView) -> str:
    """`timeout (1800 s)` says which limit fired; other reasons as they are."""
    if run.stop_reason == "timeout" and run.effective_timeout_sec:
        return f"timeout ({run.effective_timeout_sec:g} s)"
    return run.stop_reason or "-"


def run_duration(run: RunView, now: float) -> str:
    if run.started_at is None:
        return "-"
    end = run.finished_at if run.finished_at is not None else now
    return duration(end - run.started_at)


def continuation_text(run: RunView) -> str:
    return f"{run.continuation_attempt}/2" if run.continuation_attempt else "-"


LIVENESS_BADGES = {
    "completed": "✔ completed", "advanced": "▲ advanced", "plan_only": "… plan_only",
    "empty_response": "∅ empty", "blocked": "■ blocked", "failed": "✖ failed", "needs_followup": "? followup",
}


def liveness_badge(liveness: str | None) -> str:
    return LIVENESS_BADGES.get(liveness or "", liveness or "-")
