"""Sidecar supervision: launch in its own process group, probe health, restart with backoff, latch
failures with a reason, reclaim what a dead engine left behind.

Crash detection is the child's exit (`await proc.wait()`), never a polling tick. Output goes to
`<state>/sidecars/<name>.log`, not a pipe, so a sidecar outlives a crashed engine without SIGPIPE
and its last lines are there for the detail view and for spotting EADDRINUSE.

Every outcome carries the generation of the launch that produced it; a superseded launch (after a
retry, reclaim or stop) may not write over a newer one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from console.core.actions import ActionError, Target
from console.core.clock import Clock
from console.core.config import SidecarConfig
from console.core.descriptors import DESCRIPTOR_ERRORS
from console.core.files import append_regular, is_regular, read_tail
from console.core.plurals import counted
from console.core.processes import boot_time, end_group, identify
from console.core.store import Store
from console.core.waiting import sleep_unless
from console.readmodel.snapshot import PortHolderView, SidecarView
from console.sidecars.health import HealthProber
from console.sidecars.pidfile import PidRecord, remove_pidfile, write_pidfile
from console.sidecars.policy import (
    STABILITY_SECONDS,
    Failure,
    FailureReason,
    backoff_delay,
    classify_exit,
    clearing_action,
    describe_exit,
    holder_text,
    latches,
)
from console.sidecars.ports import port_free, port_holder
from console.sidecars.reclaim import TOKEN_VARIABLE, Outcome, ReclaimResult, reclaim

log = logging.getLogger("loopctl.sidecars")

KIND = "sidecar"
DESCRIPTOR_RETRY = 5.0  # out of descriptors: the next try, without counting a restart
TAIL_LINES = 40
LOG_CAP_BYTES = 8 * 1024 * 1024  # a chatty sidecar's log is cut back to nothing past this (copytruncate)
PROBE_FIRST, PROBE_MAX = 0.05, 0.5
# With no port and no URL, "healthy" means up and still up after this long (supervisord's startsecs).
PROCESS_SETTLE_SECONDS = 1.0


@dataclass
class _Launch:
    """One spawned process of one generation."""

    generation: int
    proc: asyncio.subprocess.Process
    pgid: int
    started_at: float


class SidecarRunner:
    def __init__(self, cfg: SidecarConfig, *, directory: Path, store: Store, clock: Clock,
                 prober: HealthProber, on_change: Callable[[], None]) -> None:
        self.cfg = cfg
        self.store = store
        self.clock = clock
        self.prober = prober
        self.on_change = on_change
        self.pidfile = directory / f"{cfg.name}.pid"
        self.logfile = directory / f"{cfg.name}.log"
        self.generation = 0
        self.state = "stopped"
        self.reason = ""
        self.reason_text = ""
        self.attempts = 0
        self.next_retry_at: float | None = None
        self.ready_at: float | None = None
        self.holder: PortHolderView | None = None
        self.last_exit = ""
        self.last_reclaim = ""
        self.launch: _Launch | None = None
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Begin a new supervision lifetime (a new generation)."""
        self.generation += 1
        self._task = asyncio.create_task(self._supervise(self.generation), name=f"sidecar:{self.cfg.name}")

    async def stop(self, reason: str = "engine stopping") -> None:
        """SIGTERM to the group, the grace, then SIGKILL; the PID file goes with the process."""
        self.generation += 1  # whatever the old lifetime concludes from here on is dropped
        gen = self.generation
        launch = self.launch
        if launch is not None and launch.proc.returncode is None:
            self._set(gen, "stopping", "", reason)
            await self._terminate(launch)
        await self._cancel_task()
        if launch is not None:
            self._forget(launch)
        self.next_retry_at = None
        self._set(gen, "stopped", "", reason)

    async def _cancel_task(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _terminate(self, launch: _Launch) -> None:
        await end_group(launch.pgid, launch.proc.wait(), self.cfg.stop_grace_seconds, self.clock)

    # -- the supervision loop ------------------------------------------------------------------------

    async def _supervise_patiently(self, gen: int) -> None:
        while True:
            try:
                await self._supervise_loop(gen)
                return
            except OSError as exc:
                if exc.errno not in DESCRIPTOR_ERRORS:
                    raise
                # The engine's descriptors ran out (the tray says descriptors_exhausted): not this
                # sidecar's fault, so no latched failure and no restart counted; it tries again.
                log.warning("sidecar %s: no file descriptor left (%s); retrying in %g s", self.cfg.name,
                            exc.strerror, DESCRIPTOR_RETRY)
                self.next_retry_at = self.clock.time() + DESCRIPTOR_RETRY
                self._set(gen, "backoff", "descriptors_exhausted",
                          f"the engine ran out of file descriptors ({exc.strerror}); trying again in "
                          f"{DESCRIPTOR_RETRY:g} s")
                await self.clock.sleep(DESCRIPTOR_RETRY)
                self.next_retry_at = None
                if gen != self.generation:
                    return

    async def _supervise(self, gen: int) -> None:
        try:
            await self._supervise_patiently(gen)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug here must show as a failed sidecar, not a silent dead task
            log.exception("sidecar %s: supervision failed", self.cfg.name)
            self._set(gen, "failed", FailureReason.SPAWN_ERROR, f"supervision error: {type(exc).__name__}: {exc}")

    async def _supervise_loop(self, gen: int) -> None:
        while True:
            failure = await self._attempt(gen)
            if gen != self.generation:
                return
            self.attempts += 1
            self.reason = failure.reason
            if latches(self.attempts, self.cfg.max_restarts):
                self.next_retry_at = None
                tries = self.attempts
                self._set(gen, "failed", failure.reason,
                          f"{failure.text} (gave up after {counted(tries, 'failed start')})")
                return
            delay = backoff_delay(self.attempts)
            self.next_retry_at = self.clock.time() + delay
            self._set(gen, "backoff", failure.reason,
                      f"{failure.text}; restart {self.attempts} of {self.cfg.max_restarts}"
                      + (f" in {delay:g} s" if delay else " now"))
            await self.clock.sleep(delay)
            self.next_retry_at = None

    async def _attempt(self, gen: int) -> Failure:
        """One launch, from reclaim to the process's end. Returns how it failed."""
        result = await reclaim(self.pidfile, self.cfg.port, self.cfg.stop_grace_seconds)
        self._note_reclaim(result)
        if self.cfg.port and not port_free(self.cfg.port):
            return self._port_conflict()
        self.holder = None
        restart = f" (restart {self.attempts} of {self.cfg.max_restarts})" if self.attempts else ""
        self._set(gen, "starting", "", f"launching {self.cfg.command[0]}{restart}")
        try:
            launch = await self._spawn(gen)
        except OSError as exc:
            if exc.errno in DESCRIPTOR_ERRORS:
                raise  # the engine's, not the command's: _supervise_patiently waits and tries again
            return Failure(FailureReason.SPAWN_ERROR,
                           f"cannot start {self.cfg.command[0]!r}: {exc.strerror or exc}")
        try:
            return await self._watch(gen, launch)
        finally:
            if launch.proc.returncode is not None:
                self._forget(launch)

    async def _spawn(self, gen: int) -> _Launch:
        self._rotate_log()
        token = secrets.token_hex(16)
        env = {**os.environ, **self.cfg.env, TOKEN_VARIABLE: token}
        # Never through a link or into a FIFO the sidecar left at its log's path (core/files.py).
        with os.fdopen(append_regular(self.logfile), "ab", buffering=0) as out:  # the child keeps its own
            proc = await asyncio.create_subprocess_exec(
                *self.cfg.command, cwd=self.cfg.cwd or None, env=env, stdin=asyncio.subprocess.DEVNULL,
                stdout=out, stderr=asyncio.subprocess.STDOUT, start_new_session=True,
            )
        pgid = proc.pid  # start_new_session: the child leads its own session and group
        live = identify(proc.pid)
        write_pidfile(self.pidfile, PidRecord(
            pid=proc.pid, pgid=pgid, session_token=token,
            create_time=live.create_time if live else 0.0,
            cmdline=list(self.cfg.command),  # what we launched; reclaim allows for exec through shims
            boot_time=boot_time(), written_at=self.clock.time(),
        ))
        launch = _Launch(gen, proc, pgid, self.clock.time())
        self.launch = launch
        self.ready_at = None
        return launch

    async def _watch(self, gen: int, launch: _Launch) -> Failure:
        exited = asyncio.ensure_future(launch.proc.wait())
        try:
            outcome = await self._until_ready(launch, exited)
            if outcome == "timeout":
                await self._terminate(launch)
                return Failure(FailureReason.READY_TIMEOUT,
                               f"not healthy within {self.cfg.ready_timeout_seconds:g} s "
                               f"(check: {self.cfg.health_check})")
            if outcome == "ready":
                self.ready_at = self.clock.time()
                self._set(gen, "ready", "", f"healthy ({self.cfg.health_check}), pid {launch.proc.pid}")
                stable = await sleep_unless(self.clock, STABILITY_SECONDS, exited)
                if stable and gen == self.generation:
                    stable_count = self.attempts
                    self.attempts = 0
                    if stable_count:
                        self.on_change()
                await exited
            return self._exit_failure(launch)
        finally:
            exited.cancel()

    async def _until_ready(self, launch: _Launch, exited: asyncio.Future[int]) -> str:
        began = self.clock.monotonic()
        deadline = began + self.cfg.ready_timeout_seconds
        interval = PROBE_FIRST
        while True:
            if exited.done():
                return "exited"
            if await self._healthy(began) and not exited.done():
                return "ready"
            remaining = deadline - self.clock.monotonic()
            if remaining <= 0:
                return "timeout"
            await sleep_unless(self.clock, min(interval, remaining), exited)
            interval = min(interval * 2, PROBE_MAX)

    async def _healthy(self, began: float) -> bool:
        if self.cfg.health_check == "process":
            return self.clock.monotonic() - began >= PROCESS_SETTLE_SECONDS
        return await self.prober.healthy(self.cfg.health_check, self.cfg.port)

    def _exit_failure(self, launch: _Launch) -> Failure:
        code = launch.proc.returncode
        self.last_exit = describe_exit(code)
        held = bool(self.cfg.port) and not port_free(self.cfg.port)
        text = ""
        if held:
            self._observe_holder()
            if self.holder is not None:
                text = holder_text(self.holder.pid, self.holder.program, self.holder.ours)
        return classify_exit(returncode=code, output_tail=self.output_text(), port=self.cfg.port,
                             port_held=held, holder_text=text)

    def _port_conflict(self) -> Failure:
        self._observe_holder()
        who = ""
        if self.holder is not None:
            who = f" by {holder_text(self.holder.pid, self.holder.program, self.holder.ours)}"
        return Failure(FailureReason.PORT_CONFLICT, f"port {self.cfg.port} is held{who}")

    def _observe_holder(self) -> None:
        found = port_holder(self.cfg.port)
        if found is None:
            self.holder = PortHolderView(None, "an unknown process", False)
            return
        ours = False
        if found.pid is not None:
            # Launched by a loopctl engine (it carries a session token); reclaim still proves it before any signal.
            live = identify(found.pid, TOKEN_VARIABLE)
            ours = live is not None and live.environ_token is not None
        self.holder = PortHolderView(found.pid, found.program, ours)

    def _forget(self, launch: _Launch) -> None:
        if self.launch is launch:
            self.launch = None
            remove_pidfile(self.pidfile)

    def _note_reclaim(self, result: ReclaimResult) -> None:
        if result.outcome is Outcome.NO_PIDFILE:
            return
        self.last_reclaim = f"{result.outcome.value}: {result.detail}"
        log.info("sidecar %s: reclaim %s", self.cfg.name, self.last_reclaim)

    # -- operator actions ---------------------------------------------------------------------------

    async def retry(self) -> dict[str, Any]:
        if self.state not in ("failed", "backoff", "stopped"):
            raise ActionError("not_applicable",
                              f"sidecar {self.cfg.name} is {self.state}, not failed: nothing to retry")
        previous = self.state
        await self._cancel_task()
        self.attempts = 0
        self.next_retry_at = None
        self.start()
        return {"message": f"{self.cfg.name}: {previous} cleared, relaunching", "previous": previous}

    async def reclaim_now(self) -> dict[str, Any]:
        if self.launch is not None and self.launch.proc.returncode is None:
            raise ActionError("not_applicable", f"sidecar {self.cfg.name} is running under this engine "
                                                f"(pid {self.launch.proc.pid}): nothing to reclaim")
        await self._cancel_task()
        self.generation += 1
        result = await reclaim(self.pidfile, self.cfg.port, self.cfg.stop_grace_seconds)
        self._note_reclaim(result)
        if result.outcome is Outcome.KILL_FAILED:
            raise ActionError("kill_failed", f"{self.cfg.name}: {result.detail}")
        self.attempts = 0
        self.next_retry_at = None
        self.start()
        return {"message": f"{self.cfg.name}: {result.outcome.value} ({result.detail}); relaunching",
                "outcome": result.outcome.value, "pid": result.pid}

    # -- state and views ----------------------------------------------------------------------------

    def _set(self, gen: int, state: str, reason: str, text: str) -> bool:
        """The one place a runner changes state: refuses outcomes of a superseded launch."""
        if gen != self.generation:
            log.info("sidecar %s: dropped %s from superseded launch %d (current %d)",
                     self.cfg.name, state, gen, self.generation)
            return False
        self.state, self.reason, self.reason_text = state, reason, text
        view = self.view(with_output=False)
        self.store.transition(KIND, self.cfg.name, state, text, _stored(view))
        return True

    def view(self, *, with_output: bool = True) -> SidecarView:
        launch = self.launch
        alive = launch is not None and launch.proc.returncode is None
        failure = self.state in ("failed", "backoff")
        action = ""
        if failure:
            action = clearing_action(self.cfg.name, self.reason, port=self.cfg.port,
                                     holder_pid=self.holder.pid if self.holder else None,
                                     holder_ours=bool(self.holder and self.holder.ours))
        return SidecarView(
            name=self.cfg.name, state=self.state, reason=self.reason if failure else "",
            reason_text=self.reason_text, attempts=self.attempts, max_restarts=self.cfg.max_restarts,
            next_retry_at=self.next_retry_at, pid=launch.proc.pid if alive and launch else None,
            started_at=launch.started_at if alive and launch else None, ready_at=self.ready_at if alive else None,
            port=self.cfg.port, health=self.cfg.health_check, command=list(self.cfg.command),
            holder=self.holder if failure else None, last_exit=self.last_exit, action=action,
            last_reclaim=self.last_reclaim, output_tail=self.output_lines() if with_output else [],
        )

    def output_text(self) -> str:
        return read_tail(self.logfile)

    def output_lines(self) -> list[str]:
        self._cap_log()
        return self.output_text().splitlines()[-TAIL_LINES:]

    def _rotate_log(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            if not is_regular(self.logfile):  # a link or a FIFO: not ours to keep (append_regular replaces it)
                return
            if self.logfile.stat().st_size > 0:
                os.replace(self.logfile, self.logfile.with_name(self.logfile.name + ".1"))

    def _cap_log(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            # lstat: truncating through a link would empty whatever it points at
            if is_regular(self.logfile) and self.logfile.stat().st_size > LOG_CAP_BYTES:
                os.truncate(self.logfile, 0)  # the child writes with O_APPEND and carries on at the new end


def _stored(view: SidecarView) -> dict[str, Any]:
    data = asdict(view)
    data.pop("output_tail")
    data.pop("name")
    data.pop("state")
    return data


class Supervisor:
    """All sidecars of the host. Registers the sidecar actions on the engine."""

    def __init__(self, sidecars: list[SidecarConfig], *, directory: Path, store: Store, clock: Clock,
                 on_change: Callable[[], None]) -> None:
        self.directory = directory
        self.store = store
        self.clock = clock
        self.on_change = on_change
        self.prober = HealthProber()
        self.runners = {cfg.name: self._runner(cfg) for cfg in sidecars}

    def _runner(self, cfg: SidecarConfig) -> SidecarRunner:
        return SidecarRunner(cfg, directory=self.directory, store=self.store, clock=self.clock, prober=self.prober,
                             on_change=self.on_change)

    async def reconfigure(self, sidecars: list[SidecarConfig], between: Callable[[], None] | None = None) -> None:
        """Stop the sidecars that changed or went away, then start the changed and the new ones.
        Unchanged sidecars are not touched."""
        wanted = {cfg.name: cfg for cfg in sidecars}
        going = [r for name, r in self.runners.items() if wanted.get(name) != r.cfg]
        await asyncio.gather(*(r.stop("config changed" if r.cfg.name in wanted else "removed from the config")
                               for r in going))
        if between is not None:
            between()
        kept = {name: r for name, r in self.runners.items() if r not in going}
        self.runners = {cfg.name: kept.get(cfg.name) or self._runner(cfg) for cfg in sidecars}
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        for name, runner in self.runners.items():
            if name not in kept:
                runner.start()

    async def start(self) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        for runner in self.runners.values():
            runner.start()

    async def stop(self) -> None:
        await asyncio.gather(*(runner.stop() for runner in self.runners.values()))
        await self.prober.close()

    def views(self) -> list[SidecarView]:
        return [runner.view() for runner in self.runners.values()]

    def runner(self, target: Target) -> SidecarRunner:
        runner = self.runners.get(target.name)
        if runner is None:
            known = ", ".join(sorted(self.runners)) or "none configured"
            raise ActionError("unknown_target", f"no sidecar named {target.name!r} (sidecars: {known})")
        return runner

    async def retry(self, target: Target) -> dict[str, Any]:
        return await self.runner(target).retry()

    async def reclaim(self, target: Target) -> dict[str, Any]:
        return await self.runner(target).reclaim_now()

