"""Every (loop state, event) pair: which transitions each event may cause. Spelled out whole, so a
change to the table is a change to this test."""

from __future__ import annotations

import pytest

from console.runs.loop_states import LoopEvent, LoopState, after

A, T, P, E, F, D = (LoopState.ACTIVE, LoopState.TRANSIENT, LoopState.PAUSED, LoopState.ESCALATED,
                    LoopState.FINALIZED, LoopState.DISABLED)
STATES = (A, T, P, E, F, D)

# event: what each of (active, transient, paused, escalated, finalized, disabled) becomes; None: unchanged
EXPECTED: dict[LoopEvent, tuple[LoopState | None, ...]] = {
    LoopEvent.SCHEDULING: (A, A, None, None, None, A),
    LoopEvent.DISABLED: (D, D, D, D, None, D),
    LoopEvent.ESCALATE: (E, E, E, E, None, None),
    LoopEvent.OPERATOR_RETRY: (None, None, None, A, None, None),  # only the operator clears the latch
    LoopEvent.PLANE_ACTIVE: (None, A, A, None, None, None),  # a resume never clears an escalation
    LoopEvent.PLANE_PAUSED: (P, P, P, None, None, None),  # nor does a pause replace it
    LoopEvent.PLANE_ENDED: (F, F, F, F, F, F),  # the loop is gone there: terminal from anywhere
    LoopEvent.HEARTBEAT_TRANSIENT: (T, T, None, None, None, None),
}


def test_every_event_is_in_the_table():
    assert set(EXPECTED) == set(LoopEvent)


@pytest.mark.parametrize("event", list(LoopEvent))
@pytest.mark.parametrize("state", STATES)
def test_each_pair(state, event):
    assert after(state, event) == EXPECTED[event][STATES.index(state)]


def test_nothing_leaves_finalized_but_finalized_and_only_retry_leaves_escalated():
    for event in LoopEvent:
        assert after(F, event) in (None, F)
        if event is not LoopEvent.OPERATOR_RETRY:
            assert after(E, event) in (None, E, F, D)
