"""The run and loop verbs: cancel and retry a run, retry an escalated loop, trigger, pause and resume
a loop; each refused with its reason where it does not apply."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from console.core.actions import ActionError, Target
from console.core.holds import Hold
from console.core.store import RUN_KIND
from console.runs.executor import STOP_GRACE
from console.runs.ledger import (
    SHORTEST_ENDING,
    RunRecord,
    get_run,
    queue_run,
    retries_of,
    run_ids_ending,
)
from console.runs.liveness import (
    RunStatus,
    StopReason,
)
from console.runs.loop_states import HELD, LoopEvent
from console.runs.loops_state import LOOP_KIND, LoopsState, move_loop

if TYPE_CHECKING:
    from console.runs.scheduler import LoopRunner

log = logging.getLogger("loopctl.loops")


class RunVerbs(LoopsState):
    def find_run(self, target: Target) -> RunRecord:
        """The run a target names: by its whole id, or by the end of it (the console's short id)."""
        run = get_run(self.store, target.name)
        if run is not None:
            return run
        ids = run_ids_ending(self.store, target.name)
        if len(ids) > 1:
            raise ActionError("ambiguous_target", f"more than one run's id ends with {target.name!r}: give more of "
                                                  f"it, or the whole id")
        run = get_run(self.store, ids[0]) if ids else None
        if run is None:
            raise ActionError("unknown_target", f"no run {target.name!r} in the ledger (a run is named by its id, or "
                                                f"by its last {SHORTEST_ENDING} or more characters)")
        return run

    async def cancel(self, target: Target) -> dict[str, Any]:
        run = self.find_run(target)
        if RunStatus(run.status).finished:
            raise ActionError("not_applicable", f"run {run.id} already finished ({run.status}): nothing to cancel")
        if run.status == RunStatus.QUEUED:
            self.store.transition(RUN_KIND, run.id, RunStatus.CANCELLED.value,
                                  "cancelled by the operator before it ran", {"loop": run.loop_id}, columns={
                                      "finished_at": self.clock.time(), "stop_reason": StopReason.CANCELLED.value})
            return {"message": f"run {run.id} cancelled before it started", "status": "cancelled"}
        if self.executor.request_cancel(run.id, "cancelled by the operator"):
            await self._await_finished(run.id, STOP_GRACE + 5.0)
            now = get_run(self.store, run.id)
            status = now.status if now else "unknown"
            return {"message": f"run {run.id} cancelled: its process group was ended ({status})", "status": status}
        if run.id in self.detached:
            if not await self._cancel_adopted(run.id, "cancelled by the operator"):
                raise ActionError("not_applicable", f"run {run.id}: pid {run.pid} no longer proves to lead its "
                                                    f"process group; nothing was signalled")
            now = get_run(self.store, run.id)
            status = now.status if now else "unknown"
            return {"message": f"run {run.id} (started by an earlier engine) cancelled: its process group was "
                               f"ended ({status})", "status": status}
        raise ActionError("not_applicable", f"run {run.id} is {run.status} but not under this engine")

    async def retry_run(self, target: Target) -> dict[str, Any]:
        run = self.find_run(target)
        if not RunStatus(run.status).finished:
            raise ActionError("not_applicable", f"run {run.id} is {run.status}: cancel it first, or let it finish")
        pending = [r for r in retries_of(self.store, run.id) if not RunStatus(r.status).finished]
        if pending:
            return {"message": f"run {run.id} is already being retried as {pending[0].id}", "run": pending[0].id}
        cfg = self.configs.get(run.loop_id)
        if cfg is None or not cfg.enabled:
            raise ActionError("not_applicable", f"loop {run.loop_id} is not configured and enabled on this host")
        new_id = self.ids.new(self.clock.time())
        with self.store.batch():
            queue_run(self.store, new_id, cfg.id, f"operator retry of {run.id}", retry_of=run.id, timeout=cfg.timeout)
            move_loop(self.store, cfg.id, LoopEvent.OPERATOR_RETRY, f"operator retried run {run.id}")
        self.runners[cfg.id].wake.set()
        return {"message": f"run {run.id} retried as {new_id}", "run": new_id}

    async def retry_loop(self, target: Target) -> dict[str, Any]:
        runner = self.runners.get(target.name)
        if runner is None:
            known = ", ".join(sorted(self.runners)) or "none configured"
            raise ActionError("unknown_target", f"no loop named {target.name!r} (loops: {known})")
        if runner.state != "escalated":
            raise ActionError("not_applicable", f"loop {target.name} is {runner.state}, not escalated: "
                                                f"nothing to retry")
        move_loop(self.store, target.name, LoopEvent.OPERATOR_RETRY, "operator retry: escalation cleared")
        runner.wake.set()
        return {"message": f"loop {target.name}: escalation cleared, scheduling runs"}

    # -- local pause, resume and trigger ------------------------------------------------------------

    def paused_locally(self, loop_id: str) -> Hold | None:
        return self.holds.get(f"{LOOP_KIND}:{loop_id}")

    def _runner(self, target: Target) -> LoopRunner:
        runner = self.runners.get(target.name)
        if runner is None:
            known = ", ".join(sorted(self.runners)) or "none configured"
            raise ActionError("unknown_target", f"no loop named {target.name!r} (loops: {known})")
        return runner

    async def pause(self, target: Target) -> dict[str, Any]:
        """`pause loop:ID`: no new runs until resumed, across restarts; a running run ends (stop reason
        `paused`). Apart from the control plane's pause: that one is the loop's state, this is a hold."""
        runner = self._runner(target)
        held = self.paused_locally(target.name)
        if held is not None:
            raise ActionError("not_applicable", f"loop {target.name} is already paused (by `{held.by}`); "
                                                f"`loopctl resume {target}` resumes it")
        hold = Hold("pause", f"loopctl pause {target}", self.clock.time())
        self.holds.hold(str(target), hold)  # before the run is ended: a crash in between leaves it paused
        self.on_change()
        ended = ""
        current = runner.current
        if current and self.executor.request_cancel(current, f"paused by `{hold.by}`", paused=True):
            await self._await_finished(current, STOP_GRACE + 3.0)
            ended = f"; run {current} ended (stop reason paused)"
        return {"message": f"loop {target.name}: paused{ended}; no run starts until `loopctl resume {target}`"}

    async def resume(self, target: Target) -> dict[str, Any]:
        runner = self._runner(target)
        if self.holds.release(str(target)) is None:
            extra = "; the control plane paused it: resume it there" if runner.state == "paused" else ""
            raise ActionError("not_applicable", f"loop {target.name} is not paused locally: nothing to resume{extra}")
        runner.wake.set()
        self.on_change()
        return {"message": f"loop {target.name}: resumed"}

    async def trigger(self, target: Target) -> dict[str, Any]:
        """`trigger loop:ID`: its next run now, instead of when its interval ends."""
        runner = self._runner(target)
        held = self.paused_locally(target.name)
        if held is not None:
            raise ActionError("not_applicable", f"loop {target.name} is paused (by `{held.by}`): "
                                                f"`loopctl resume {target}` first")
        if not runner.cfg.enabled:
            raise ActionError("not_applicable", f"loop {target.name} is disabled in the config")
        state = runner.state
        if state in HELD:
            why = {"escalated": f"`loopctl retry {target}` clears it", "paused": "the control plane paused it",
                   "finalized": "the control plane ended it"}[state]
            raise ActionError("not_applicable", f"loop {target.name} is {state}: {why}")
        running = self.current_run(target.name)
        if running:
            raise ActionError("not_applicable", f"loop {target.name} is running run {running}: one run at a time; "
                                                f"trigger it again when that one has finished")
        runner.wake.set()
        return {"message": f"loop {target.name}: its next run starts now"}

    async def retry(self, target: Target) -> dict[str, Any]:
        return await (self.retry_run(target) if target.kind == "run" else self.retry_loop(target))

    # -- views ---------------------------------------------------------------------------------------
