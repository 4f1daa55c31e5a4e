"""Loops run locally as a series of runs: schedule, settle each outcome, continue or escalate, reap
what a dead engine left behind, and answer the run actions.

Every outcome is settled in one store batch (the finished run plus whatever it queues or escalates),
so an engine killed at any point leaves either all of it or none: a continuation or a process-loss
retry is queued exactly once, across any number of restarts.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from pathlib import Path

from console.core.clock import Clock
from console.core.config import LoopConfig
from console.core.holds import Holds
from console.core.spawn_gate import SpawnGate
from console.core.store import RUN_KIND, Store, ThingRecord
from console.core.tasks import Tasks
from console.core.transitions import Transition
from console.core.waiting import sleep_unless
from console.runs.executor import STOP_GRACE, Observed, RunExecutor
from console.runs.ledger import (
    SNAPSHOT_RUNS,
    RunIds,
    RunRecord,
    get_run,
    last_finished,
    next_queued,
    queue_run,
    recent_runs,
    run_views,
)
from console.runs.loop_states import HELD, LoopEvent
from console.runs.loops_state import LOOP_KIND, move_loop
from console.runs.pacing import first_run_delay, pause_after_run
from console.runs.reaping import Reaping
from console.runs.run_verbs import RunVerbs
from console.runs.settling import Settling
from console.runs.view import LoopView, RunView

log = logging.getLogger("loopctl.loops")

__all__ = ["HELD", "LOOP_KIND", "Loops", "move_loop"]  # HELD: states in which a loop starts no runs
REAP_INTERVAL = 60.0
REVIVAL_LOOKBACK = 20  # binding events looked through for the last revival (one per creation or revival)


class LoopRunner:
    """One loop's scheduler: one run at a time, a pause between runs, none while escalated."""

    def __init__(self, cfg: LoopConfig, owner: Loops, first_delay: float = 0.0) -> None:
        self.cfg = cfg
        self.owner = owner
        self.first_delay = first_delay  # pacing.first_run_delay: its place among loops that start together
        self.wake = asyncio.Event()
        self.current: str | None = None
        self.next_run_at: float | None = None
        # Set while it waits (held, or in its pause between runs), cleared when it moves on: what says
        # "nothing starts until woken or due" without watching the clock go by.
        self.parked = asyncio.Event()

    @property
    def state(self) -> str:
        thing = self.owner.store.thing(LOOP_KIND, self.cfg.id)
        return thing.state if thing else "active"

    def holding(self) -> bool:
        """Held by the control plane's state or escalation, or paused here: no run starts."""
        return self.state in HELD or self.owner.paused_locally(self.cfg.id) is not None

    async def run(self) -> None:
        store = self.owner.store
        if not self.cfg.enabled:
            move_loop(store, self.cfg.id, LoopEvent.DISABLED, "enabled = false in the config")
            return
        move_loop(store, self.cfg.id, LoopEvent.SCHEDULING, "scheduling runs")
        if self.first_delay > 0:
            await self._pause(self.first_delay)
        while True:
            if self.holding():
                self.wake.clear()
                self.parked.set()
                try:
                    await self.wake.wait()
                finally:
                    self.parked.clear()
                continue
            if self.owner.executor.closing:
                return  # the engine is stopping: no new run
            adopted = self.owner.detached_of(self.cfg.id)
            if adopted is not None:  # one live run per loop, whoever started it: wait for it to end
                await asyncio.shield(adopted)
                continue
            queued = next_queued(store, self.cfg.id)
            self.current = queued.id if queued else self.owner.ids.new(self.owner.clock.time())
            try:
                outcome = await self.owner.execute(self, self.current, queued)
                if outcome is None:
                    continue  # held, paused or stopping while it waited for a spawn slot: nothing started
                run, observed = outcome
                queued_next = self.owner.settle(run, observed, self.cfg)
            finally:
                self.current = None
            if queued_next or self.holding():
                continue  # a follow-up runs at once; an escalated loop waits for the operator, not the clock
            await self._pause(pause_after_run(self.cfg.interval_seconds, self.owner.rng.random()))

    async def _pause(self, seconds: float) -> None:
        self.next_run_at = self.owner.clock.time() + seconds
        self.wake.clear()
        woken = asyncio.ensure_future(self.wake.wait())
        self.parked.set()
        try:
            await sleep_unless(self.owner.clock, seconds, woken)
        finally:
            self.parked.clear()
            woken.cancel()
            self.next_run_at = None


class Loops(Settling, Reaping, RunVerbs):
    """The loops of the host: scheduling here; settling, reaping and the verbs in their own modules."""

    def __init__(self, loops: list[LoopConfig], *, store: Store, clock: Clock, runs_root: Path,
                 on_change: Callable[[], None], crash: Callable[[str], None] | None = None,
                 tasks: Tasks | None = None, holds: Holds | None = None, gate: SpawnGate | None = None,
                 rng: random.Random | None = None) -> None:
        self.store = store
        self.gate = gate if gate is not None else SpawnGate()  # the engine's one gate, shared with the sidecars
        self.rng = rng if rng is not None else random.Random()  # draws of the interval jitter
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
        self._spread(list(self.runners.values()))
        for runner in self.runners.values():
            self._start_runner(runner)
        self._tasks.append(self.tasks.spawn("reaper", self._reap_periodically))

    @staticmethod
    def _spread(runners: list[LoopRunner]) -> None:
        """Loops that start together start spread out (pacing.py), each at its own fixed place."""
        for runner in runners:
            runner.first_delay = first_run_delay(runner.cfg.id, len(runners), runner.cfg.interval_seconds)

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
        new = [LoopRunner(cfg, self) for cfg in loops if cfg.id not in self.runners]
        self._spread(new)
        for runner in new:
            self.runners[runner.cfg.id] = runner
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

    def queue_fresh(self, cfg: LoopConfig, run_id: str) -> None:
        queue_run(self.store, run_id, cfg.id, "scheduled", timeout=cfg.timeout)

    async def execute(self, runner: LoopRunner, run_id: str,
                      queued: RunRecord | None) -> tuple[RunRecord, Observed] | None:
        """One run of the runner's loop: the queued one, or (`queued` None) a fresh one under `run_id`.
        None if nothing started: the loop was held or the engine began to stop while it waited for a
        spawn slot. A fresh run is queued and marked running in one transaction (one fsync, not two)."""
        cfg = runner.cfg
        try:
            async with self.gate.slot():
                if runner.holding() or self.executor.closing:
                    return None
                continuation = self._continuation_text(queued, cfg) if queued and queued.continuation_attempt else None
                directory = await asyncio.to_thread(self.executor.prepare, run_id, continuation)
                if runner.holding() or self.executor.closing:  # again, after the wait for the thread
                    return None
                self.finished[run_id] = asyncio.Event()
                with self.store.batch():
                    if queued is None:
                        self.queue_fresh(cfg, run_id)
                    self.executor.record_intent(run_id, cfg)
                run = get_run(self.store, run_id)
                assert run is not None
                started = await self.executor.spawn(run, cfg, directory)
        finally:
            self.executor.starting.discard(run_id)
        if isinstance(started, Observed):
            return run, started

        def activity(at: float) -> None:
            self.store.transition(RUN_KIND, run_id, "running", "activity: handoff updated",
                                  columns={"last_useful_action_at": at, "error_code": None})

        return run, await self.executor.watch(started, cfg, directory, activity)

    def _last_revival(self, loop_id: str) -> Transition | None:
        """The loop's last revival by proof of possession, from the event log (its binding's events,
        by index): it stays shown after it has left the snapshot's recent events."""
        for t in self.store.events_page(kind="binding", name=loop_id, limit=REVIVAL_LOOKBACK):
            if t.reason.startswith("revived"):
                return t
        return None

    def views(self, things: list[ThingRecord] | None = None) -> tuple[list[LoopView], list[RunView]]:
        """The loops' and the newest runs' views. `things`: the store's things, when the caller read
        them already (the snapshot does): one pass over them, not two queries per loop."""
        loops = []
        last = last_finished(self.store, list(self.runners))
        wanted = (LOOP_KIND, "binding")
        known = {(t.kind, t.name): t for t in (things if things is not None else
                                                [t for kind in wanted for t in self.store.things(kind)])
                 if t.kind in wanted}
        for runner in self.runners.values():
            done = last.get(runner.cfg.id)
            thing = known.get((LOOP_KIND, runner.cfg.id))
            binding = known.get(("binding", runner.cfg.id))  # written by the control-plane link
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
