"""Toasts for new failures (DESIGN section 8): what went wrong since the last snapshot, never what was
already wrong when the console opened.

Pure: two snapshots in, the alerts out. Alerts come only between two views of a running engine: a
console opening on a degraded host has the tray and the Overview for that, and an owner going away
has its own message and take-over offer, not a burst of toasts.
"""

from __future__ import annotations

from typing import Literal

from console.core.records import View
from console.readmodel.snapshot import RunView, Snapshot
from console.readmodel.tray import Level, Reason
from console.tui.format import short_id, stop_text

FAILED_RUNS = frozenset({"failed", "timed_out"})  # cancelled is an operator's doing, not a failure
LIMIT = 3  # toasts for one snapshot; a storm (every sidecar at once) gets a count instead of a wall


class Alert(View, frozen=True):
    text: str
    severity: Literal["error", "warning"]  # as Textual's toasts name them: down or a failed run; degraded


def _failing(reason: Reason) -> bool:
    return reason.level in (Level.DEGRADED, Level.DOWN)  # paused is deliberate, ok is fine


def _run_text(run: RunView) -> str:
    why = stop_text(run) if run.stop_reason else (run.error_text or run.error_code)
    # the short id, as the Runs table shows it: a toast is a pointer to the row, not the record
    return f"run {short_id(run.id)} of loop {run.loop_id} {run.status.replace('_', ' ')}" + (f": {why}" if why else "")


def new_failures(before: Snapshot | None, after: Snapshot, *, limit: int = LIMIT) -> list[Alert]:
    if before is None or not (before.engine.running and after.engine.running):
        return []
    known = {(r.code, r.subject, r.level) for r in before.tray.reasons if _failing(r)}
    alerts = [Alert(r.text, "error" if r.level is Level.DOWN else "warning")
              for r in after.tray.reasons if _failing(r) and (r.code, r.subject, r.level) not in known]
    was = {run.id: run.status for run in before.runs}
    alerts += [Alert(_run_text(run), "error") for run in reversed(after.runs)  # oldest first, as they happened
               if run.status in FAILED_RUNS and was.get(run.id) not in FAILED_RUNS]
    if len(alerts) > limit:
        rest = alerts[limit - 1:]
        worst: Literal["error", "warning"] = "error" if any(a.severity == "error" for a in rest) else "warning"
        alerts = [*alerts[:limit - 1], Alert(f"and {len(rest)} more new problems: see 1 Overview and 4 Runs",
                                             worst)]
    return alerts
