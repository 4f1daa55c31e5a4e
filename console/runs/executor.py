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

    def prepare(self, run_id: str, continuation: str | None) -> Path:
        """The run's directory and its continuation file (fsynced): blocking file work, so the
        scheduler runs it on a thread before the run's intent is committed."""
        directory = run_dir(self.runs_root, run_id)
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if continuation is not None:
            atomic_write_text(directory / "continuation.md", continuation, mode=0o600)
        return directory

    def record_intent(self, run_id: str, loop: LoopConfig) -> None:
        """Intent before effect: the row is `running` with no pid before the spawn, so an engine killed
        between the spawn and the pid's record leaves a row the next boot looks for by its run id (in
        the child's environment) instead of a `queued` one it would spawn a second time. The caller
        commits it in the same transaction as the run's queueing, when the run is a fresh one."""
        self.starting.add(run_id)
        self.store.transition(RUN_KIND, run_id, "running", "spawning", {"loop": loop.id}, columns={
            "pid": None, "pgid": None, "create_time": None, "boot_time": boot_time(), "session_token": run_id,
            "cmdline": json.dumps(loop.command), "started_at": self.clock.time(),
        })

    async def spawn(self, run: RunRecord, loop: LoopConfig, directory: Path) -> LiveRun | Observed:
        """Launch a run whose intent is recorded: its live handle, or what its failure to start came to."""
        env = {**os.environ, **loop.env, RUN_ID_VARIABLE: run.id, "LOOPCTL_LOOP_ID": loop.id,
               "LOOPCTL_HANDOFF": str(directory / "handoff.json"),
               "LOOPCTL_CONTINUATION_ATTEMPT": str(run.continuation_attempt)}
        env.pop("LOOPCTL_CONTINUATION", None)
        if run.continuation_attempt > 0:  # prepare() wrote it
            env["LOOPCTL_CONTINUATION"] = str(directory / "continuation.md")
        try:
            with open(directory / "output.log", "ab", buffering=0) as out:
                proc = await asyncio.create_subprocess_exec(
                    *loop.command, cwd=loop.cwd or None, env=env, stdin=asyncio.subprocess.DEVNULL,
                    stdout=out, stderr=asyncio.subprocess.STDOUT, start_new_session=True,
                )
        except OSError as exc:
            self.starting.discard(run.id)
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
        return live

    async def watch(self, live: LiveRun, loop: LoopConfig, directory: Path,
                    on_activity: Callable[[float], None]) -> Observed:
        try:
            return await self._watch(live, loop, directory / "handoff.json", directory / "output.log", on_activity)
        finally:
            self.live.pop(live.run_id, None)

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
        # What the run left is read on a thread: an agent's files are not the event loop's to wait on.
        handoff, tail = await asyncio.to_thread(lambda: (read_handoff(handoff_path), read_tail(output_path)))
        return Observed(ending, handoff, tail, last_touch,
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
