"""Sidecar policy as pure functions: backoff, latching, exit classification, tray reasons."""

import pytest

from console.readmodel.snapshot import PortHolderView, SidecarView
from console.readmodel.tray import Level, roll_up, sidecar_reasons
from console.sidecars.policy import (
    SIDECAR_STATES,
    Effect,
    FailureReason,
    SidecarEvent,
    backoff_delay,
    classify_exit,
    clearing_action,
    describe_exit,
    latches,
    on_event,
)


def test_backoff_is_immediate_first_then_one_second_doubling_to_thirty():
    assert [backoff_delay(n) for n in range(1, 10)] == [0, 1, 2, 4, 8, 16, 30, 30, 30]


def test_latching_after_max_restarts():
    assert not latches(5, 5)
    assert latches(6, 5)
    assert latches(1, 0)


@pytest.mark.parametrize(("code", "text"), [(0, "exited with code 0"), (3, "exited with code 3"),
                                            (-9, "killed by SIGKILL"), (-15, "killed by SIGTERM"), (None, "ended")])
def test_describe_exit(code, text):
    assert describe_exit(code) == text


def test_a_bind_failure_is_a_port_conflict_whatever_the_exit_code():
    failure = classify_exit(returncode=1, output_tail="OSError: [Errno 98] Address already in use\n", port=8080,
                            port_held=False, holder_text="")
    assert failure.reason is FailureReason.PORT_CONFLICT and "port 8080 is held" in failure.text
    held = classify_exit(returncode=0, output_tail="", port=8080, port_held=True,
                         holder_text="nginx pid 812 (foreign)")
    assert held.text == "port 8080 is held by nginx pid 812 (foreign); the sidecar exited with code 0"


def test_other_exits_are_crash_loops_with_the_last_output_line():
    failure = classify_exit(returncode=2, output_tail="starting\nValueError: bad flag\n\n", port=0,
                            port_held=False, holder_text="")
    assert failure.reason is FailureReason.CRASH_LOOP
    assert failure.text == "exited with code 2: ValueError: bad flag"


def test_clearing_actions_name_the_command_that_clears_them():
    assert "loopctl reclaim sidecar:web" in clearing_action("web", "port_conflict", port=80, holder_pid=9,
                                                             holder_ours=True)
    foreign = clearing_action("web", "port_conflict", port=80, holder_pid=9, holder_ours=False)
    assert "free port 80 (stop pid 9)" in foreign and "loopctl retry sidecar:web" in foreign
    for reason in ("crash_loop", "ready_timeout", "spawn_error"):
        assert "loopctl retry sidecar:web" in clearing_action("web", reason, port=0, holder_pid=None,
                                                              holder_ours=False)


def test_a_latched_failure_makes_the_tray_degraded_with_the_holder_named():
    failed = SidecarView(name="agent-monitor", state="failed", reason="port_conflict",
                         reason_text="port 4820 is held by nginx pid 812 (foreign)", action="free port 4820",
                         holder=PortHolderView(812, "nginx", False))
    ok = SidecarView(name="db", state="ready")
    tray = roll_up(sidecar_reasons([ok, failed]))
    assert tray.state is Level.DEGRADED
    assert tray.top.code == "port_conflict" and tray.top.subject == "sidecar:agent-monitor"
    assert tray.top.text == "agent-monitor: port 4820 is held by nginx pid 812 (foreign)"
    assert tray.top.action == "free port 4820"


def test_backoff_is_degraded_and_ranks_below_latched_failures():
    restarting = SidecarView(name="a", state="backoff", reason="crash_loop", reason_text="exited; restart 2 of 5")
    failed = SidecarView(name="z", state="failed", reason="crash_loop", reason_text="gave up", action="retry")
    tray = roll_up(sidecar_reasons([restarting, failed]))
    assert [r.code for r in tray.reasons] == ["crash_loop", "sidecar_restarting"]
    assert "loopctl retry sidecar:a" in tray.reasons[1].action
    assert sidecar_reasons([SidecarView(name="s", state="starting")]) == []


# Every (sidecar state, event) pair; `failed` is the latch a reload keeps unless its own config changed.
K, R, S, X = Effect.KEEP, Effect.RESTART, Effect.STOP, Effect.REFUSE
SIDECAR_TABLE = {  # event: effect in (stopped, starting, ready, backoff, stopping, failed), not running / running
    SidecarEvent.RELOAD_UNCHANGED: ((K, K, K, K, K, K), (K, K, K, K, K, K)),
    SidecarEvent.RELOAD_CHANGED: ((R, R, R, R, R, R), (R, R, R, R, R, R)),
    SidecarEvent.REMOVED: ((S, S, S, S, S, S), (S, S, S, S, S, S)),
    SidecarEvent.OPERATOR_RETRY: ((R, X, X, R, X, R), (R, X, X, R, X, R)),
    SidecarEvent.OPERATOR_RECLAIM: ((R, R, R, R, R, R), (X, X, X, X, X, X)),
}


@pytest.mark.parametrize("running", [False, True])
@pytest.mark.parametrize("event", list(SidecarEvent))
@pytest.mark.parametrize("state", SIDECAR_STATES)
def test_each_sidecar_state_and_event(state, event, running):
    assert on_event(state, event, running=running) is SIDECAR_TABLE[event][running][SIDECAR_STATES.index(state)]
