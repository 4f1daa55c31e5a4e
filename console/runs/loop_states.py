"""Which loop state an event may lead to: one pure table for the scheduler, the operator's actions
and the control plane's answers alike, so an operator's latch is never undone by noise.

`escalated` is the operator's latch (continuations or process-loss retries exhausted): only the
operator's retry clears it; the control plane pausing and resuming the loop, or a heartbeat failing
and recovering, leave it escalated. `finalized` is terminal: nothing leads out of it. The control
plane ending a loop (timed out, token refused) finalizes it from any state, an escalated one too:
a loop that no longer exists there has nothing left for a retry to clear.
"""

from __future__ import annotations

from enum import StrEnum


class LoopState(StrEnum):
    ACTIVE = "active"
    TRANSIENT = "transient"  # the last heartbeat failed transiently; still live, runs go on
    PAUSED = "paused"  # the control plane paused it
    ESCALATED = "escalated"  # latched until the operator retries it
    FINALIZED = "finalized"  # terminal
    DISABLED = "disabled"  # enabled = false in the config


class LoopEvent(StrEnum):
    SCHEDULING = "scheduling"  # the engine starts the loop's scheduler
    DISABLED = "disabled"  # the config turns it off
    ESCALATE = "escalate"  # continuations or process-loss retries exhausted
    OPERATOR_RETRY = "operator_retry"  # `retry loop:X`, or a retry of one of its runs
    PLANE_ACTIVE = "plane_active"  # a live heartbeat: the control plane says active
    PLANE_PAUSED = "plane_paused"
    PLANE_ENDED = "plane_ended"  # timed out there, or a terminal heartbeat (unauthorized, gone)
    HEARTBEAT_TRANSIENT = "heartbeat_transient"


# States in which a loop starts no runs.
HELD = frozenset({LoopState.ESCALATED, LoopState.PAUSED, LoopState.FINALIZED})

_TABLE: dict[LoopEvent, dict[LoopState, LoopState]] = {
    LoopEvent.SCHEDULING: {LoopState.ACTIVE: LoopState.ACTIVE, LoopState.TRANSIENT: LoopState.ACTIVE,
                           LoopState.DISABLED: LoopState.ACTIVE},
    LoopEvent.DISABLED: {s: LoopState.DISABLED for s in LoopState if s is not LoopState.FINALIZED},
    LoopEvent.ESCALATE: {LoopState.ACTIVE: LoopState.ESCALATED, LoopState.TRANSIENT: LoopState.ESCALATED,
                         LoopState.PAUSED: LoopState.ESCALATED, LoopState.ESCALATED: LoopState.ESCALATED},
    LoopEvent.OPERATOR_RETRY: {LoopState.ESCALATED: LoopState.ACTIVE},
    LoopEvent.PLANE_ACTIVE: {LoopState.PAUSED: LoopState.ACTIVE, LoopState.TRANSIENT: LoopState.ACTIVE},
    LoopEvent.PLANE_PAUSED: {LoopState.ACTIVE: LoopState.PAUSED, LoopState.TRANSIENT: LoopState.PAUSED,
                             LoopState.PAUSED: LoopState.PAUSED},
    LoopEvent.PLANE_ENDED: {s: LoopState.FINALIZED for s in LoopState},
    LoopEvent.HEARTBEAT_TRANSIENT: {LoopState.ACTIVE: LoopState.TRANSIENT, LoopState.TRANSIENT: LoopState.TRANSIENT},
}


def loop_state(text: str | None) -> LoopState:
    """A stored state as the enum; a loop never seen before is active."""
    try:
        return LoopState(text or LoopState.ACTIVE)
    except ValueError:
        return LoopState.ACTIVE


def after(state: LoopState, event: LoopEvent) -> LoopState | None:
    """The state `event` leads to from `state`, or None when the event may not change it."""
    return _TABLE[event].get(state)
