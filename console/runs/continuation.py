"""Continuations: after a run that only planned or said nothing, wake the agent again with a
summary of where things stand. Bounded: at most 2 per source run chain, then escalate.
Pure functions; the scheduler persists what they decide."""

from __future__ import annotations

from console.core.records import View
from console.runs.liveness import CONTINUABLE, Liveness

MAX_CONTINUATIONS = 2
SUMMARY_MAX = 8000
SECTION_MAX = 1200
EXHAUSTED = "continuation attempts exhausted"


class NextStep(View, frozen=True):
    kind: str  # "continue" | "escalate" | "none"
    attempt: int = 0  # the continuation attempt number to queue (1 or 2)


def after_run(liveness: Liveness, continuation_attempt: int) -> NextStep:
    """`continuation_attempt` is the attempt number of the run that just finished (0 for a fresh run)."""
    if liveness not in CONTINUABLE:
        return NextStep("none")
    if continuation_attempt >= MAX_CONTINUATIONS:
        return NextStep("escalate")
    return NextStep("continue", continuation_attempt + 1)


class RunLine(View, frozen=True):
    run_id: str
    status: str
    stop_reason: str
    liveness: str
    liveness_reason: str


def next_action_by_rule(liveness: Liveness, agent_next_action: str) -> str:
    if liveness is Liveness.PLAN_ONLY and agent_next_action:
        return f"Do it now, not another plan: {agent_next_action}. Record what changed as evidence in the handoff."
    if liveness is Liveness.EMPTY_RESPONSE:
        return ("The last run produced no output and no evidence. Make one concrete change toward the objective "
                "and record it (files_changed, commits or artifacts) in the handoff.")
    return agent_next_action or "Continue toward the objective and record evidence in the handoff."


def _section(title: str, body: str) -> str:
    body = body.strip() or "(none)"
    limit = SECTION_MAX - len(title) - len("## \n\n\n\n")
    if len(body) > limit:
        body = body[: limit - 1] + "…"
    return f"## {title}\n\n{body}\n\n"


def continuation_summary(*, loop_id: str, objective: str, attempt: int, liveness: Liveness,
                         agent_next_action: str, recent: list[RunLine]) -> str:
    """Markdown for `$LOOPCTL_CONTINUATION`: status, mode, objective, recent runs, next action."""
    status = (f"Loop `{loop_id}`: the previous run ended as **{liveness.value}**. "
              f"This is continuation attempt {attempt} of {MAX_CONTINUATIONS}.")
    mode = ("Continuation: act on the plan, do not re-plan." if liveness is Liveness.PLAN_ONLY
            else "Continuation: the previous run left nothing; produce concrete output.")
    runs = "\n".join(f"- `{r.run_id}` {r.status}, stop: {r.stop_reason or '-'}, liveness: {r.liveness or '-'}"
                     + (f" ({r.liveness_reason[:160]})" if r.liveness_reason else "") for r in recent)
    text = "".join([
        "# Continuation\n\n",
        _section("Status", status),
        _section("Mode", mode),
        _section("Objective", objective or "(no objective configured)"),
        _section("Recent runs", runs),
        _section("Next action", next_action_by_rule(liveness, agent_next_action)),
    ])
    return text if len(text) <= SUMMARY_MAX else text[: SUMMARY_MAX - 1] + "…"
