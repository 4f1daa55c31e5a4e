"""Stop reasons, liveness and continuations: pure, first match wins, exhaustively tabled."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from console.runs.continuation import (
    SECTION_MAX,
    SUMMARY_MAX,
    RunLine,
    after_run,
    continuation_summary,
)
from console.runs.handoff import Evidence, Handoff, parse_handoff
from console.runs.liveness import (
    LIVENESS_REASON_MAX,
    Ending,
    Liveness,
    RunStatus,
    StopReason,
    classify_liveness,
    run_status,
    stop_reason,
)

H = Handoff(present=True)


@pytest.mark.parametrize(
    ("end", "handoff", "status", "reason"),
    [
        (Ending(exit_code=0), H, RunStatus.SUCCEEDED, StopReason.COMPLETED),
        (Ending(exit_code=1), H, RunStatus.FAILED, StopReason.ADAPTER_FAILED),
        (Ending(exit_code=0, cancelled=True, timeout_fired=True), H, RunStatus.CANCELLED, StopReason.CANCELLED),
        (Ending(signal=15, timeout_fired=True), H, RunStatus.TIMED_OUT, StopReason.TIMEOUT),
        (Ending(process_lost=True), H, RunStatus.FAILED, StopReason.PROCESS_LOST),
        (Ending(spawn_failed=True), H, RunStatus.FAILED, StopReason.ADAPTER_FAILED),
        (Ending(exit_code=0, paused=True), H, RunStatus.SUCCEEDED, StopReason.PAUSED),
        (Ending(exit_code=0), Handoff(present=True, stop_reason="max_turns_exhausted"), RunStatus.SUCCEEDED,
         StopReason.MAX_TURNS_EXHAUSTED),
    ],
)
def test_status_and_stop_reason(end, handoff, status, reason):
    assert run_status(end) is status
    assert stop_reason(end, handoff) is reason


EV = Evidence(files_changed=["a.py"])


@pytest.mark.parametrize(
    ("status", "handoff", "tail", "liveness"),
    [
        (RunStatus.FAILED, Handoff(present=True, actionability="done"), "x", Liveness.FAILED),
        (RunStatus.TIMED_OUT, H, "", Liveness.FAILED),
        (RunStatus.SUCCEEDED, Handoff(present=True, actionability="done", summary="shipped"), "", Liveness.COMPLETED),
        (RunStatus.SUCCEEDED, Handoff(present=True, actionability="blocked", evidence=EV), "", Liveness.BLOCKED),
        (RunStatus.SUCCEEDED, Handoff(present=True, actionability="approval_required"), "", Liveness.BLOCKED),
        (RunStatus.SUCCEEDED, Handoff(problem="no handoff file"), "", Liveness.EMPTY_RESPONSE),
        (RunStatus.SUCCEEDED, H, "   \n", Liveness.EMPTY_RESPONSE),
        (RunStatus.SUCCEEDED, Handoff(present=True, evidence=EV, next_action="more"), "", Liveness.ADVANCED),
        (RunStatus.SUCCEEDED, Handoff(present=True, evidence=EV), "", Liveness.ADVANCED),
        (RunStatus.SUCCEEDED, Handoff(present=True, next_action="edit x", actionability="runnable"), "",
         Liveness.PLAN_ONLY),
        (RunStatus.SUCCEEDED, Handoff(present=True, next_action="ask owner"), "", Liveness.NEEDS_FOLLOWUP),
        (RunStatus.SUCCEEDED, Handoff(present=True, summary="thought about it"), "", Liveness.NEEDS_FOLLOWUP),
        (RunStatus.SUCCEEDED, Handoff(problem="handoff is not JSON"), "printed things", Liveness.NEEDS_FOLLOWUP),
    ],
)
def test_liveness_first_match_wins(status, handoff, tail, liveness):
    verdict = classify_liveness(status, handoff, tail)
    assert verdict.liveness is liveness, verdict.reason
    assert verdict.reason and "\n" not in verdict.reason


@given(st.text(max_size=3000), st.text(max_size=3000))
def test_liveness_reason_is_bounded(summary, action):
    for actionability in ("", "done", "blocked", "runnable"):
        v = classify_liveness(RunStatus.SUCCEEDED, Handoff(present=True, summary=summary, next_action=action,
                                                           actionability=actionability), "")
        assert len(v.reason) <= LIVENESS_REASON_MAX


@pytest.mark.parametrize(
    ("raw", "problem"),
    [(None, "no handoff file"), (b"{", "not JSON"), (b"[1]", "not a JSON object"), (b"\xff\xfe", "not JSON"),
     (b"x" * (300 * 1024), "larger than")],
)
def test_malformed_or_missing_handoffs_are_classified_not_raised(raw, problem):
    h = parse_handoff(raw)
    assert problem in h.problem
    assert classify_liveness(RunStatus.SUCCEEDED, h, "").liveness is Liveness.EMPTY_RESPONSE


def test_handoff_fields_with_wrong_types_are_ignored_not_fatal():
    h = parse_handoff(json.dumps({"summary": 5, "next_action": ["x"], "evidence": {"commits": "abc",
                                  "files_changed": ["a", 3, None, ""]}}).encode())
    assert h.summary == "" and h.next_action == "" and h.evidence.commits == []
    assert h.evidence.files_changed == ["a", "3"]


@pytest.mark.parametrize(
    ("liveness", "attempt", "kind", "next_attempt"),
    [
        (Liveness.PLAN_ONLY, 0, "continue", 1),
        (Liveness.EMPTY_RESPONSE, 1, "continue", 2),
        (Liveness.PLAN_ONLY, 2, "escalate", 0),
        (Liveness.ADVANCED, 0, "none", 0),
        (Liveness.NEEDS_FOLLOWUP, 2, "none", 0),
        (Liveness.FAILED, 1, "none", 0),
    ],
)
def test_continuations_stop_at_two_per_chain(liveness, attempt, kind, next_attempt):
    step = after_run(liveness, attempt)
    assert (step.kind, step.attempt) == (kind, next_attempt)


def test_continuation_summary_has_the_sections_and_respects_the_limits():
    recent = [RunLine(f"01RUN{i:04d}", "succeeded", "completed", "plan_only", "planned " * 200) for i in range(40)]
    text = continuation_summary(loop_id="docs", objective="o" * 5000, attempt=1, liveness=Liveness.PLAN_ONLY,
                                agent_next_action="edit README", recent=recent)
    assert len(text) <= SUMMARY_MAX
    for title in ("Status", "Mode", "Objective", "Recent runs", "Next action"):
        assert f"## {title}" in text
    sections = text.split("## ")[1:]
    assert all(len("## " + s) <= SECTION_MAX for s in sections)
    assert "Do it now, not another plan: edit README" in text
    assert "attempt 1 of 2" in text
    # The last attempt's summary says that no continuation follows it, in the words the escalation uses.
    last = continuation_summary(loop_id="docs", objective="o", attempt=2, liveness=Liveness.PLAN_ONLY,
                                agent_next_action="edit README", recent=recent[:3])
    assert "attempt 2 of 2" in last and after_run(Liveness.PLAN_ONLY, 2).kind == "escalate"


def test_the_evidence_reason_counts_in_words_an_operator_reads():
    one = Handoff(present=True, evidence=Evidence(files_changed=["a.py"], commits=["abc"], artifacts=[]))
    two = Handoff(present=True, evidence=Evidence(files_changed=["a.py", "b.py"], commits=["abc", "def"],
                                                   artifacts=["r.html", "s.html"]))
    assert classify_liveness(RunStatus.SUCCEEDED, one, "").reason == "evidence: 1 file changed, 1 commit, 0 artifacts"
    assert classify_liveness(RunStatus.SUCCEEDED, two, "").reason == "evidence: 2 files changed, 2 commits, 2 artifacts"
