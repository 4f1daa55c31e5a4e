"""The detail renderables as plain text."""

from __future__ import annotations

from pathlib import Path

from console.core.records import replace
from console.tui.detail import loop_detail, run_detail
from console.tui.scenario import NOW, scenario_snapshot
from tests.tui.conftest import field, rendered


def provenance(loop_id: str, provenance: str, joined: bool = True) -> str:
    snap = scenario_snapshot()
    if not joined:
        snap = replace(snap, control_plane=None)
    lp = replace(next(lp for lp in snap.loops if lp.id == loop_id), provenance=provenance)
    return field(loop_detail(lp, snap, NOW), "provenance")


def test_provenance_says_whose_token_and_never_calls_a_joined_host_local():
    assert provenance("docs", "user").startswith("user: its own runner token")
    assert provenance("docs", "managed").startswith("managed: created on the control plane by this engine")
    assert provenance("docs", "local", joined=False).startswith("local: runs on this host, no control plane")
    assert provenance("docs", "local").startswith("managed, not created on the control plane yet")


def run_field(label: str, **kw: object) -> str:
    run = replace(scenario_snapshot().runs[0], **kw)
    return field(run_detail(run, Path("/nonexistent"), NOW), label)


def ended(**kw: object) -> str:
    return run_field("ended", **kw)


def test_ended_says_how_and_why_and_a_lost_process_only_why():
    assert ended(exit_code=0, exit_signal=None, error_code="", error_text="") == "exit code 0"
    assert ended(exit_code=None, exit_signal=15, error_code="", error_text="") == "signal 15"
    assert ended(exit_code=None, exit_signal=None, error_code="process_lost",
                 error_text="pid 954 is gone") == "process_lost: pid 954 is gone"
    assert ended(exit_code=3, exit_signal=None, error_code="", error_text="boom") == "exit code 3; boom"
    assert ended(exit_code=None, exit_signal=None, error_code="", error_text="") == "-"


def timeout_line(**kw: object) -> str:
    return run_field("timeout", **kw)


def test_a_running_runs_timeout_counts_down_and_a_finished_one_says_whether_it_fired():
    running = {"status": "running", "timeout_configured": True, "effective_timeout_sec": 1800.0,
               "started_at": NOW - 95, "timeout_fired": False}
    assert timeout_line(**running) == "1800 s, fires in 28m25s"
    assert timeout_line(**running | {"started_at": NOW - 1900}) == "1800 s, fires now"
    assert timeout_line(**running | {"status": "timed_out", "timeout_fired": True}) == "1800 s, fired"
    assert timeout_line(**running | {"status": "succeeded"}) == "1800 s, not fired"
    assert timeout_line(**running | {"timeout_configured": False}) == "none configured"


def test_a_held_sidecar_and_a_loop_paused_here_say_by_which_command_when_and_what_undoes_it():
    from console.readmodel.snapshot import LoopView, SidecarView
    from console.tui.detail import loop_detail, sidecar_detail
    from console.tui.scenario import NOW, scenario_snapshot

    held = SidecarView(name="web", state="stopped", held_by="loopctl stop sidecar:web", held_at=NOW - 120)
    assert field(sidecar_detail(held, NOW), "held") == \
        "stopped by `loopctl stop sidecar:web` 2m00s ago; u (or `loopctl start sidecar:web`) starts it"
    paused = LoopView(id="docs", held_by="loopctl pause loop:docs", held_at=NOW - 60)
    text = field(loop_detail(paused, scenario_snapshot(), NOW), "paused here")
    assert text.startswith("by `loopctl pause loop:docs` 1m00s ago") and "control-plane state stays active" in text
    for width in (80, 120):
        lines = rendered(loop_detail(paused, scenario_snapshot(), NOW), width)
        assert all(len(line) <= width for line in lines)


def test_a_loop_detail_says_its_last_revival_at_80_and_120_columns():
    from console.readmodel.snapshot import LoopView
    from console.tui.detail import loop_detail
    from console.tui.scenario import NOW, scenario_snapshot

    lp = LoopView(id="docs", provenance="managed", revived_at=NOW - 600, revived_jti="7f3a",
                  revived_expires_at=NOW + 3000)
    assert field(loop_detail(lp, scenario_snapshot(), NOW), "last revival") == \
        "by proof of possession 10m00s ago: token jti 7f3a, expires in 50m00s"
    for width in (80, 120):
        assert all(len(line) <= width for line in rendered(loop_detail(lp, scenario_snapshot(), NOW), width))
