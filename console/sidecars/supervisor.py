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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from console.core.actions import ActionError, Target
from console.core.atomic import atomic_write_text
from console.core.clock import Clock
from console.core.config import SidecarConfig
from console.core.descriptors import DESCRIPTOR_ERRORS
from console.core.files import append_regular, read_tail
from console.core.holds import Hold, Holds
from console.core.plurals import counted
from console.core.processes import Carrier, boot_time, carrying, end_group, identify, leads_group
from console.core.records import to_builtins
from console.core.spawn_gate import SpawnGate
from console.core.store import Store
from console.core.tasks import Tasks
from console.core.waiting import cancel_and_wait, sleep_unless
from console.sidecars.health import HealthProber
from console.sidecars.logs import LogKeeper, set_aside
from console.sidecars.pidfile import PidRecord, read_pidfile, remove_pidfile, write_pidfile
from console.sidecars.policy import (
    STABILITY_SECONDS,
    Effect,
    Failure,
    FailureReason,
    SidecarEvent,
    backoff_delay,
    classify_exit,
    clearing_action,
    describe_exit,
    holder_text,
    latches,
    on_event,
)
from console.sidecars.ports import port_free, port_holder
from console.sidecars.reclaim import (
    TOKEN_VARIABLE,
    Outcome,
    ReclaimResult,
    end_proven_group,
    end_proven_pid,
    reclaim,
)
from console.sidecars.view import PortHolderView, SidecarView

log = logging.getLogger("loopctl.sidecars")

KIND = "sidecar"
DESCRIPTOR_RETRY = 5.0  # out of descriptors: the next try, without counting a restart
TAIL_LINES = 40
LOG_KEEPER = "sidecar-logs"  # the task that rotates the logs by size (sidecars/logs.py)
PROBE_FIRST, PROBE_MAX = 0.05, 0.5
# With no port and no URL, "healthy" means up and still up after this long (supervisord's startsecs).
PROCESS_SETTLE_SECONDS = 1.0
RECLAIM_GRACE = 2.0  # for what no current config describes: the default stop grace
SESSION_FILE = ".session"  # the host's session prefix; names start with a letter or digit, never clash


def session_prefix(directory: Path) -> str:
    """This state dir's secret prefix of every sidecar session token (0600, made once)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = directory / SESSION_FILE
    with contextlib.suppress(OSError, UnicodeDecodeError):
        text = path.read_text(encoding="ascii").strip()
        if len(text) == 32 and all(c in "0123456789abcdef" for c in text):
            return text
    prefix = secrets.token_hex(16)
    atomic_write_text(path, prefix, mode=0o600)
    return prefix


def session_token(prefix: str, name: str) -> str:
    """`prefix:name:random`: whose sidecar (this state dir's), which one, which launch."""
    return f"{prefix}:{name}:{secrets.token_hex(8)}"


@dataclass
class _Launch:
    """One spawned process of one generation."""

    generation: int
    proc: asyncio.subprocess.Process
    pgid: int
    started_at: float


def _no_crash(_point: str) -> None:
    pass


class SidecarRunner:
    def __init__(self, cfg: SidecarConfig, *, directory: Path, store: Store, clock: Clock,
                 prober: HealthProber, on_change: Callable[[], None], token_prefix: str = "",
                 crash: Callable[[str], None] = _no_crash, gate: SpawnGate | None = None) -> None:
        self.cfg = cfg
        self.gate = gate if gate is not None else SpawnGate()
        self.token_prefix = token_prefix
        self.crash = crash
        self.token = ""  # the session token of the latest launch, set before its spawn
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
        self.held: Hold | None = None  # an operator's stop: it is not started until that is released

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
            await cancel_and_wait(task)

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
            return await self._port_conflict()
        self.holder = None
        restart = f" (restart {self.attempts} of {self.cfg.max_restarts})" if self.attempts else ""
        self._set(gen, "starting", "", f"launching {self.cfg.command[0]}{restart}")
        try:
            async with self.gate.slot():  # with the engine's other spawns: a few at a time (core/spawn_gate.py)
                if gen != self.generation:
                    return Failure(FailureReason.SPAWN_ERROR, "superseded while it waited to launch")
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
        set_aside(self.logfile)
        # The host's session prefix makes the child findable by its environment alone, should the
        # engine die before the PID file below is written (the sweep at the next boot ends it).
        token = session_token(self.token_prefix, self.cfg.name)
        self.token = token
        env = {**os.environ, **self.cfg.env, TOKEN_VARIABLE: token}
        # Never through a link or into a FIFO the sidecar left at its log's path (core/files.py).
        with os.fdopen(append_regular(self.logfile), "ab", buffering=0) as out:  # the child keeps its own
            proc = await asyncio.create_subprocess_exec(
                *self.cfg.command, cwd=self.cfg.cwd or None, env=env, stdin=asyncio.subprocess.DEVNULL,
                stdout=out, stderr=asyncio.subprocess.STDOUT, start_new_session=True,
            )
        pgid = proc.pid  # start_new_session: the child leads its own session and group
        self.crash("sidecar_after_spawn")
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
            return await self._exit_failure(launch)
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

    async def _exit_failure(self, launch: _Launch) -> Failure:
        code = launch.proc.returncode
        self.last_exit = describe_exit(code)
        held = bool(self.cfg.port) and not port_free(self.cfg.port)
        text = ""
        if held:
            await self._observe_holder()
            if self.holder is not None:
                text = holder_text(self.holder.pid, self.holder.program, self.holder.ours)
        return classify_exit(returncode=code, output_tail=self.output_text(), port=self.cfg.port,
                             port_held=held, holder_text=text)

    async def _port_conflict(self) -> Failure:
        await self._observe_holder()
        who = ""
        if self.holder is not None:
            who = f" by {holder_text(self.holder.pid, self.holder.program, self.holder.ours)}"
        return Failure(FailureReason.PORT_CONFLICT, f"port {self.cfg.port} is held{who}")

    async def _observe_holder(self) -> None:
        # A scan of every socket of the host (psutil.net_connections): on a thread, not the event loop.
        self.holder = await asyncio.to_thread(observe_holder, self.cfg.port)

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

    def refuse_if_held(self, verb: str) -> None:
        if self.held is not None:
            raise ActionError("not_applicable", f"{verb} sidecar:{self.cfg.name} refused: it was stopped by "
                                                f"`{self.held.by}` and stays stopped; `loopctl start "
                                                f"sidecar:{self.cfg.name}` starts it")

    def keep_stopped(self, hold: Hold) -> None:
        """At boot or on a reload: held by an operator's stop, so not started."""
        self.held = hold
        self.generation += 1
        self._set(self.generation, "stopped", "", f"stopped by `{hold.by}`: not started until it is started again")

    async def retry(self) -> dict[str, Any]:
        self.refuse_if_held("retry")
        if on_event(self.state, SidecarEvent.OPERATOR_RETRY) is Effect.REFUSE:
            raise ActionError("not_applicable",
                              f"sidecar {self.cfg.name} is {self.state}, not failed: nothing to retry")
        previous = self.state
        await self._cancel_task()
        self.attempts = 0
        self.next_retry_at = None
        self.start()
        return {"message": f"{self.cfg.name}: {previous} cleared, relaunching", "previous": previous}

    async def reclaim_now(self) -> dict[str, Any]:
        self.refuse_if_held("reclaim")
        if self.holder is not None and not self.holder.ours and self.state in ("failed", "backoff"):
            # Reclaim ends only what an earlier engine of ours left; relaunching into a foreign holder's
            # port is the same conflict again.
            who = holder_text(self.holder.pid, self.holder.program, self.holder.ours)
            raise ActionError("not_applicable", f"reclaim sidecar:{self.cfg.name} refused: port {self.cfg.port} is "
                                                f"held by {who}, which reclaim never ends; free the port (or change "
                                                f"the sidecar's port), then `loopctl retry sidecar:{self.cfg.name}`")
        running = self.launch is not None and self.launch.proc.returncode is None
        if on_event(self.state, SidecarEvent.OPERATOR_RECLAIM, running=running) is Effect.REFUSE:
            assert self.launch is not None
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
            held_by=self.held.by if self.held else "", held_at=self.held.at if self.held else None,
        )

    def output_text(self) -> str:
        return read_tail(self.logfile)

    def output_lines(self) -> list[str]:
        return self.output_text().splitlines()[-TAIL_LINES:]  # a read only: the LogKeeper keeps the size


def observe_holder(port: int) -> PortHolderView:
    """Who holds `port`, and whether a loopctl engine launched it (it carries a session token; reclaim
    still proves it before any signal)."""
    found = port_holder(port)
    if found is None:
        return PortHolderView(None, "an unknown process", False)
    ours = False
    if found.pid is not None:
        live = identify(found.pid, TOKEN_VARIABLE)
        ours = live is not None and live.environ_token is not None
    return PortHolderView(found.pid, found.program, ours)


def _stored(view: SidecarView) -> dict[str, Any]:
    data: dict[str, Any] = to_builtins(view)  # a CompactView: fields at their defaults are left out
    for carried_apart in ("output_tail", "name", "state"):
        data.pop(carried_apart, None)
    return data


class Supervisor:
    """All sidecars of the host. Registers the sidecar actions on the engine."""

    def __init__(self, sidecars: list[SidecarConfig], *, directory: Path, store: Store, clock: Clock,
                 on_change: Callable[[], None], crash: Callable[[str], None] = _no_crash,
                 holds: Holds | None = None, gate: SpawnGate | None = None, tasks: Tasks | None = None) -> None:
        self.directory = directory
        self.gate = gate if gate is not None else SpawnGate()  # the engine's one gate, shared with the runs
        self.tasks = tasks if tasks is not None else Tasks(clock, on_change)
        self.log_keeper = LogKeeper(clock, lambda: [(r.logfile, r.cfg.log_max_bytes) for r in self.runners.values()])
        self.store = store
        self.clock = clock
        self.on_change = on_change
        self.crash = crash
        self.prober = HealthProber()
        self.prefix = session_prefix(directory)
        self.holds = holds if holds is not None else Holds(directory / "holds.json")
        self.runners = {cfg.name: self._runner(cfg) for cfg in sidecars}

    def _begin(self, runner: SidecarRunner) -> None:
        """Start a runner, unless an operator's stop holds it."""
        hold = self.holds.get(f"{KIND}:{runner.cfg.name}")
        if hold is not None:
            runner.keep_stopped(hold)
        else:
            runner.start()

    def _runner(self, cfg: SidecarConfig) -> SidecarRunner:
        return SidecarRunner(cfg, directory=self.directory, store=self.store, clock=self.clock, prober=self.prober,
                             on_change=self.on_change, token_prefix=self.prefix, crash=self.crash, gate=self.gate)

    async def reconfigure(self, sidecars: list[SidecarConfig], between: Callable[[], None] | None = None) -> None:
        """Stop the sidecars that changed or went away, then start the changed and the new ones.
        Unchanged sidecars are not touched."""
        wanted = {cfg.name: cfg for cfg in sidecars}

        def event(runner: SidecarRunner) -> SidecarEvent:
            cfg = wanted.get(runner.cfg.name)
            if cfg is None:
                return SidecarEvent.REMOVED
            return SidecarEvent.RELOAD_UNCHANGED if cfg == runner.cfg else SidecarEvent.RELOAD_CHANGED

        going = [r for r in self.runners.values() if on_event(r.state, event(r)) is not Effect.KEEP]
        await asyncio.gather(*(r.stop("config changed" if r.cfg.name in wanted else "removed from the config")
                               for r in going))
        if between is not None:
            between()
        kept = {name: r for name, r in self.runners.items() if r not in going}
        self.runners = {cfg.name: kept.get(cfg.name) or self._runner(cfg) for cfg in sidecars}
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        for name, runner in self.runners.items():
            if name not in kept:
                self._begin(runner)
        await self.sweep("after a reconfigure")

    async def start(self) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        # What a configured sidecar's PID file names is its runner's to reclaim (with its outcome shown).
        recorded = {r.session_token for name in self.runners
                    if isinstance(r := read_pidfile(self.directory / f"{name}.pid"), PidRecord)}
        await self.sweep("at boot", spare=recorded)
        for runner in self.runners.values():
            self._begin(runner)
        self.tasks.spawn(LOG_KEEPER, self.log_keeper.run)

    async def sweep(self, when: str, spare: set[str] | None = None) -> list[str]:
        """Reclaim every sidecar process of this host that no current runner launched: one a previous
        engine spawned but never recorded, or one the config no longer names. Found by the host's
        session prefix in its environment (proof it is ours), ended by the group it is proven to
        lead, each with an event. PID files of sidecars no longer configured go the reclaim's way."""
        prefix = f"{self.prefix}:"
        before = {r.token for r in self.runners.values() if r.token}
        carriers = await asyncio.to_thread(carrying, TOKEN_VARIABLE, lambda value: value.startswith(prefix))
        # The runners' tokens before and after the scan: a runner started just before the sweep (a
        # reconfigure) sets its token before it spawns and may spawn while the scan runs (read only
        # before, it was ended); one relaunched during the scan leaves its previous launch to itself.
        spared = before | {r.token for r in self.runners.values() if r.token} | (spare or set())
        by_token: dict[str, list[Carrier]] = {}
        for carrier in carriers:
            if carrier.value not in spared:
                by_token.setdefault(carrier.value, []).append(carrier)
        done = []
        for token, members in by_token.items():
            name = token.split(":")[1]
            pids = await self._end_untracked(token, members)
            if not pids:
                continue
            why = "no longer in the config" if name not in self.runners else "never recorded in a PID file"
            text = f"reclaimed {when}: {counted(len(pids), 'process', 'processes')} ({', '.join(map(str, pids))}) " \
                   f"started by an earlier engine, {why}"
            done.append(text)
            runner = self.runners.get(name)
            if runner is None:
                pidfile = self.directory / f"{name}.pid"
                record = read_pidfile(pidfile)
                if not isinstance(record, PidRecord) or record.session_token == token:
                    remove_pidfile(pidfile)
                self.store.transition(KIND, name, "stopped", text)
            else:  # said where the runner shows its reclaims; an event only while it has none of its own
                runner.last_reclaim = f"reclaimed: {text}"
                if runner.state == "stopped":
                    self.store.transition(KIND, name, "stopped", text)
        for pidfile in sorted(self.directory.glob("*.pid")):
            if pidfile.stem in self.runners:
                continue
            result = await reclaim(pidfile, 0, RECLAIM_GRACE)
            if result.outcome is not Outcome.NO_PIDFILE:
                text = f"{result.outcome.value} {when}: {result.detail} (no longer in the config)"
                done.append(text)
                self.store.transition(KIND, pidfile.stem, "stopped", text)
        for text in done:
            log.info("sidecars: %s", text)
        return done

    async def _end_untracked(self, token: str, members: list[Carrier]) -> list[int]:
        """End the processes carrying `token`: through the group their leader is proven to lead, else one
        by one; each is proven again (the token in its environment) just before it is signalled."""
        def still(pid: int) -> bool:
            live = identify(pid, TOKEN_VARIABLE)
            return live is not None and live.environ_token == token

        ended = []
        leader = next((c for c in members if leads_group(c.pid, c.pgid) and still(c.pid)), None)
        if leader is not None:
            await end_proven_group(leader.pid, leader.pgid, RECLAIM_GRACE)
            ended.append(leader.pid)
        for member in members:
            if member is not leader and still(member.pid):
                await end_proven_pid(member.pid, RECLAIM_GRACE)
                ended.append(member.pid)
        return ended

    async def stop(self) -> None:
        await self.tasks.stop(LOG_KEEPER)
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

    async def stop_one(self, target: Target) -> dict[str, Any]:
        """`stop sidecar:NAME`: held stopped (recorded first, then stopped) until `start`."""
        runner = self.runner(target)
        if runner.held is not None:
            raise ActionError("not_applicable", f"sidecar {target.name} is already stopped (by `{runner.held.by}`); "
                                                f"`loopctl start {target}` starts it")
        hold = Hold("stop", f"loopctl stop {target}", self.clock.time())
        self.holds.hold(str(target), hold)  # intent before effect: a crash mid-stop still leaves it held
        runner.held = hold
        await runner.stop(f"stopped by `{hold.by}`: not started until it is started again")
        return {"message": f"{target.name}: stopped; it stays stopped across reloads and restarts until "
                           f"`loopctl start {target}`"}

    async def start_one(self, target: Target) -> dict[str, Any]:
        runner = self.runner(target)
        if runner.held is None:
            hint = f"; `loopctl retry {target}` clears a failure" if runner.state in ("failed", "backoff") else ""
            raise ActionError("not_applicable", f"sidecar {target.name} is {runner.state}, not stopped by an "
                                                f"operator: nothing to start{hint}")
        self.holds.release(str(target))
        runner.held = None
        runner.attempts = 0
        runner.start()
        return {"message": f"{target.name}: started"}

    async def restart_one(self, target: Target) -> dict[str, Any]:
        """`restart sidecar:NAME`: a working sidecar stopped (grace, then SIGKILL) and launched anew."""
        runner = self.runner(target)
        runner.refuse_if_held("restart")
        if runner.state in ("failed", "backoff"):
            raise ActionError("not_applicable", f"sidecar {target.name} is {runner.state}: `loopctl retry {target}` "
                                                f"relaunches it now")
        await runner.stop(f"restarting (`loopctl restart {target}`)")
        runner.attempts = 0
        runner.start()
        return {"message": f"{target.name}: restarted"}

