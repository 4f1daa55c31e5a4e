"""The Snapshot: the only read model. The TUI, the reports and the socket all render one.

Plain dataclasses with a JSON round-trip; decoding is lenient so an observer and an owner of
different loopctl versions can still talk.
"""

from __future__ import annotations

import json
from dataclasses import field, replace
from typing import TYPE_CHECKING, Any

from console.core.decoding import DecodeError, decode, encode
from console.core.records import View
from console.readmodel.tray import (
    Reason,
    Tray,
    config_reasons,
    control_plane_reasons,
    engine_reasons,
    loop_reasons,
    plugin_reasons,
    remote_config_reasons,
    roll_up,
    sidecar_reasons,
)
from console.remote.records import ApplyRecord, BootRecord, PollRecord, Rollback

if TYPE_CHECKING:  # type-only: `--once` against a running engine must not load sqlite3
    from console.core.config import LoadedConfig
    from console.core.paths import Paths
    from console.core.store import ThingRecord
    from console.core.transitions import Transition

SNAPSHOT_SCHEMA = 1


class HostView(View):
    name: str
    state_dir: str
    config_path: str
    config_present: bool
    configured_count: int


class EngineView(View):
    running: bool
    source: str  # "owner": served by the running engine; "offline": read from the state dir
    pid: int | None = None
    started_at: float | None = None
    version: str = ""
    read_only: bool = False
    last_owner_pid: int | None = None
    last_stop_clean: bool | None = None


class ThingView(View):
    kind: str
    name: str
    state: str
    reason: str
    since: float
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.name}"


class PortHolderView(View):
    pid: int | None
    program: str
    ours: bool  # launched by an earlier loopctl engine (reclaimable), else foreign


class SidecarView(View):
    """One sidecar as the operator sees it. Everything but the output tail is also stored with each
    transition, so a snapshot read from disk shows the last known picture."""

    name: str
    state: str = "stopped"
    reason: str = ""  # failure reason code when failed or in backoff
    reason_text: str = ""
    attempts: int = 0  # failed starts since the sidecar was last stable (see `restarts`)
    max_restarts: int = 5
    next_retry_at: float | None = None
    pid: int | None = None
    started_at: float | None = None
    ready_at: float | None = None
    port: int = 0
    health: str = ""
    command: list[str] = field(default_factory=list)
    holder: PortHolderView | None = None
    last_exit: str = ""
    action: str = ""  # what clears the failure
    last_reclaim: str = ""
    output_tail: list[str] = field(default_factory=list)
    held_by: str = ""  # an operator's stop that holds it stopped (the command), until it is started
    held_at: float | None = None

    @property
    def key(self) -> str:
        return f"sidecar:{self.name}"

    @property
    def restarts(self) -> int:
        """Restarts used since the sidecar was last stable, counting the one a backoff has scheduled.
        A sidecar that gave up failed one start more than it was restarted: 6 failed starts, 5 of 5
        restarts."""
        return min(self.attempts, self.max_restarts)


class LoopView(View):
    id: str
    state: str = "active"  # active | escalated | disabled (paused, transient, finalized come with the control plane)
    reason: str = ""
    enabled: bool = True
    objective: str = ""
    interval_seconds: float = 0.0
    run_timeout_seconds: float = 0.0
    current_run: str | None = None
    next_run_at: float | None = None
    provenance: str = "local"  # local (no runner token), managed (created by this engine), or user (its own token)
    token_expires_at: float | None = None  # the runner token's expiry (never the token)
    last_heartbeat: str = ""  # the classifier's last verdict, e.g. "live" or "transient/server_error"
    last_heartbeat_at: float | None = None
    held_by: str = ""  # a local pause (the command), apart from the control plane's `paused` state
    held_at: float | None = None
    revived_at: float | None = None  # its last revival by proof of possession, from the event log
    revived_jti: str = ""  # the new runner token's jti (never the token)
    revived_expires_at: float | None = None

    @property
    def key(self) -> str:
        return f"loop:{self.id}"


class RunView(View):
    id: str
    loop_id: str
    status: str
    pid: int | None = None
    queued_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    exit_code: int | None = None
    exit_signal: int | None = None
    error_code: str | None = None
    error_text: str | None = None
    stop_reason: str | None = None
    timeout_configured: bool = False
    timeout_fired: bool = False
    effective_timeout_sec: float | None = None
    liveness: str | None = None
    liveness_reason: str | None = None
    next_action: str | None = None
    continuation_attempt: int = 0
    retry_of_run_id: str | None = None
    process_loss_retry_count: int = 0
    last_useful_action_at: float | None = None
    summary: str | None = None

    @property
    def key(self) -> str:
        return f"run:{self.id}"


class ControlPlaneView(View):
    url: str
    host_id: str
    status: str  # as the control plane sees the host: provisioning, online, offline, degraded, failed
    last_heartbeat_at: float | None = None
    last_error: str = ""


class PluginView(View):
    name: str
    version: str
    state: str  # installed | removed | failed
    reason: str = ""


class RemoteConfigView(View):
    """The host's remote config as the operator needs it: what runs, whether it is on probation,
    what was refused or rolled back and why, and how the last poll went."""

    state: str = "none"  # none | probation | active | rejected | rolled_back
    reason: str = ""
    running_etag: str | None = None
    slot: str | None = None
    poll_interval_seconds: float = 300.0
    probation_etag: str | None = None
    probation_started_at: float | None = None
    probation_deadline: float | None = None
    probation_seconds_left: float | None = None  # at the snapshot's generated_at
    bad_etag: str | None = None
    bad_until: float | None = None
    last_rollback: Rollback | None = None
    last_apply: ApplyRecord | None = None
    last_boot: BootRecord | None = None
    last_poll: PollRecord | None = None
    next_poll_at: float | None = None
    host_status: str = ""


class EventView(View):
    id: int
    at: float
    kind: str
    name: str
    previous: str | None
    new: str
    reason: str


class Snapshot(View):
    schema: int
    generated_at: float
    host: HostView
    engine: EngineView
    tray: Tray
    things: list[ThingView] = field(default_factory=list)
    events: list[EventView] = field(default_factory=list)  # newest first
    sidecars: list[SidecarView] = field(default_factory=list)
    loops: list[LoopView] = field(default_factory=list)
    runs: list[RunView] = field(default_factory=list)  # the most recent, newest first
    control_plane: ControlPlaneView | None = None
    remote_config: RemoteConfigView | None = None
    plugins: list[PluginView] = field(default_factory=list)

    def with_reasons(self, *reasons: Reason) -> Snapshot:
        """The same snapshot with more reasons, the tray ranked again."""
        return replace(self, tray=roll_up([*self.tray.reasons, *reasons]))

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = encode(self)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: object) -> Snapshot:
        return decode(cls, data, strict=False)

    @classmethod
    def from_json(cls, text: str) -> Snapshot:
        return cls.from_dict(json.loads(text))


ENGINE_KIND = "engine"
ENGINE_NAME = "main"
SNAPSHOT_EVENTS = 50


def host_view(paths: Paths, loaded: LoadedConfig) -> HostView:
    return HostView(
        name=loaded.config.host_name,
        state_dir=str(paths.state_dir),
        config_path=str(loaded.path),
        config_present=loaded.present,
        configured_count=loaded.config.configured_count,
    )


def things_view(records: list[ThingRecord]) -> list[ThingView]:
    return [ThingView(r.kind, r.name, r.state, r.reason, r.since, r.detail) for r in records]


def events_view(transitions: list[Transition]) -> list[EventView]:
    return [EventView(t.event_id, t.at, t.kind, t.name, t.previous, t.new, t.reason) for t in transitions]


def sidecars_from_things(things: list[ThingView]) -> list[SidecarView]:
    """The last recorded picture of each sidecar, for a snapshot read from disk."""
    views = []
    for thing in things:
        if thing.kind != "sidecar":
            continue
        data = {**thing.detail, "name": thing.name, "state": thing.state}
        try:
            views.append(decode(SidecarView, data, strict=False))
        except DecodeError:
            views.append(SidecarView(name=thing.name, state=thing.state, reason_text=thing.reason))
    return views


def loops_from_things(things: list[ThingView]) -> list[LoopView]:
    return [LoopView(id=t.name, state=t.state, reason=t.reason) for t in things if t.kind == "loop"]


def plugins_from_things(things: list[ThingView]) -> list[PluginView]:
    return [PluginView(t.name, str(t.detail.get("version", "")), t.state, t.reason) for t in things
            if t.kind == "plugin" and t.state != "removed"]


def compose(*, now: float, host: HostView, engine: EngineView, things: list[ThingView],
            events: list[EventView], sidecars: list[SidecarView] | None = None,
            loops: list[LoopView] | None = None, runs: list[RunView] | None = None,
            control_plane: ControlPlaneView | None = None,
            remote_config: RemoteConfigView | None = None) -> Snapshot:
    """Build a snapshot and its tray. One function for the owner and the offline observer."""
    sidecars = sidecars if sidecars is not None else sidecars_from_things(things)
    loops = loops if loops is not None else loops_from_things(things)
    runs = runs or []
    reasons = [
        *engine_reasons(running=engine.running, state_dir=host.state_dir,
                        last_owner_pid=engine.last_owner_pid, last_stop_clean=engine.last_stop_clean),
        *config_reasons(configured_count=host.configured_count, config_path=host.config_path,
                        config_present=host.config_present),
    ]
    if remote_config is not None:
        left = None if remote_config.probation_deadline is None else max(0.0, remote_config.probation_deadline - now)
        remote_config = replace(remote_config, probation_seconds_left=left)
    plugins = plugins_from_things(things)
    if engine.running:  # with no engine, sidecar states are history: the tray says the engine is down
        reasons += sidecar_reasons(sidecars) + loop_reasons(loops, runs) + control_plane_reasons(control_plane)
        reasons += remote_config_reasons(remote_config) + plugin_reasons(plugins)
    return Snapshot(schema=SNAPSHOT_SCHEMA, generated_at=now, host=host, engine=engine,
                    tray=roll_up(reasons), things=things, events=events, sidecars=sidecars, loops=loops, runs=runs,
                    control_plane=control_plane, remote_config=remote_config, plugins=plugins)
