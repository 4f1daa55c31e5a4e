"""Loops run locally as a series of runs: schedule, settle each outcome, continue or escalate, reap
what a dead engine left behind, and answer the run actions.

Every outcome is settled in one store batch (the finished run plus whatever it queues or escalates),
so an engine killed at any point leaves either all of it or none: a continuation or a process-loss
retry is queued exactly once, across any number of restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from console.core.actions import ActionError, Target
from console.core.clock import Clock
from console.core.config import LoopConfig
from console.core.holds import Hold, Holds
from console.core.processes import (
    CREATE_TIME_TOLERANCE,
    carrying,
    end_group,
    identify,
    leads_group,
    members_carrying,
    signal_pid,
    wait_gone,
)
from console.core.store import RUN_KIND, Store
from console.core.tasks import Tasks
from console.core.transitions import Transition
from console.core.waiting import sleep_unless
from console.runs.continuation import EXHAUSTED, RunLine, after_run, continuation_summary
from console.runs.executor import ACTIVITY_SAMPLE, RUN_ID_VARIABLE, STOP_GRACE, Observed, RunExecutor, mtime, run_dir
from console.runs.handoff import read_handoff
from console.runs.ledger import (
    SHORTEST_ENDING,
    SNAPSHOT_RUNS,
    RunIds,
    RunRecord,
    chain_runs,
    get_run,
    last_finished,
    next_queued,
    queue_run,
    recent_runs,
    retries_of,
    run_ids_ending,
    run_views,
    unfinished_runs,
)
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
from console.runs.loop_states import HELD, LoopEvent, after, loop_state
from console.runs.view import LoopView, RunView

log = logging.getLogger("loopctl.loops")

LOOP_KIND = "loop"
__all__ = ["HELD", "LOOP_KIND", "Loops", "move_loop"]  # HELD: states in which a loop starts no runs


def move_loop(store: Store, loop_id: str, event: LoopEvent, reason: str) -> bool:
    """The one way a loop's state changes: as `loop_states.after` allows (True when it did)."""
    thing = store.thing(LOOP_KIND, loop_id)
    new = after(loop_state(thing.state if thing else None), event)
    if new is None:
        return False
    store.transition(LOOP_KIND, loop_id, new.value, reason)
    return True
REAP_INTERVAL = 60.0
REVIVAL_LOOKBACK = 20  # binding events looked through for the last revival (one per creation or revival)
MAX_PROCESS_LOSS_RETRIES = 1


def _clip(text: str) -> str:
    return text if len(text) <= LIVENESS_REASON_MAX else text[: LIVENESS_REASON_MAX - 1] + "…"


class LoopRunner:
    """One loop's scheduler: one run at a time, a pause between runs, none while escalated."""

    def __init__(self, cfg: LoopConfig, owner: Loops) -> None:
        self.cfg = cfg
        self.owner = owner
        self.wake = asyncio.Event()
        self.current: str | None = None
        self.next_run_at: float | None = None

    @property
    def state(self) -> str:
        thing = self.owner.store.thing(LOOP_KIND, self.cfg.id)
        return thing.state if thing else "active"

    async def run(self) -> None:
        store = self.owner.store
        if not self.cfg.enabled:
            move_loop(store, self.cfg.id, LoopEvent.DISABLED, "enabled = false in the config")
            return
        move_loop(store, self.cfg.id, LoopEvent.SCHEDULING, "scheduling runs")
        while True:
            if self.state in HELD or self.owner.paused_locally(self.cfg.id):
                self.wake.clear()
                await self.wake.wait()
                continue
            if self.owner.executor.closing:
                return  # the engine is stopping: no new run
            adopted = self.owner.detached_of(self.cfg.id)
            if adopted is not None:  # one live run per loop, whoever started it: wait for it to end
                await asyncio.shield(adopted)
                continue
            run = next_queued(store, self.cfg.id) or self.owner.queue_fresh(self.cfg)
            self.current = run.id
            try:
                observed = await self.owner.execute(run, self.cfg)
                queued_next = self.owner.settle(run, observed, self.cfg)
            finally:
                self.current = None
            if queued_next or self.state in HELD or self.owner.paused_locally(self.cfg.id):
                continue  # a follow-up runs at once; an escalated loop waits for the operator, not the clock
            await self._pause(self.cfg.interval_seconds)

    async def _pause(self, seconds: float) -> None:
        self.next_run_at = self.owner.clock.time() + seconds
        self.wake.clear()
        woken = asyncio.ensure_future(self.wake.wait())
        try:
            await sleep_unless(self.owner.clock, seconds, woken)
        finally:
            woken.cancel()
            self.next_run_at = None


class Loops:
    def __init__(self, loops: list[LoopConfig], *, store: Store, clock: Clock, runs_root: Path,
                 on_change: Callable[[], None], crash: Callable[[str], None] | None = None,
                 tasks: Tasks | None = None, holds: Holds | None = None) -> None:
        self.store = store
        self.tasks = tasks if tasks is not None else Tasks(clock, on_change)  # a crashed scheduler restarts
        self.holds = holds if holds is not None else Holds(runs_root.parent / "holds.json")
        self.clock = clock
        self.runs_root = runs_root
        self.on_change = on_change
        self.ids = RunIds()
        self.executor = RunExecutor(store, clock, runs_root, *([crash] if crash else []))
        self.configs = {cfg.id: cfg for cfg in loops}
        self.runners = {cfg.id: LoopRunner(cfg, self) for cfg in loops}
        self.detached: dict[str, asyncio.Task[None]] = {}
        self.detached_cancel: dict[str, str] = {}  # run id -> why the operator cancelled it
        self.finished: dict[str, asyncio.Event] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._runner_tasks: dict[str, asyncio.Task[None]] = {}
        # loop id -> whether its running run survived the last engine (filled by the boot reap)
        self.found_running: dict[str, bool] = {}

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        await self.reap_at_boot()
        self.start_runners()

    async def reap_at_boot(self) -> None:
        """Before any new run: what the last engine left is settled first."""
        self.runs_root.mkdir(mode=0o700, parents=True, exist_ok=True)
        await self.reap()

    def start_runners(self) -> None:
        for runner in self.runners.values():
            self._start_runner(runner)
        self._tasks.append(self.tasks.spawn("reaper", self._reap_periodically))

    def _start_runner(self, runner: LoopRunner) -> None:
        task = self.tasks.spawn(f"loop:{runner.cfg.id}", runner.run, f"{LOOP_KIND}:{runner.cfg.id}")
        self._runner_tasks[runner.cfg.id] = task
        self._tasks.append(task)

    async def reconfigure(self, loops: list[LoopConfig]) -> None:
        """Loops whose config changed or went away: their live run is cancelled (TERM, grace, KILL)
        and their scheduler stopped; changed and new loops then start with the new config."""
        wanted = {cfg.id: cfg for cfg in loops}
        for loop_id, runner in list(self.runners.items()):
            if wanted.get(loop_id) == runner.cfg:
                continue
            why = "config changed" if loop_id in wanted else "removed from the config"
            if runner.current and self.executor.request_cancel(runner.current, why):
                await self._await_finished(runner.current, STOP_GRACE + 3.0)
            task = self._runner_tasks.pop(loop_id, None)
            if task is not None:
                await self.tasks.stop(f"loop:{loop_id}")
                self._tasks.remove(task)
            del self.runners[loop_id]
        self.configs = wanted
        for cfg in loops:
            if cfg.id not in self.runners:
                runner = LoopRunner(cfg, self)
                self.runners[cfg.id] = runner
                self._start_runner(runner)
        self.runners = {cfg.id: self.runners[cfg.id] for cfg in loops}

    def scheduling(self, loop_id: str) -> bool:
        """Is this engine running the loop's scheduler (its runner, in the live sense)?"""
        task = self._runner_tasks.get(loop_id)
        return task is not None and not task.done()

    def had_running_run(self, loop_id: str) -> bool:
        return loop_id in self.found_running

    def runner_survived(self, loop_id: str) -> bool:
        return self.found_running.get(loop_id, False)

    def detached_of(self, loop_id: str) -> asyncio.Task[None] | None:
        """The watch over a live run of this loop that an earlier engine started, if there is one."""
        for run_id, task in self.detached.items():
            run = get_run(self.store, run_id)
            if run is not None and run.loop_id == loop_id and not task.done():
                return task
        return None

    def current_run(self, loop_id: str) -> str | None:
        runner = self.runners.get(loop_id)
        if runner is not None and runner.current:
            return runner.current
        return next((rid for rid in self.detached if (r := get_run(self.store, rid)) and r.loop_id == loop_id), None)

    async def stop(self) -> None:
        """Cancel what runs under this engine (TERM, grace, KILL), the runs it adopted as its own too,
        then stop scheduling."""
        self.executor.closing = "engine stopping"  # no new run starts; one whose spawn is in flight is ended
        for run_id in list(self.executor.live):
            self.executor.request_cancel(run_id, "engine stopping")
        await asyncio.gather(*(self._cancel_adopted(run_id, "engine stopping") for run_id in list(self.detached)))
        for run_id in [*self.executor.live, *self.executor.starting]:
            await self._await_finished(run_id, STOP_GRACE + 3.0)
        for task in [*self._tasks, *self.detached.values()]:
            task.cancel()
        await asyncio.gather(*self._tasks, *self.detached.values(), return_exceptions=True)
        self._tasks.clear()
        self.detached.clear()

    async def _reap_periodically(self) -> None:
        while True:
            await self.clock.sleep(REAP_INTERVAL)
            await self.reap()

    # -- runs --------------------------------------------------------------------------------------

    def queue_fresh(self, cfg: LoopConfig) -> RunRecord:
        run_id = self.ids.new(self.clock.time())
        queue_run(self.store, run_id, cfg.id, "scheduled", timeout=cfg.timeout)
        record = get_run(self.store, run_id)
        assert record is not None
        return record

    async def execute(self, run: RunRecord, cfg: LoopConfig) -> Observed:
        self.finished[run.id] = asyncio.Event()
        continuation = self._continuation_text(run, cfg) if run.continuation_attempt > 0 else None

        def activity(at: float) -> None:
            self.store.transition(RUN_KIND, run.id, "running", "activity: handoff updated",
                                  columns={"last_useful_action_at": at, "error_code": None})

        return await self.executor.execute(run, cfg, continuation, activity)

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
            reason = _clip(f"{reason}; {EXHAUSTED}")
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

    async def reap(self) -> None:
        """Settle every `running` run this engine holds no handle for (DESIGN: never a silent 'running')."""
        for row in unfinished_runs(self.store):
            run = row
            if run.status != RunStatus.RUNNING or run.id in self.detached \
                    or run.id in self.executor.live or run.id in self.executor.starting:
                continue
            if run.pid is None:  # recorded, then spawned, but killed before the pid was: look for it
                run = await self._find_spawned(run)
                if run.pid is None:
                    self.found_running[run.loop_id] = False
                    note = await self._end_leftovers(run)
                    self._process_lost(run, f"the engine ended while starting it, and no process leads a group "
                                            f"with its run id{note}")
                    continue
            ours = self._still_ours(run)
            self.found_running[run.loop_id] = ours
            if ours:
                self._detach(run)
                continue
            note = await self._end_leftovers(run)
            self._process_lost(run, f"pid {run.pid} is gone{note}")

    async def _find_spawned(self, run: RunRecord) -> RunRecord:
        """Look for the process of a run recorded as spawning, by the run id in its environment, and
        write what is found into the ledger as the spawn would have: the pid of the group's leader
        (the run is then adopted), or only the group of members that outlived it (ended as leftovers)."""
        carriers = await asyncio.to_thread(carrying, RUN_ID_VARIABLE, lambda value: value == run.id)
        leader = next((c for c in carriers if leads_group(c.pid, c.pgid)), None)
        seen = identify(leader.pid) if leader is not None else None
        if leader is not None and seen is not None:
            self.store.transition(RUN_KIND, run.id, RunStatus.RUNNING.value,
                                  f"found pid {leader.pid} by its run id: spawned before the last engine ended",
                                  {"loop": run.loop_id},
                                  columns={"pid": leader.pid, "pgid": leader.pgid, "create_time": seen.create_time})
        elif carriers:
            self.store.transition(RUN_KIND, run.id, RunStatus.RUNNING.value,
                                  f"found group {carriers[0].pgid} by its run id, its leader gone",
                                  {"loop": run.loop_id}, columns={"pgid": carriers[0].pgid})
        found = get_run(self.store, run.id)
        assert found is not None
        return found

    def _still_ours(self, run: RunRecord) -> bool:
        if not run.pid or run.pid <= 1:
            return False
        live = identify(run.pid, RUN_ID_VARIABLE)
        if live is None or live.create_time < 0 or run.create_time is None:
            return False
        if abs(live.create_time - run.create_time) > CREATE_TIME_TOLERANCE:
            return False  # the pid was reused: someone else's process, never touched
        # A readable environment without the run's id is proof of another process; an unreadable
        # one leaves the start time and the boot to decide.
        return live.environ_token == run.id or not live.environ_readable

    async def _end_leftovers(self, run: RunRecord) -> str:
        """The run's process is gone; members of its group that carry its run id may not be."""
        if not run.pgid or run.pgid <= 1:
            return ""
        members = members_carrying(run.pgid, RUN_ID_VARIABLE, run.id)
        if not members:
            return ""
        for pid in members:
            signal_pid(pid, signal.SIGTERM)
        gone = asyncio.ensure_future(asyncio.gather(*(wait_gone(pid, None) for pid in members)))
        await sleep_unless(self.clock, STOP_GRACE, gone)
        survivors = members_carrying(run.pgid, RUN_ID_VARIABLE, run.id)
        for pid in survivors:
            signal_pid(pid, signal.SIGKILL)
        gone.cancel()
        how = " (SIGTERM, then SIGKILL)" if survivors else " (SIGTERM)"
        return f"; its process group {run.pgid} still had {len(members)} process(es) running: terminated{how}"

    def _process_lost(self, run: RunRecord, text: str) -> None:
        cfg = self.configs.get(run.loop_id)
        now = self.clock.time()
        with self.store.batch():
            self.store.transition(RUN_KIND, run.id, RunStatus.FAILED.value, f"process lost: {text}",
                                  {"loop": run.loop_id}, columns={
                                      "finished_at": now, "stop_reason": StopReason.PROCESS_LOST.value,
                                      "error_code": "process_lost", "error_text": _clip(text),
                                      "liveness": Liveness.FAILED.value,
                                      "liveness_reason": _clip(f"run failed: process lost ({text})")})
            if cfg is None or not cfg.enabled:
                pass  # nothing schedules this loop any more: the loss is recorded, no retry
            elif run.process_loss_retry_count < MAX_PROCESS_LOSS_RETRIES:
                queue_run(self.store, self.ids.new(now), cfg.id, f"process-loss retry of {run.id}",
                          chain_id=run.chain_id, continuation_attempt=run.continuation_attempt,
                          retry_of=run.id, process_loss_retry_count=run.process_loss_retry_count + 1,
                          timeout=cfg.timeout)
            else:
                move_loop(self.store, cfg.id, LoopEvent.ESCALATE,
                          f"run {run.id} lost its process again after {run.process_loss_retry_count} retry")
        self._mark_finished(run.id)
        runner = self.runners.get(run.loop_id)
        if runner is not None:
            runner.wake.set()

    def _detach(self, run: RunRecord) -> None:
        if run.error_code != "process_detached":
            self.store.transition(RUN_KIND, run.id, RunStatus.RUNNING.value,
                                  f"process detached: pid {run.pid} is alive and ours, but this engine has no "
                                  f"handle on it", {"loop": run.loop_id},
                                  columns={"error_code": "process_detached",
                                           "error_text": f"pid {run.pid} running without a handle (engine restarted)"})
        self.finished[run.id] = asyncio.Event()
        self.detached[run.id] = asyncio.create_task(self._watch_detached(run), name=f"detached:{run.id}")

    async def _watch_detached(self, run: RunRecord) -> None:
        """Watch an adopted run as the executor watches its own: activity, its timeout (from its
        start on record), an operator's cancel; then settle it from what it left behind."""
        assert run.pid is not None
        handoff_path = run_dir(self.runs_root, run.id) / "handoff.json"
        # Compare with the last activity on record, not with the file as this task first finds it:
        # a touch between the reap and this task's first turn is activity too.
        last_touch = run.last_useful_action_at
        deadline = (run.started_at or self.clock.time()) + run.effective_timeout_sec \
            if run.effective_timeout_sec else None
        timeout_fired = False
        gone = asyncio.ensure_future(wait_gone(run.pid, None))
        try:
            while not gone.done():
                pause_for = ACTIVITY_SAMPLE
                if deadline is not None:
                    pause_for = min(pause_for, max(0.0, deadline - self.clock.time()))
                await sleep_unless(self.clock, pause_for, gone)
                touched = mtime(handoff_path)
                if touched is not None and touched != last_touch:
                    last_touch = touched
                    self.store.transition(RUN_KIND, run.id, RunStatus.RUNNING.value,
                                          "activity: handoff updated (detached run)", {"loop": run.loop_id},
                                          columns={"last_useful_action_at": touched, "error_code": None,
                                                   "error_text": None})
                if not gone.done() and deadline is not None and self.clock.time() >= deadline:
                    timeout_fired = True
                    await self._end_adopted(run, gone)
        finally:
            gone.cancel()
            self.detached.pop(run.id, None)
        cancel_reason = self.detached_cancel.pop(run.id, None)
        # Not our child: its exit status is unknowable. What it left behind decides.
        handoff = read_handoff(handoff_path)
        valid = handoff.present and not handoff.problem
        ended_by_us = timeout_fired or cancel_reason is not None
        ending = Ending(exit_code=0 if valid else None, process_lost=not valid and not ended_by_us,
                        timeout_fired=timeout_fired, cancelled=cancel_reason is not None and not timeout_fired)
        cfg = self.configs.get(run.loop_id)
        if cfg is None:
            return
        text = cancel_reason if ending.cancelled else "exit status unknown: the run ended while detached"
        observed = Observed(ending, handoff, "", last_touch, None if valid or ended_by_us else "process_lost", text)
        if self.settle(run, observed, cfg):
            self.runners[cfg.id].wake.set()

    async def _cancel_adopted(self, run_id: str, reason: str) -> bool:
        """End an adopted run through its proven group and wait until its watch has settled it as
        cancelled. False (nothing signalled) when its pid no longer proves to lead that group."""
        task, run = self.detached.get(run_id), get_run(self.store, run_id)
        if task is None or run is None or run.pid is None:
            return False
        self.detached_cancel.setdefault(run_id, reason)
        gone = asyncio.ensure_future(wait_gone(run.pid, None))
        try:
            ended = await self._end_adopted(run, gone)
        finally:
            gone.cancel()
        if not ended:
            self.detached_cancel.pop(run_id, None)
            return False
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(STOP_GRACE + 5.0):
                await asyncio.shield(task)
        return True

    async def _end_adopted(self, run: RunRecord, gone: asyncio.Future[bool]) -> bool:
        """End an adopted run's group (TERM, grace, KILL), but only a group its recorded pid is still
        proven to lead: the same process (start time, run id) and the leader of that very group."""
        assert run.pid is not None
        if not (self._still_ours(run) and run.pgid is not None and leads_group(run.pid, run.pgid)):
            return False
        await end_group(run.pgid, gone, STOP_GRACE, self.clock)
        return True

    # -- actions -------------------------------------------------------------------------------------

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

    def _last_revival(self, loop_id: str) -> Transition | None:
        """The loop's last revival by proof of possession, from the event log (its binding's events,
        by index): it stays shown after it has left the snapshot's recent events."""
        for t in self.store.events_page(kind="binding", name=loop_id, limit=REVIVAL_LOOKBACK):
            if t.reason.startswith("revived"):
                return t
        return None

    def views(self) -> tuple[list[LoopView], list[RunView]]:
        loops = []
        last = last_finished(self.store, list(self.runners))
        for runner in self.runners.values():
            done = last.get(runner.cfg.id)
            thing = self.store.thing(LOOP_KIND, runner.cfg.id)
            binding = self.store.thing("binding", runner.cfg.id)  # written by the control-plane link
            state = thing.state if thing else "active"
            held = self.paused_locally(runner.cfg.id)
            revival = self._last_revival(runner.cfg.id) if binding is not None else None
            if binding is not None:
                provenance = str(binding.detail.get("provenance", runner.cfg.provenance))
            else:  # a user loop brings its own token and never has a binding; a managed one is not created yet
                provenance = "user" if runner.cfg.provenance == "user" else "local"
            loops.append(LoopView(
                id=runner.cfg.id, state=state, reason=thing.reason if thing else "",
                enabled=runner.cfg.enabled, objective=runner.cfg.objective,
                interval_seconds=runner.cfg.interval_seconds, run_timeout_seconds=runner.cfg.run_timeout_seconds,
                provenance=provenance,
                token_expires_at=binding.detail.get("expires_at") if binding else None,
                current_run=self.current_run(runner.cfg.id),
                # held while it waited (the control plane finalized it, say): its timer starts nothing
                next_run_at=None if state in HELD or held else runner.next_run_at,
                held_by=held.by if held else "", held_at=held.at if held else None,
                last_run_id=done.id if done else None, last_liveness=done.liveness if done else None,
                last_stop_reason=done.stop_reason if done else None,
                last_finished_at=done.finished_at if done else None,
                revived_at=revival.at if revival else None,
                revived_jti=str(revival.detail.get("jti") or "") if revival else "",
                revived_expires_at=revival.detail.get("expires_at") if revival else None,
            ))
        return loops, run_views(recent_runs(self.store, SNAPSHOT_RUNS))
