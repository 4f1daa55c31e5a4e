"""Settling a run's outcome: its status, stop reason and liveness, and what follows it (a continuation,
a process-loss retry, an escalation), all in one store batch so a crash leaves all of it or none."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from console.core.config import LoopConfig
from console.core.store import RUN_KIND
from console.runs.continuation import EXHAUSTED, RunLine, after_run, continuation_summary
from console.runs.executor import Observed
from console.runs.ledger import (
    RunRecord,
    chain_runs,
    queue_run,
)
from console.runs.liveness import (
    Liveness,
    classify_liveness,
    run_status,
    stop_reason,
)
from console.runs.loop_states import LoopEvent
from console.runs.loops_state import LoopsState, clip, move_loop

log = logging.getLogger("loopctl.loops")


class Settling(LoopsState):
    def _continuation_text(self, run: RunRecord, cfg: LoopConfig) -> str:
        chain = [r for r in chain_runs(self.store, run.chain_id) if r.id != run.id]
        last = chain[-1] if chain else None
        recent = [RunLine(r.id, r.status, r.stop_reason or "", r.liveness or "", r.liveness_reason or "")
                  for r in chain[-10:]]
        try:
            liveness = Liveness((last.liveness if last else None) or "")
        except ValueError:
            liveness = Liveness.EMPTY_RESPONSE
        return continuation_summary(loop_id=cfg.id, objective=cfg.objective, attempt=run.continuation_attempt,
                                    liveness=liveness, agent_next_action=(last.next_action or "") if last else "",
                                    recent=recent)

    def settle(self, run: RunRecord, observed: Observed, cfg: LoopConfig) -> bool:
        """Record how a run ended and what follows, in one batch. True if a follow-up run was queued."""
        end, handoff = observed.ending, observed.handoff
        status = run_status(end)
        stop = stop_reason(end, handoff)
        verdict = classify_liveness(status, handoff, observed.output_tail)
        step = after_run(verdict.liveness, run.continuation_attempt)
        reason = verdict.reason
        if step.kind == "escalate":
            reason = clip(f"{reason}; {EXHAUSTED}")
        now = self.clock.time()
        columns = {
            "finished_at": now, "exit_code": end.exit_code, "exit_signal": end.signal, "stop_reason": stop.value,
            "timeout_fired": end.timeout_fired, "liveness": verdict.liveness.value, "liveness_reason": reason,
            "next_action": handoff.next_action or None, "summary": handoff.summary or None,
            "error_code": observed.error_code, "error_text": observed.error_text,
            "last_useful_action_at": observed.last_activity,
        }
        with self.store.batch():
            self.store.transition(RUN_KIND, run.id, status.value, f"{status.value}: {stop.value}, {verdict.liveness}",
                                  {"loop": cfg.id}, columns=columns)
            if step.kind == "continue":
                queue_run(self.store, self.ids.new(now), cfg.id,
                          f"continuation {step.attempt} of 2 after {run.id} ({verdict.liveness.value})",
                          chain_id=run.chain_id, continuation_attempt=step.attempt, timeout=cfg.timeout)
            elif step.kind == "escalate":
                move_loop(self.store, cfg.id, LoopEvent.ESCALATE, f"run {run.id} {verdict.liveness.value}: {EXHAUSTED}")
        self._mark_finished(run.id)
        return step.kind == "continue"

    def _mark_finished(self, run_id: str) -> None:
        event = self.finished.pop(run_id, None)
        if event is not None:
            event.set()

    async def _await_finished(self, run_id: str, timeout: float) -> None:
        event = self.finished.get(run_id)
        if event is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await event.wait()

    # -- reaping -------------------------------------------------------------------------------------
