"""How a run stopped, and whether it moved the work forward. Pure functions, first match wins.

Stop reasons say what ended the execution window; liveness says what the window achieved, so the
scheduler can tell an agent that is advancing from one that only writes plans or says nothing.
"""

from __future__ import annotations

from enum import StrEnum

from console.core.plurals import counted
from console.core.records import View
from console.runs.handoff import Handoff

LIVENESS_REASON_MAX = 500


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"

    @property
    def finished(self) -> bool:
        return self not in (RunStatus.QUEUED, RunStatus.RUNNING)


class StopReason(StrEnum):
    COMPLETED = "completed"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"
    PAUSED = "paused"
    PROCESS_LOST = "process_lost"
    ADAPTER_FAILED = "adapter_failed"
    MAX_TURNS_EXHAUSTED = "max_turns_exhausted"


class Liveness(StrEnum):
    COMPLETED = "completed"
    ADVANCED = "advanced"
    PLAN_ONLY = "plan_only"
    EMPTY_RESPONSE = "empty_response"
    BLOCKED = "blocked"
    FAILED = "failed"
    NEEDS_FOLLOWUP = "needs_followup"


CONTINUABLE = (Liveness.PLAN_ONLY, Liveness.EMPTY_RESPONSE)


class Ending(View, frozen=True):
    """What the shell observed when the window closed."""

    exit_code: int | None = None  # None: no exit status (lost, detached, never started)
    signal: int | None = None
    timeout_fired: bool = False
    cancelled: bool = False
    paused: bool = False
    process_lost: bool = False
    spawn_failed: bool = False


def run_status(end: Ending) -> RunStatus:
    if end.cancelled or (end.paused and end.exit_code != 0):  # ended by the operator, not by the agent
        return RunStatus.CANCELLED
    if end.timeout_fired:
        return RunStatus.TIMED_OUT
    if end.process_lost or end.spawn_failed:
        return RunStatus.FAILED
    return RunStatus.SUCCEEDED if end.exit_code == 0 else RunStatus.FAILED


def stop_reason(end: Ending, handoff: Handoff) -> StopReason:
    """First match wins: the operator, then the clock, then the process, then what the agent said."""
    if end.cancelled:
        return StopReason.CANCELLED
    if end.timeout_fired:
        return StopReason.TIMEOUT
    if end.paused:
        return StopReason.PAUSED
    if end.process_lost:
        return StopReason.PROCESS_LOST
    if end.spawn_failed:
        return StopReason.ADAPTER_FAILED
    if handoff.stop_reason == StopReason.MAX_TURNS_EXHAUSTED:
        return StopReason.MAX_TURNS_EXHAUSTED
    if end.exit_code == 0:
        return StopReason.COMPLETED
    return StopReason.ADAPTER_FAILED


class Verdict(View, frozen=True):
    liveness: Liveness
    reason: str  # <= 500 characters, one line


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= LIVENESS_REASON_MAX else text[: LIVENESS_REASON_MAX - 1] + "…"


def classify_liveness(status: RunStatus, handoff: Handoff, output_tail: str) -> Verdict:
    """First match wins: not succeeded -> failed; done -> completed; blocked or approval_required ->
    blocked; no output and no evidence -> empty_response; evidence -> advanced; a plan or a next action
    -> plan_only when runnable, else needs_followup; other output -> needs_followup."""
    if status is not RunStatus.SUCCEEDED:
        return Verdict(Liveness.FAILED, _clip(f"run {status.value}"
                                              + (f"; handoff: {handoff.problem}" if handoff.problem else "")))
    if handoff.actionability == "done":
        return Verdict(Liveness.COMPLETED, _clip(f"agent reports done: {handoff.summary or 'no summary'}"))
    if handoff.actionability in ("blocked", "approval_required"):
        return Verdict(Liveness.BLOCKED, _clip(f"agent is {handoff.actionability.replace('_', ' ')}: "
                                               f"{handoff.next_action or handoff.summary or 'no detail'}"))
    has_output = bool(handoff.summary or handoff.next_action or output_tail.strip())
    if not has_output and not handoff.evidence.any:
        why = handoff.problem or "handoff has no summary, next action or evidence"
        return Verdict(Liveness.EMPTY_RESPONSE, _clip(f"no output and no evidence ({why})"))
    if handoff.evidence.any:
        ev = handoff.evidence
        return Verdict(Liveness.ADVANCED, _clip(f"evidence: {counted(len(ev.files_changed), 'file')} changed, "
                                                f"{counted(len(ev.commits), 'commit')}, "
                                                f"{counted(len(ev.artifacts), 'artifact')}"))
    if handoff.next_action:
        if handoff.actionability == "runnable":
            return Verdict(Liveness.PLAN_ONLY, _clip(f"planned without acting: {handoff.next_action}"))
        return Verdict(Liveness.NEEDS_FOLLOWUP, _clip(f"next action not marked runnable: {handoff.next_action}"))
    return Verdict(Liveness.NEEDS_FOLLOWUP, _clip("output but no evidence and no next action"
                                                  + (f" ({handoff.problem})" if handoff.problem else "")))
