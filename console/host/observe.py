"""Reading the host's state as an observer: ask the owner, or read the state directory when no
engine runs. Never mutates anything (no lock taken, database opened immutable)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from console.core.clock import Clock
from console.core.errors import ConfigError, OwnerUnavailable, StateDirError
from console.core.paths import Paths
from console.host.client import NotPermitted, request
from console.host.lease import foreign_holder_error, lease_is_held, may_observe, read_holder
from console.readmodel.snapshot import (
    ENGINE_KIND,
    ENGINE_NAME,
    SNAPSHOT_EVENTS,
    SNAPSHOT_SCHEMA,
    EngineView,
    Snapshot,
    compose,
    events_view,
    host_view,
    things_view,
)
from console.readmodel.tray import CONFIG_FILE, unloadable_config_reason

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TypeAlias

    from console.core.config import LoadedConfig

    Loading: TypeAlias = LoadedConfig | ConfigError | Callable[[], LoadedConfig | ConfigError]

# An engine that holds the lease but has no socket yet is starting: give it this long to answer.
STARTING_GRACE = 3.0


def current_snapshot(paths: Paths, loading: Loading, clock: Clock, *, timeout: float = 5.0) -> Snapshot:
    """The running engine's snapshot, else the state dir's as it was left. `loading` is the loaded config,
    the error the config file gave, or how to load it (then it is loaded only when needed: not when the
    engine answers having loaded the very bytes the file holds now, which at 1,000 loops saves `--once`
    a TOML parse of tens of milliseconds). A running engine is still reported with a config file that
    does not load (it runs the one it started with), with that error as a reason; only the offline
    view, which is built from the file, needs it to load."""

    def resolve() -> LoadedConfig | ConfigError:
        return loading() if callable(loading) else loading

    deadline = time.monotonic() + STARTING_GRACE
    while True:
        holder = read_holder(paths.lock)
        try:
            answer = request(paths.socket, "snapshot", timeout=timeout, schema=SNAPSHOT_SCHEMA)
        except NotPermitted:
            try:
                uid = paths.socket.stat().st_uid
            except OSError:
                raise StateDirError(
                    f"state directory {paths.state_dir} is not accessible as uid {os.getuid()}: run loopctl as "
                    f"its owner, or use your own --state-dir"
                ) from None
            raise foreign_holder_error(paths.lock, uid, holder.pid if holder else None) from None
        if answer is not None:
            if not answer.get("ok"):
                err = answer.get("error") or {}
                raise OwnerUnavailable(f"the engine on {paths.socket} refused: {err.get('message', err)}")
            snap = Snapshot.from_dict(answer["snapshot"]).at(clock.time())
            said = any(r.subject == CONFIG_FILE for r in snap.tray.reasons)  # the engine refused it already
            if said or _unchanged(paths, snap.host.config_digest):
                return snap
            loaded = resolve()
            if isinstance(loaded, ConfigError):
                return snap.with_reasons(unloadable_config_reason(loaded.message, snap.engine.pid))
            return snap
        if not lease_is_held(paths.lock):
            loaded = resolve()
            if isinstance(loaded, ConfigError):
                raise loaded
            return offline_snapshot(paths, loaded, clock)
        if holder is not None and not may_observe(holder.uid):
            raise foreign_holder_error(paths.lock, holder.uid, holder.pid)
        if time.monotonic() >= deadline:
            who = f"engine pid {holder.pid}" if holder else "an engine"
            raise OwnerUnavailable(
                f"{who} holds {paths.lock} but does not answer on {paths.socket}: it may be starting or hung"
            )
        time.sleep(0.05)  # a starting engine binds its socket within milliseconds of taking the lease


def _unchanged(paths: Paths, loaded_digest: str) -> bool:
    """The config file holds the bytes the engine loaded (so it loads): nothing to parse."""
    from console.core.config import config_file_digest  # noqa: PLC0415  (hashing only; tomllib stays unloaded)

    return bool(loaded_digest) and config_file_digest(paths.config_path) == loaded_digest


def offline_snapshot(paths: Paths, loaded: LoadedConfig, clock: Clock) -> Snapshot:
    """The last recorded state, from disk, with the engine reported as not running."""
    # Imported here: sqlite3 and the store load only when no engine answers (`--once` stays fast).
    import sqlite3  # noqa: PLC0415

    from console.core.store import Store, corrupt_error  # noqa: PLC0415
    from console.runs.ledger import SNAPSHOT_RUNS, recent_runs, run_views  # noqa: PLC0415

    store = Store.open_snapshot(paths.database, clock)
    things, events, runs = [], [], []
    last_pid: int | None = None
    clean: bool | None = None
    if store is not None:
        try:
            things = things_view(store.things())
            events = events_view(store.recent_events(SNAPSHOT_EVENTS))
            engine = store.thing(ENGINE_KIND, ENGINE_NAME)
            runs = run_views(recent_runs(store, SNAPSHOT_RUNS))
        except sqlite3.DatabaseError as exc:
            raise corrupt_error(paths.database, exc) from None
        finally:
            store.close()
        if engine is not None:
            pid = engine.detail.get("pid")
            last_pid = pid if isinstance(pid, int) else None
            clean = engine.state == "stopped"
    remote = None
    if loaded.config.control_plane is not None:
        from console.remote.apply import read_view  # noqa: PLC0415

        host = next((t for t in things if t.kind == "host" and t.name == loaded.config.control_plane.host_id), None)
        remote = read_view(paths.state_dir, loaded.config, things, host.state if host else "")
    return compose(
        now=clock.time(),
        host=host_view(paths, loaded),
        engine=EngineView(running=False, source="offline", last_owner_pid=last_pid, last_stop_clean=clean),
        things=things,
        events=events,
        runs=runs,
        remote_config=remote,
    )


def wait_until_released(lock_path: Path, timeout: float = 3.0) -> bool:
    """After an owner hangs up, wait (bounded) until it has released the lease, so what is read
    from disk includes its last records. True when released."""
    deadline = time.monotonic() + timeout
    while lease_is_held(lock_path):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def owner_serving(lock_path: Path, socket_path: Path) -> bool:
    """Whether an engine holds the lease and its socket is there to connect to."""
    return lease_is_held(lock_path) and socket_path.exists()
