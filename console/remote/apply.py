"""Remote config, applied: boot evaluation, the apply pipeline, probation and rollback.

The apply runs in the order the incidents taught: size -> shape check -> install the pinned
plugins -> full validation (a config naming a plugin not yet installed can apply) -> the inactive
slot and its etag file -> the probation marker -> the atomic pointer flip -> a staged restart of
the components. Probation ends with the first authenticated successful poll after the apply, or
rolls back to the last-known-good slot when its window runs out, also across crashes and boots.

Decisions are in probation.py (pure), files in slots.py, and the poll itself in the control-plane
package; this module is the shell that joins them and records every outcome as a transition.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from console.core.clock import Clock
from console.core.config import HostConfig, RemoteDocument, cross_check, nul_in
from console.core.crashpoints import CrashPoints
from console.core.decode import DecodeError, decode_json
from console.core.records import replace, to_builtins
from console.core.store import Store
from console.core.things import ThingView
from console.core.waiting import cancel_and_wait, sleep_unless
from console.remote.plugin_error import PluginError
from console.remote.plugins import Plugins, missing_programs, resolve
from console.remote.probation import (
    Boot,
    Decision,
    Marker,
    SlotInfo,
    Stage,
    expire,
    on_boot,
    other_slot,
    remember_bad,
    stage,
    window,
)
from console.remote.records import ApplyRecord, BootRecord, PollRecord, Rollback
from console.remote.slots import ControlState, Slots
from console.remote.view import RemoteConfigView

log = logging.getLogger("loopctl.remote_config")

KIND = "remote_config"
NAME = "host"
MAX_DOCUMENT_BYTES = 1024 * 1024
# Outcomes after which the thing says the served document is not what runs.
FLAGGED = ("rejected", "rolled_back", "unproven")

# restart(effective config, code_changed): the engine's staged restart of its components.
Restart = Callable[[HostConfig, bool], Awaitable[None]]


class ApplyError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def parse_document(raw: bytes) -> RemoteDocument:
    """Size and shape: JSON, an object, known keys, the right types. Errors name the key."""
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise ApplyError("document_too_large", f"{len(raw)} bytes, over the {MAX_DOCUMENT_BYTES}-byte cap")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApplyError("config_invalid", f"not UTF-8 (byte {exc.start})") from None
    try:
        document = decode_json(RemoteDocument, raw)
    except DecodeError as exc:
        if exc.expected == "JSON":
            raise ApplyError("config_invalid", f"invalid JSON: {exc.got}") from None
        raise ApplyError("config_invalid", str(exc)) from None
    problem = nul_in(to_builtins(document))  # no command, path or environment can carry a NUL
    if problem:
        raise ApplyError("config_invalid", problem)
    return document


def effective(local: HostConfig, document: RemoteDocument | None, plugins_root: Path) -> HostConfig:
    """On a joined host the active document replaces the sidecar, loop and plugin sections."""
    config = local if document is None else replace(local, sidecar=document.sidecar, loop=document.loop,
                                                    plugin=document.plugin)
    return resolve(config, plugins_root)


def validate(config: HostConfig, plugins_root: Path) -> None:
    """Full validation, after the plugins are installed."""
    problem = cross_check(config) or missing_programs(config, plugins_root)
    if problem:
        raise ApplyError("config_invalid", problem)


def read_slot(slots: Slots, name: str | None) -> tuple[SlotInfo, RemoteDocument | None] | None:
    """A slot and its document; a slot whose bytes do not match its etag file, or do not parse, is not intact."""
    found = slots.read(name) if name is not None else None
    if found is None:
        return None
    info, raw = found
    if not info.intact:
        return info, None
    try:
        return info, parse_document(raw)
    except ApplyError:
        return replace(info, intact=False), None


def interval(local: HostConfig, document: RemoteDocument | None) -> float:
    """How often to poll: the running document says, else the join's value, else the default."""
    if document is not None:
        return document.poll_interval_seconds
    return local.control_plane.poll_interval_seconds if local.control_plane is not None else 300.0


def _pins(document: RemoteDocument | None) -> set[tuple[str, str, str]]:
    return {(p.name, p.version, p.sha256) for p in document.plugin} if document else set()


class RemoteConfig:
    def __init__(self, state_dir: Path, local: HostConfig, *, plugins: Plugins, store: Store, clock: Clock,
                 crash: CrashPoints | None = None, on_change: Callable[[], None] = lambda: None) -> None:
        self.slots = Slots(state_dir / "config")
        self.on_change = on_change  # what changes here without a transition (a poll) bumps the snapshot
        self.local = local
        self.plugins = plugins
        self.store = store
        self.clock = clock
        self.crash = crash or CrashPoints(state_dir, env={})
        self.state = self.slots.load_state()
        self.document: RemoteDocument | None = None
        self.running_etag: str | None = None
        self.active_slot: str | None = None
        self.restart: Restart | None = None
        self.next_poll_at: float | None = None
        self._wake: asyncio.Event | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._lock: asyncio.Lock | None = None

    # -- reading the slots ------------------------------------------------------------------------

    def _slot(self, name: str | None) -> tuple[SlotInfo, RemoteDocument | None] | None:
        return read_slot(self.slots, name)

    def _pair(self) -> tuple[tuple[SlotInfo, RemoteDocument | None] | None,
                             tuple[SlotInfo, RemoteDocument | None] | None]:
        active_name = self.slots.active_name()
        return self._slot(active_name), self._slot(other_slot(active_name)) if active_name else None

    def _load_active(self) -> None:
        active = self._slot(self.slots.active_name())
        if active is None or active[1] is None:
            self.document, self.running_etag, self.active_slot = None, None, None
        else:
            self.document, self.running_etag, self.active_slot = active[1], active[0].etag, active[0].name

    @property
    def poll_interval(self) -> float:
        return interval(self.local, self.document)

    def effective(self) -> HostConfig:
        return effective(self.local, self.document, self.plugins.root)

    # -- boot: before any component starts -------------------------------------------------------------

    def boot(self) -> HostConfig:
        """Evaluate what the last engine left (orphan marker, expired probation, torn slot), act on it,
        and return the effective config the components start with."""
        self.plugins.clear_staging()
        outcomes: list[Decision] = []
        for _ in range(2):  # an orphan is discarded first; then the active slot itself is judged
            active, other = self._pair()
            decision = on_boot(active[0] if active else None, other[0] if other else None, self.state.marker,
                               self.clock.time())
            outcomes.append(decision)
            if decision.outcome is Boot.CLEARED_ORPHAN:
                self.state = replace(self.state, marker=None)
                continue
            if decision.outcome in (Boot.ROLLED_BACK, Boot.ROLLBACK_NO_TARGET):
                self._roll_back(decision, active[0] if active else None)
            break
        self._load_active()
        final = next((d for d in reversed(outcomes) if d.outcome is not Boot.NONE), outcomes[-1])
        detail = "; ".join(d.detail for d in outcomes if d.detail)
        marker = self.state.marker
        if marker is not None and (self.state.last_apply is None or self.state.last_apply.etag != marker.etag):
            # Killed between the flip and recording it: the flip is what counts.
            self.state = replace(self.state, last_apply=ApplyRecord(marker.etag, Stage.APPLIED.value,
                                                                    marker.staged_at, "applied before a restart"))
        self.state = replace(self.state, last_boot=BootRecord(final.outcome.value, self.clock.time(), detail))
        self.slots.save_state(self.state)
        if final.outcome is Boot.CLEARED_ORPHAN:
            self._record("active" if self.running_etag else "none", f"boot: {detail}")
        elif marker is not None:
            self._record("probation", f"{marker.etag} on probation (continues after a restart)")
        log.info("remote config at boot: %s%s", final.outcome.value, f" ({detail})" if detail else "")
        return self.effective()

    def _roll_back(self, decision: Decision, active: SlotInfo | None) -> None:
        """Flip to the target (when there is one), remember the bad etag, record why. Files only."""
        now = self.clock.time()
        bad_etag = active.etag if active is not None else ""
        target_etag = None
        if decision.flip_to is not None:
            target = self.slots.read(decision.flip_to)
            target_etag = target[0].etag if target else None
            self.slots.flip(decision.flip_to)
        bad = self.state.bad
        if decision.outcome is Boot.ROLLED_BACK and bad_etag:
            bad = remember_bad(bad_etag, bad, now)  # never the active one: we just flipped away from it
        rollback = Rollback(bad_etag or "(unreadable)", decision.reason, now, decision.detail,
                            decision.outcome.value, target_etag)
        self.state = replace(self.state, marker=None, bad=bad, last_rollback=rollback)
        self.slots.save_state(self.state)
        if decision.outcome is Boot.ROLLED_BACK:
            self._record("rolled_back", f"{rollback.etag} rolled back to {target_etag} ({decision.reason})",
                         {"etag": rollback.etag, "reason": decision.reason, "to": target_etag})
        else:
            self._record("unproven", f"{rollback.etag}: {decision.reason}, nothing to roll back to",
                         {"etag": rollback.etag, "reason": decision.reason})

    def _record(self, state: str, reason: str, detail: dict[str, object] | None = None) -> None:
        self.store.transition(KIND, NAME, state, reason, detail or {})

    # -- running: probation watch ------------------------------------------------------------------------

    async def start(self) -> None:
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._watcher = asyncio.create_task(self._watch_probation(), name="probation")

    @property
    def lock(self) -> asyncio.Lock | None:
        """Held by every apply, probation expiry and plugin reconcile (None before `start`). Whoever
        also takes the engine's reconfigure lock takes this one first, as an apply's restart does."""
        return self._lock

    async def stop(self) -> None:
        if self._watcher is not None:
            await cancel_and_wait(self._watcher)
            self._watcher = None

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def _watch_probation(self) -> None:
        assert self._wake is not None
        while True:
            self._wake.clear()
            marker = self.state.marker
            woken = asyncio.ensure_future(self._wake.wait())
            try:
                if marker is None:
                    await woken
                    continue
                left = marker.deadline - self.clock.time()
                if left > 0 and not await sleep_unless(self.clock, left, woken):
                    continue
            finally:
                woken.cancel()
            if self.state.marker == marker:
                await self._expire(marker)

    async def _expire(self, marker: Marker) -> None:
        assert self._lock is not None
        async with self._lock:
            if self.state.marker != marker:
                return
            active, other = self._pair()
            decision = expire(active[0] if active else None, other[0] if other else None, marker)
            log.warning("remote config %s: %s", marker.etag, decision.detail)
            self._roll_back(decision, active[0] if active else None)
            if decision.outcome is not Boot.ROLLED_BACK:
                return  # nothing to go back to: no restart
            before = self.document
            self._load_active()
            await self._restart(_pins(before) != _pins(self.document))
            await self._prune()

    # -- polls ---------------------------------------------------------------------------------------------

    def record_poll(self, record: PollRecord, next_poll_at: float | None = None) -> None:
        self.state = replace(self.state, last_poll=record)
        self.next_poll_at = next_poll_at
        self.slots.save_state(self.state)
        self.on_change()  # no transition says so: a cached snapshot would show the poll before

    def schedule(self, next_poll_at: float) -> None:
        self.next_poll_at = next_poll_at
        self.on_change()

    async def poll_succeeded(self) -> None:
        """An authenticated 200 or 304: probation (if any) is over, the running document proved good."""
        assert self._lock is not None
        async with self._lock:
            marker = self.state.marker
            if marker is not None and marker.etag == self.running_etag:
                self.state = replace(self.state, marker=None)
                self.slots.save_state(self.state)
                self._record("active", f"{marker.etag} passed probation (authenticated successful poll)",
                             {"etag": marker.etag})
                self._poke()
                await self._prune()

    async def not_modified(self) -> None:
        """The control plane serves what runs: a flag about another document no longer applies."""
        thing = self.store.thing(KIND, NAME)
        if thing is not None and thing.state in FLAGGED and self.state.marker is None:
            self._record("active", f"the control plane serves the running document {self.running_etag} again")

    async def offer(self, etag: str | None, raw: bytes) -> str:
        """A 200 with a document: apply it, or say why not. Returns the stage result or apply error code."""
        assert self._lock is not None
        async with self._lock:
            if not etag:
                return self._refuse("", "config_invalid", "the control plane sent no ETag (a strong ETag is required)",
                                    remember=False)
            decision = stage(etag, self.running_etag, self.state.bad, self.clock.time())
            if decision is not Stage.APPLIED:
                self._note(ApplyRecord(etag, decision.value, self.clock.time(),
                                       "same document as the running one" if decision is Stage.NOOP_SAME_ETAG
                                       else "remembered as bad; not re-applied before its backoff ends"))
                if decision is Stage.NOOP_SAME_ETAG:
                    await self.not_modified()
                return decision.value
            return await self._apply(etag, raw)

    def refuse(self, etag: str | None, code: str, detail: str) -> str:
        """A document that never reached the pipeline (too large on the wire, undecodable)."""
        return self._refuse(etag or "", code, detail, remember=bool(etag) and etag != self.running_etag)

    def _refuse(self, etag: str, code: str, detail: str, *, remember: bool) -> str:
        now = self.clock.time()
        if remember:
            self.state = replace(self.state, bad=remember_bad(etag, self.state.bad, now))
        self._note(ApplyRecord(etag or "(none)", code, now, detail))
        log.warning("remote config %s refused: %s: %s", etag or "(no etag)", code, detail)
        self._record("rejected", f"{etag or '(no etag)'} refused ({code}): {detail}", {"etag": etag, "code": code})
        return code

    def _note(self, record: ApplyRecord) -> None:
        self.state = replace(self.state, last_apply=record)
        self.slots.save_state(self.state)

    async def _apply(self, etag: str, raw: bytes) -> str:
        now = self.clock.time()
        try:
            document = parse_document(raw)
            self.crash("after_shape_check")
            try:
                await self.plugins.install_declared(document.plugin)
            except PluginError as exc:
                raise ApplyError(exc.code, exc.message) from None
            self.crash("after_plugin_install")
            candidate = effective(self.local, document, self.plugins.root)
            validate(candidate, self.plugins.root)
            target = other_slot(self.active_slot)
            self.slots.write_document(target, raw)
            self.crash("after_slot_write")
            self.slots.write_etag(target, etag, raw)
            self.crash("after_etag_write")
            marker = Marker(target, etag, now, now + window(document.poll_interval_seconds), self.active_slot,
                            self.running_etag)
            self.state = replace(self.state, marker=marker)
            self.slots.save_state(self.state)
            self.crash("after_marker_write")
            self.slots.flip(target)
            self.crash("after_flip")
        except ApplyError as exc:
            return self._refuse(etag, exc.code, exc.message, remember=True)
        except OSError as exc:
            # Our disk, not the document: nothing is remembered as bad; the next poll tries again.
            return self._refuse(etag, "apply_io_error", f"{exc.strerror or exc} ({exc.filename or 'state dir'})",
                                remember=False)
        before = self.document
        self.document, self.running_etag, self.active_slot = document, etag, target
        record = ApplyRecord(etag, Stage.APPLIED.value, now, f"slot {target}; on probation")
        self.state = replace(self.state, last_apply=record)
        self.slots.save_state(self.state)
        self._record("probation", f"applied {etag} (slot {target}); on probation", {"etag": etag, "slot": target})
        self._poke()
        await self._restart(_pins(before) != _pins(document))
        await self._prune(keep=before)
        self.crash("during_probation")
        return Stage.APPLIED.value

    async def _restart(self, code_changed: bool) -> None:
        if self.restart is not None:
            await self.restart(self.effective(), code_changed)

    async def _prune(self, keep: RemoteDocument | None = None) -> None:
        """Remove plugins no document still needs: during probation the last-known-good's stay."""
        if self.document is None:
            return
        if keep is None and self.state.marker is not None:
            previous = self._slot(self.state.marker.previous_slot)
            keep = previous[1] if previous else None
        try:
            await self.plugins.reconcile(self.document.plugin, keep=keep.plugin if keep else ())
        except PluginError as exc:
            log.warning("plugin reconcile: %s", exc.message)

    async def reconcile(self) -> None:
        """Declared vs installed, for the host-status transition provisioning -> online."""
        if self._lock is None:
            return
        async with self._lock:
            await self._prune()

    # -- the view -------------------------------------------------------------------------------------------

    def view(self, host_status: str = "") -> RemoteConfigView:
        thing = self.store.thing(KIND, NAME)
        return remote_view(self.state, running_etag=self.running_etag, slot=self.active_slot,
                           poll_interval=self.poll_interval, host_status=host_status, next_poll_at=self.next_poll_at,
                           thing=ThingView(KIND, NAME, thing.state, thing.reason, thing.since) if thing else None)


def remote_view(state: ControlState, *, running_etag: str | None, slot: str | None, poll_interval: float,
                thing: ThingView | None, host_status: str, next_poll_at: float | None) -> RemoteConfigView:
    marker = state.marker
    return RemoteConfigView(
        state=thing.state if thing else ("active" if running_etag else "none"),
        reason=thing.reason if thing else "",
        running_etag=running_etag, slot=slot, poll_interval_seconds=poll_interval,
        probation_etag=marker.etag if marker else None,
        probation_started_at=marker.staged_at if marker else None,
        probation_deadline=marker.deadline if marker else None,
        bad_etag=state.bad.etag if state.bad else None, bad_until=state.bad.until if state.bad else None,
        last_rollback=state.last_rollback, last_apply=state.last_apply, last_boot=state.last_boot,
        last_poll=state.last_poll, next_poll_at=next_poll_at, host_status=host_status,
    )


def read_view(state_dir: Path, local: HostConfig, things: list[ThingView], host_status: str) -> RemoteConfigView:
    """The last recorded picture, from disk, without writing anything (for `--once` with no engine)."""
    slots = Slots(state_dir / "config")
    name = slots.active_name()
    active = read_slot(slots, name)
    document = active[1] if active is not None else None
    etag = active[0].etag if active is not None and document is not None else None
    thing = next((t for t in things if t.kind == KIND and t.name == NAME), None)
    return remote_view(slots.load_state(), running_etag=etag, slot=name if etag else None,
                       poll_interval=interval(local, document), thing=thing, host_status=host_status,
                       next_poll_at=None)
