"""The Snapshot: the only read model. The TUI, the reports and the socket all render one.

Plain records (msgspec Structs) with a JSON round-trip; decoding is lenient (unknown keys are
ignored) so an observer and an owner of different loopctl versions can still talk. Each concept
defines its own view (sidecars.view, runs.view, remote.view, controlplane.view); the snapshot
composes them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from console.controlplane.view import ControlPlaneView
from console.core.decode import DecodeError, convert, decode_json, encode_json
from console.core.records import View, field, replace
from console.core.tables import records_of, table_of
from console.core.things import ThingView
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
from console.remote.view import PluginView, RemoteConfigView
from console.runs.view import LoopView, RunView
from console.sidecars.view import PortHolderView, SidecarView

if TYPE_CHECKING:  # type-only: `--once` against a running engine must not load sqlite3
    from console.core.config import LoadedConfig
    from console.core.paths import Paths
    from console.core.store import ThingRecord
    from console.core.transitions import Transition

# The faces import every view from here (the read model), never from the concept that defines it.
__all__ = [
    "ApplyRecord",
    "BootRecord",
    "ControlPlaneView",
    "EngineView",
    "EventView",
    "HostView",
    "LoopView",
    "PluginView",
    "PollRecord",
    "PortHolderView",
    "RemoteConfigView",
    "Rollback",
    "RunView",
    "SidecarView",
    "Snapshot",
    "ThingView",
    "compose",
]

# 2: each list of records (things, events, sidecars, loops, runs, plugins) travels as a table
# (console.core.tables); a decoder still reads schema 1's lists of objects.
SNAPSHOT_SCHEMA = 2


class HostView(View, frozen=True):
    name: str
    state_dir: str
    config_path: str
    config_present: bool
    configured_count: int
    config_digest: str = ""  # of the file the engine loaded (LoadedConfig.digest)


class EngineView(View, frozen=True):
    running: bool
    source: str  # "owner": served by the running engine; "offline": read from the state dir
    pid: int | None = None
    started_at: float | None = None
    version: str = ""
    read_only: bool = False
    last_owner_pid: int | None = None
    last_stop_clean: bool | None = None


class EventView(View, frozen=True):
    id: int
    at: float
    kind: str
    name: str
    previous: str | None
    new: str
    reason: str


class Snapshot(View, frozen=True):
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

    def at(self, now: float) -> Snapshot:
        """The same facts as of `now`: an owner encodes a snapshot once per version, so on a quiet host
        it can be minutes old when a face reads it; what depends on time is worked out again from the
        absolute times it carries (the faces' countdowns and `--once` read this, never a stale left)."""
        rc = self.remote_config
        if rc is not None and rc.probation_deadline is not None:
            rc = replace(rc, probation_seconds_left=max(0.0, rc.probation_deadline - now))
        return replace(self, generated_at=now, remote_config=rc)

    def to_dict(self) -> dict[str, Any]:
        """The wire form as plain data (what `from_dict` reads)."""
        data: dict[str, Any] = decode_json(dict, self.to_json())  # its rows lists, as a reader parses them
        return data

    def to_json(self) -> bytes:
        """The wire form: the record lists as tables, a thousand loops' keys written once."""
        return encode_json(self._wire())

    def to_schema1_json(self) -> bytes:
        """Schema 1's wire form, lists of objects, for a client that reads no later one (a loopctl
        from before tables: consoles and hosts of a fleet are upgraded one by one)."""
        return encode_json(replace(self, schema=1))

    def _wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {name: getattr(self, name) for name in self.__struct_fields__}
        for name, cls in _TABLED.items():
            wire[name] = table_of(cls, wire[name])
        return wire

    @classmethod
    def from_dict(cls, data: object) -> Snapshot:
        if isinstance(data, dict) and any(isinstance(data.get(name), dict) for name in _TABLED):
            data = {**data, **{name: records_of(data[name], path=name) for name in _TABLED if name in data}}
        return convert(cls, data)

    @classmethod
    def from_json(cls, text: bytes | str) -> Snapshot:
        return cls.from_dict(decode_json(dict, text))


# The snapshot's lists of records, each sent as a table.
_TABLED: dict[str, type[View]] = {"things": ThingView, "events": EventView, "sidecars": SidecarView,
                                  "loops": LoopView, "runs": RunView, "plugins": PluginView}


ENGINE_KIND = "engine"
TYPED_KINDS = ("sidecar", "loop")  # things a snapshot carries as SidecarView and LoopView
ENGINE_NAME = "main"
SNAPSHOT_EVENTS = 50


def host_view(paths: Paths, loaded: LoadedConfig) -> HostView:
    return HostView(
        name=loaded.config.host_name,
        state_dir=str(paths.state_dir),
        config_path=str(loaded.path),
        config_present=loaded.present,
        configured_count=loaded.config.configured_count,
        config_digest=loaded.digest,
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
            views.append(convert(SidecarView, data))
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
    # sidecars and loops are in their typed sections: never twice, whether an owner or the disk told them
    things = [t for t in things if t.kind not in TYPED_KINDS]
    return Snapshot(schema=SNAPSHOT_SCHEMA, generated_at=now, host=host, engine=engine,
                    tray=roll_up(reasons), things=things, events=events, sidecars=sidecars, loops=loops, runs=runs,
                    control_plane=control_plane, remote_config=remote_config, plugins=plugins)
