"""How relative times and run metadata read on screen. Pure: `now` is always passed in."""

from __future__ import annotations

from console.core.time_text import duration
from console.readmodel.snapshot import RunView


def ago(at: float | None, now: float) -> str:
    return "-" if at is None else f"{duration(now - at)} ago"


def countdown(at: float | None, now: float) -> str:
    if at is None:
        return "-"
    left = at - now
    return "now" if left <= 0 else f"in {duration(left)}"


SHORT_ID = 8


def short_id(run_id: str) -> str:
    """A run id's last characters, random in every run (the leading ones are its time, shared by runs
    queued close together): enough to tell apart the runs on a screen, and an 80-column Runs table
    keeps its stop reasons in view. The detail pane shows the whole id, which `/` also matches."""
    return run_id[-SHORT_ID:]


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
    "completed": "✔ completed", "advanced": "» advanced", "plan_only": "… plan_only",
    "empty_response": "∅ empty", "blocked": "■ blocked", "failed": "✖ failed", "needs_followup": "? followup",
}


def liveness_badge(liveness: str | None) -> str:
    return LIVENESS_BADGES.get(liveness or "", liveness or "-")
