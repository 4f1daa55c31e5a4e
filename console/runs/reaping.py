"""Reaping what a dead engine left: runs recorded running whose process is gone (lost, retried once),
still alive (adopted and watched until they end), or spawned but never recorded (found by their run id)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from console.core.processes import (
    CREATE_TIME_TOLERANCE,
    carrying,
    end_group,
    identify,
    leads_group,
    signal_pid,
    wait_gone,
)
from console.core.store import RUN_KIND
from console.core.waiting import sleep_unless
from console.runs.executor import ACTIVITY_SAMPLE, RUN_ID_VARIABLE, STOP_GRACE, Observed, mtime, run_dir
from console.runs.handoff import read_handoff
from console.runs.ledger import (
    RunRecord,
    get_run,
    queue_run,
    unfinished_runs,
)
from console.runs.liveness import (
    Ending,
    Liveness,
    RunStatus,
    StopReason,
)
from console.runs.loop_states import LoopEvent
from console.runs.loops_state import MAX_PROCESS_LOSS_RETRIES, LoopsState, clip, move_loop

log = logging.getLogger("loopctl.loops")


class Reaping(LoopsState):
    async def reap(self) -> None:
        """Settle every `running` run this engine holds no handle for (DESIGN: never a silent 'running')."""
        lost: list[tuple[RunRecord, str]] = []
        for row in unfinished_runs(self.store):
            run = row
            if run.status != RunStatus.RUNNING or run.id in self.detached \
                    or run.id in self.executor.live or run.id in self.executor.starting:
                continue
            if run.pid is None:  # recorded, then spawned, but killed before the pid was: look for it
                run = await self._find_spawned(run)
                if run.pid is None:
                    self.found_running[run.loop_id] = False
                    lost.append((run, "the engine ended while starting it, and no process leads a group "
                                      "with its run id"))
                    continue
            ours = self._still_ours(run)
            self.found_running[run.loop_id] = ours
            if ours:
                self._detach(run)
                continue
            lost.append((run, f"pid {run.pid} is gone"))
        if not lost:
            return
        # One scan of the process table for all of them: after an engine of 1,000 loops was killed, a
        # scan per lost run kept the next engine's boot (and its socket) waiting for minutes.
        notes = await self._end_leftovers([run for run, _text in lost])
        for run, text in lost:
            self._process_lost(run, text + notes.get(run.id, ""))

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

    async def _end_leftovers(self, runs: list[RunRecord]) -> dict[str, str]:
        """The runs' processes are gone; members of their groups that carry their run ids may not be.
        Ended (SIGTERM, the grace, SIGKILL) all together; what to add to each run's reason, by run id."""
        groups = {run.id: run.pgid for run in runs if run.pgid and run.pgid > 1}
        if not groups:
            return {}
        members = await asyncio.to_thread(_members_carrying_ids, groups)
        if not members:
            return {}
        for pids in members.values():
            for pid in pids:
                signal_pid(pid, signal.SIGTERM)
        everyone = [pid for pids in members.values() for pid in pids]
        gone = asyncio.ensure_future(asyncio.gather(*(wait_gone(pid, None) for pid in everyone)))
        await sleep_unless(self.clock, STOP_GRACE, gone)
        survivors = {} if gone.done() else \
            await asyncio.to_thread(_members_carrying_ids, {rid: groups[rid] for rid in members})
        for pids in survivors.values():
            for pid in pids:
                signal_pid(pid, signal.SIGKILL)
        gone.cancel()
        notes = {}
        for run_id, pids in members.items():
            how = " (SIGTERM, then SIGKILL)" if survivors.get(run_id) else " (SIGTERM)"
            notes[run_id] = f"; its process group {groups[run_id]} still had {len(pids)} process(es) running: " \
                            f"terminated{how}"
        return notes

    def _process_lost(self, run: RunRecord, text: str) -> None:
        cfg = self.configs.get(run.loop_id)
        now = self.clock.time()
        with self.store.batch():
            self.store.transition(RUN_KIND, run.id, RunStatus.FAILED.value, f"process lost: {text}",
                                  {"loop": run.loop_id}, columns={
                                      "finished_at": now, "stop_reason": StopReason.PROCESS_LOST.value,
                                      "error_code": "process_lost", "error_text": clip(text),
                                      "liveness": Liveness.FAILED.value,
                                      "liveness_reason": clip(f"run failed: process lost ({text})")})
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


def _members_carrying_ids(groups: dict[str, int]) -> dict[str, list[int]]:
    """By run id, the live members of the run's group whose environment carries that run id: provably
    ours even when the group's leader is gone (or its pid now belongs to someone else). One scan."""
    found: dict[str, list[int]] = {}
    for carrier in carrying(RUN_ID_VARIABLE, lambda value: value in groups):
        if carrier.pgid == groups[carrier.value]:
            found.setdefault(carrier.value, []).append(carrier.pid)
    return found
