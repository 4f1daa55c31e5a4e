"""Executing one run: launch the loop's command in its own process group with the run environment
(DESIGN section 7), watch it until it exits, times out or is cancelled, then read what it left.

The executor only observes; deciding what the outcome means (stop reason, liveness, what runs
next) is liveness.py and continuation.py, and recording it is the loop scheduler's (loops.py).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from console.core.atomic import atomic_write_text
from console.core.clock import Clock
from console.core.config import LoopConfig
from console.core.files import read_tail
from console.core.processes import boot_time, end_group, identify
from console.core.records import View
from console.core.store import RUN_KIND, Store
from console.core.waiting import sleep_unless
from console.runs.handoff import Handoff, read_handoff
from console.runs.ledger import RunRecord
from console.runs.liveness import Ending

RUN_ID_VARIABLE = "LOOPCTL_RUN_ID"  # also the proof, in a process's environment, that it belongs to a run
STOP_GRACE = 2.0  # TERM, this long, then KILL
ACTIVITY_SAMPLE = 5.0  # how often a running run's handoff is looked at for activity


class Observed(View, frozen=True):
    """What one execution window came to, as seen from outside."""

    ending: Ending
    handoff: Handoff
    output_tail: str
    last_activity: float | None
    error_code: str | None = None
    error_text: str | None = None


@dataclass
class LiveRun:
    """A run this engine launched and still holds the handle of."""

    run_id: str
    proc: asyncio.subprocess.Process
    pgid: int
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    cancel_reason: str = ""
    paused: bool = False  # the cancel is a local pause of its loop: stop reason `paused`


def run_dir(runs_root: Path, run_id: str) -> Path:
    return runs_root / run_id


def mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def _no_crash(_point: str) -> None:
    pass


class RunExecutor:
    def __init__(self, store: Store, clock: Clock, runs_root: Path,
                 crash: Callable[[str], None] = _no_crash) -> None:
        self.store = store
        self.clock = clock
        self.runs_root = runs_root
        self.crash = crash
        self.live: dict[str, LiveRun] = {}
        self.starting: set[str] = set()  # recorded as spawning, not yet in `live`: the reaper leaves them be
        self.closing = ""  # set by the engine's stop: a run whose spawn was in flight is ended at once, for this

    async def execute(self, run: RunRecord, loop: LoopConfig, continuation: str | None,
                      on_activity: Callable[[float], None]) -> Observed:
        directory = run_dir(self.runs_root, run.id)
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        handoff_path = directory / "handoff.json"
        env = {**os.environ, **loop.env, RUN_ID_VARIABLE: run.id, "LOOPCTL_LOOP_ID": loop.id,
               "LOOPCTL_HANDOFF": str(handoff_path),
               "LOOPCTL_CONTINUATION_ATTEMPT": str(run.continuation_attempt)}
        env.pop("LOOPCTL_CONTINUATION", None)
        if continuation is not None:
            continuation_path = directory / "continuation.md"
            atomic_write_text(continuation_path, continuation, mode=0o600)
            env["LOOPCTL_CONTINUATION"] = str(continuation_path)
        # Intent before effect: the row is `running` with no pid before the spawn, so an engine killed
        # between the spawn and the pid's record leaves a row the next boot looks for by its run id
        # (in the child's environment) instead of a `queued` one it would spawn a second time.
        self.starting.add(run.id)
        try:
            return await self._spawn_and_watch(run, loop, env, directory, on_activity)
        finally:
            self.starting.discard(run.id)
            self.live.pop(run.id, None)

    async def _spawn_and_watch(self, run: RunRecord, loop: LoopConfig, env: dict[str, str], directory: Path,
                               on_activity: Callable[[float], None]) -> Observed:
        handoff_path = directory / "handoff.json"
        output_path = directory / "output.log"
        self.store.transition(RUN_KIND, run.id, "running", "spawning", {"loop": loop.id}, columns={
            "pid": None, "pgid": None, "create_time": None, "boot_time": boot_time(), "session_token": run.id,
            "cmdline": json.dumps(loop.command), "started_at": self.clock.time(),
        })
        try:
            with open(output_path, "ab", buffering=0) as out:
                proc = await asyncio.create_subprocess_exec(
                    *loop.command, cwd=loop.cwd or None, env=env, stdin=asyncio.subprocess.DEVNULL,
                    stdout=out, stderr=asyncio.subprocess.STDOUT, start_new_session=True,
                )
        except OSError as exc:
            return Observed(Ending(spawn_failed=True), Handoff(problem="the run never started"), "", None,
                            "spawn_failed", f"cannot start {loop.command[0]!r}: {exc.strerror or exc}")
        live = LiveRun(run.id, proc, proc.pid)
        self.live[run.id] = live
        self.starting.discard(run.id)
        if self.closing:  # the engine began to stop while this spawn was in flight
            self.request_cancel(run.id, self.closing)
        self.crash("run_after_spawn")
        seen = identify(proc.pid)
        self.store.transition(RUN_KIND, run.id, "running", f"started pid {proc.pid}", {"loop": loop.id}, columns={
            "pid": proc.pid, "pgid": proc.pid, "create_time": seen.create_time if seen else None,
        })
        return await self._watch(live, loop, handoff_path, output_path, on_activity)

    async def _watch(self, live: LiveRun, loop: LoopConfig, handoff_path: Path, output_path: Path,
                     on_activity: Callable[[float], None]) -> Observed:
        exited = asyncio.ensure_future(live.proc.wait())
        cancelled = asyncio.ensure_future(live.cancel.wait())
        deadline = self.clock.monotonic() + loop.timeout if loop.timeout else None
        last_touch = mtime(handoff_path)
        timeout_fired = False
        try:
            while not exited.done():
                pause_for = ACTIVITY_SAMPLE
                if deadline is not None:
                    pause_for = min(pause_for, max(0.0, deadline - self.clock.monotonic()))
                await sleep_unless(self.clock, pause_for, exited, cancelled)
                touched = mtime(handoff_path)
                if touched is not None and touched != last_touch:  # touching the handoff counts as activity
                    last_touch = touched
                    on_activity(self.clock.time())
                if exited.done():
                    break
                if cancelled.done():
                    await end_group(live.pgid, exited, STOP_GRACE, self.clock)
                    break
                if deadline is not None and self.clock.monotonic() >= deadline:
                    timeout_fired = True
                    await end_group(live.pgid, exited, STOP_GRACE, self.clock)
                    break
        finally:
            cancelled.cancel()
        code = live.proc.returncode
        ending = Ending(
            exit_code=code if code is not None and code >= 0 else None,
            signal=-code if code is not None and code < 0 else None,
            timeout_fired=timeout_fired, cancelled=live.cancel.is_set() and not timeout_fired and not live.paused,
            paused=live.cancel.is_set() and not timeout_fired and live.paused,
        )
        return Observed(ending, read_handoff(handoff_path), read_tail(output_path), last_touch,
                        error_text=live.cancel_reason if ending.cancelled or ending.paused else None)

    def request_cancel(self, run_id: str, reason: str, *, paused: bool = False) -> bool:
        """Ask a live run to end (TERM, grace, KILL). False if this engine holds no handle on it."""
        live = self.live.get(run_id)
        if live is None:
            return False
        if not live.cancel.is_set():
            live.cancel_reason = reason
            live.paused = paused
            live.cancel.set()
        return True
