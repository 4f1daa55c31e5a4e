"""Loop heartbeats to the control plane, proof-of-possession revival, and boot recovery.

The incidents to never repeat: boot recovery finalized live managed loops whose runner token had
gone stale although a PoP heartbeat could have revived them; a revival was sent for a loop whose
runner was dead; a transient failure during revival tore a live loop down. So:
- revival only when the classifier says `pop_fallback` (managed, runner alive, key available);
- at boot, "runner alive" means the loop's running run survived the restart and is provably ours;
  a dead runner's loop gets no revival request, only the run rules (and finalization if the
  control plane says so);
- a transient answer keeps the loop attached (state `transient`) for the next round.
Runner tokens live only in 0600 files; the database keeps their jti and expiry.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
from collections.abc import Callable
from pathlib import Path

from console.controlplane.answers import LoopGrant, Revived
from console.controlplane.classify import Outcome, Provenance, Verdict
from console.controlplane.client import ControlPlaneClient
from console.core.atomic import atomic_write
from console.core.clock import Clock
from console.core.config import LoopConfig
from console.core.files import NotRegular, read_capped
from console.core.printable import printable
from console.core.store import Store
from console.core.tasks import Tasks
from console.runs.loop_states import LoopEvent
from console.runs.scheduler import HELD, LOOP_KIND, Loops, move_loop

log = logging.getLogger("loopctl.heartbeats")
BINDING_KIND = "binding"  # the loop's link to the control plane: remote id, token jti and expiry
ROUND_SECONDS = 30.0
CONCURRENCY = 32
OUTCOMES = {Outcome.LIVE: "ok", Outcome.TERMINAL: "refused", Outcome.TRANSIENT: "failed",
            Outcome.POP_FALLBACK: "refused"}  # a fallback not revived is a refusal


class LoopHeartbeats:
    def __init__(self, client: ControlPlaneClient, *, state_dir: Path, configs: list[LoopConfig], store: Store,
                 clock: Clock, loops: Loops, round_seconds: float = ROUND_SECONDS, tasks: Tasks | None = None,
                 on_change: Callable[[], None] | None = None) -> None:
        self.client = client
        self.secrets = state_dir / "secrets" / "loops"
        self.configs = [c for c in configs if c.enabled]
        self.store = store
        self.clock = clock
        self.loops = loops
        self.round_seconds = round_seconds
        self.limit = asyncio.Semaphore(CONCURRENCY)
        self.tasks = tasks if tasks is not None else Tasks(clock)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.on_change = on_change  # a loop's last outcome changed without a transition (see beat)

    async def start(self) -> None:
        """No answer may stop the boot: a loop whose binding or recovery fails is logged and retried
        by its own schedule."""
        for cfg, outcome in zip(self.configs, await asyncio.gather(*(self.bind(cfg) for cfg in self.configs),
                                                                   return_exceptions=True), strict=True):
            if isinstance(outcome, Exception):
                log.error("loop %s: binding failed (%s); its heartbeat schedule tries again", cfg.id, outcome,
                          exc_info=outcome)
        try:
            await self.recover()
        except Exception:
            log.exception("boot recovery against the control plane failed; heartbeats go on")
        self._tasks = {cfg.id: self._spawn(cfg) for cfg in self.configs}

    def _spawn(self, cfg: LoopConfig) -> asyncio.Task[None]:
        return self.tasks.spawn(f"heartbeat:{cfg.id}", lambda: self._schedule(cfg), f"{LOOP_KIND}:{cfg.id}")

    async def stop(self) -> None:
        await self.tasks.stop(*(f"heartbeat:{loop_id}" for loop_id in self._tasks))

    async def reconfigure(self, configs: list[LoopConfig]) -> None:
        """After a config change: schedules of changed or removed loops stop; new and changed loops
        are bound (created on the control plane when managed) and get their own schedule."""
        wanted = {c.id: c for c in configs if c.enabled}
        current = {c.id: c for c in self.configs}
        for loop_id in list(self._tasks):
            if wanted.get(loop_id) != current.get(loop_id):
                await self.tasks.stop(f"heartbeat:{loop_id}")
                del self._tasks[loop_id]
        fresh = [cfg for loop_id, cfg in wanted.items() if loop_id not in self._tasks]
        await asyncio.gather(*(self.bind(cfg) for cfg in fresh))
        for cfg in fresh:
            self._tasks[cfg.id] = self._spawn(cfg)
        self.configs = list(wanted.values())

    # -- binding and tokens ----------------------------------------------------------------------

    def remote_id(self, cfg: LoopConfig) -> str | None:
        if cfg.provenance == "user":
            return cfg.remote_id
        thing = self.store.thing(BINDING_KIND, cfg.id)
        return str(thing.detail.get("remote_id")) if thing else None

    def token(self, cfg: LoopConfig) -> str | None:
        path = Path(cfg.token_file) if cfg.provenance == "user" else self.secrets / f"{cfg.id}.token"
        try:  # a FIFO or a link at the path must not block the engine: regular files only, capped
            return read_capped(path, 8192).decode("ascii").strip() or None
        except (OSError, NotRegular, UnicodeDecodeError):
            return None

    def adopt(self, cfg: LoopConfig, remote_id: str, grant: LoopGrant | Revived, how: str) -> None:
        """The one helper that persists a runner token, for creation, live revival and boot revival."""
        self.secrets.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.secrets, 0o700)
        atomic_write(self.secrets / f"{cfg.id}.token", grant.runner_token.encode(), mode=0o600)
        self.store.transition(BINDING_KIND, cfg.id, "bound", f"{how} (token jti {grant.jti})",
                              {"remote_id": remote_id, "jti": grant.jti, "expires_at": grant.expires_at,
                               "provenance": cfg.provenance})

    async def bind(self, cfg: LoopConfig) -> None:
        """Managed loops are created on the control plane by the engine, once."""
        if cfg.provenance != "managed" or self.store.thing(BINDING_KIND, cfg.id) is not None:
            return
        async with self.limit:  # a thousand loops bind at first start: bounded, like heartbeats
            answer = await self.client.create_loop(cfg.id)
        if answer.record is not None:
            self.adopt(cfg, answer.record.loop_id, answer.record, "created on the control plane")
        else:  # not bound: it gets no heartbeats; the next reconfigure or boot tries again
            log.warning("loop %s: not created on the control plane yet (%s)", cfg.id, answer.verdict().why)

    # -- heartbeats --------------------------------------------------------------------------------

    async def _schedule(self, cfg: LoopConfig) -> None:
        """Each loop on its own schedule: a random start within the round, then every round +-10 %,
        so a thousand loops do not heartbeat in step (the semaphore bounds what overlaps)."""
        await self.clock.sleep(random.uniform(0, self.round_seconds))
        while True:
            if cfg.provenance == "managed" and self.remote_id(cfg) is None:
                await self.bind(cfg)  # its creation failed at boot (unreachable, a bad answer): again, each round
            await self.beat(cfg, runner_alive=self.loops.scheduling(cfg.id))
            self.tasks.ran_well(f"heartbeat:{cfg.id}")
            await self.clock.sleep(self.round_seconds * random.uniform(0.9, 1.1))

    async def round(self) -> None:
        """Every loop once, now (for a manual check and the benchmark)."""
        await asyncio.gather(*(self.beat(cfg, runner_alive=self.loops.scheduling(cfg.id)) for cfg in self.configs))

    async def recover(self) -> None:
        """Boot: loops whose run was running when the last engine died. Alive and ours -> revival
        allowed; dead -> never a revival request (the run rules already settled the run)."""
        # One loop at a time: each revival ends in a durable token adoption (fsyncs), which serialize
        # anyway; measured, running them concurrently was slower (tests/bench/bench_heartbeats.py).
        for cfg in self.configs:
            if self.loops.had_running_run(cfg.id):
                await self.beat(cfg, runner_alive=self.loops.runner_survived(cfg.id))

    async def beat(self, cfg: LoopConfig, *, runner_alive: bool) -> Verdict | None:
        remote, token = self.remote_id(cfg), self.token(cfg)
        if remote is None or token is None or self.state(cfg) == "finalized":
            return None
        run_id = self.loops.current_run(cfg.id)
        async with self.limit:
            answer = await self.client.loop_heartbeat(remote, token, run_id, "running" if run_id else "idle")
        provenance = Provenance(managed=cfg.provenance == "managed", runner_alive=runner_alive, key_available=True)
        verdict = answer.verdict(provenance)
        status = answer.record.status if answer.record is not None else None
        retry_after = answer.retry_after
        revival = ""
        if verdict.outcome is Outcome.POP_FALLBACK:  # at most one fallback per heartbeat (and so per recovery)
            async with self.limit:
                revived = await self.client.revive_loop(remote, run_id, "running" if run_id else "idle")
            verdict, retry_after = revived.verdict(None), revived.retry_after
            status = revived.record.status if revived.record is not None else None
            revival = "runner token refused, revival by proof of possession: "
            if verdict.outcome is Outcome.LIVE and revived.record is not None:
                self.adopt(cfg, remote, revived.record, "revived by proof of possession")
                revival = f"revived by proof of possession (token jti {revived.record.jti}): "
        reason = self.apply(cfg, verdict, status, retry_after)
        said = verdict.outcome.value + (f"/{verdict.why.value}" if verdict.why else "")
        # In the store, not in memory: the loop's detail shows it after a restart, whatever the events.
        # Watchers hear of a new outcome; the same one again only moves its time (no push per heartbeat).
        if self.store.record_heartbeat(cfg.id, OUTCOMES[verdict.outcome], said, revival + reason) and self.on_change:
            self.on_change()
        return verdict

    def state(self, cfg: LoopConfig) -> str:
        thing = self.store.thing(LOOP_KIND, cfg.id)
        return thing.state if thing else "active"

    def apply(self, cfg: LoopConfig, verdict: Verdict, status: str | None, retry_after: str | None) -> str:
        """`status`: what a live answer said of the loop (active, paused, timed_out). What it means for
        the loop, as `loop_states.after` allows: pause and resume move an active loop, never an
        escalated one (the operator's latch) or a finalized one. Returns the reason it gave."""
        if verdict.outcome is Outcome.LIVE:
            if status == "timed_out":
                event, reason = LoopEvent.PLANE_ENDED, "the control plane timed the loop out"
            elif status == "paused":
                event, reason = LoopEvent.PLANE_PAUSED, "the control plane paused it"
            else:
                event, reason = LoopEvent.PLANE_ACTIVE, "heartbeat accepted"
        elif verdict.outcome is Outcome.TERMINAL:
            event, reason = LoopEvent.PLANE_ENDED, f"heartbeat {verdict.why}"
        else:  # transient: still live, runs go on, the next round retries
            after = f", retry after {printable(retry_after[:40], lines=False)}" if retry_after else ""
            event, reason = LoopEvent.HEARTBEAT_TRANSIENT, f"heartbeat failed ({verdict.why}{after}); still live"
        self._set(cfg, event, reason)
        return reason

    def _set(self, cfg: LoopConfig, event: LoopEvent, reason: str) -> None:
        previous = self.state(cfg)
        if not move_loop(self.store, cfg.id, event, reason):
            return
        runner = self.loops.runners.get(cfg.id)
        # Wake the scheduler only when the loop leaves a held state: waking also cuts the pause
        # between runs short, and a transient heartbeat must not start a run early. A loop that
        # becomes held stops at its scheduler's next turn.
        if runner is not None and previous in HELD and self.state(cfg) not in HELD:
            runner.wake.set()
