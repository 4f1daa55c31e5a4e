import os

import pytest

from console.core.config import HostConfig, LoadedConfig
from console.core.errors import LeaseError, OwnerUnavailable, StateDirError, StoreError
from console.core.fake_clock import FakeClock
from console.core.paths import resolve_paths
from console.core.store import Store
from console.host import observe
from console.host.lease import Holder, Lease
from console.readmodel.tray import Level
from tests.conftest import NOBODY, as_user, requires_root


def setup(base):
    paths = resolve_paths(str(base / "state"), None, {}, base)
    return paths, LoadedConfig(HostConfig(), paths.config_path, False)


def test_a_host_that_never_ran_an_engine_is_down_and_nothing_is_created(tmp_path):
    paths, loaded = setup(tmp_path)
    snap = observe.current_snapshot(paths, loaded, FakeClock())
    assert snap.tray.state is Level.DOWN and snap.engine.source == "offline"
    assert "no engine has run here yet" in snap.tray.reasons[0].text
    assert not paths.state_dir.exists()


def test_offline_snapshot_reports_how_the_last_engine_ended(tmp_path):
    paths, loaded = setup(tmp_path)
    paths.state_dir.mkdir()
    store = Store.open(paths.database, FakeClock())
    store.transition("engine", "main", "running", "engine started (pid 77)", {"pid": 77})
    store.transition("sidecar", "web", "failed", "port_conflict")
    store.close()
    snap = observe.offline_snapshot(paths, loaded, FakeClock())
    assert snap.engine.last_owner_pid == 77 and snap.engine.last_stop_clean is False
    assert "pid 77 ended without stopping" in snap.tray.reasons[0].text
    assert {t.key: t.state for t in snap.things} == {"engine:main": "running"}  # sidecars: their own section
    assert [(s.name, s.state) for s in snap.sidecars] == [("web", "failed")]


def test_a_lease_held_without_a_socket_is_unknown_not_down(tmp_path, monkeypatch):
    """An engine that holds the lease but does not answer may be starting or hung: UNKNOWN (3)."""
    paths, loaded = setup(tmp_path)
    paths.state_dir.mkdir()
    monkeypatch.setattr(observe, "STARTING_GRACE", 0.2)
    lease = Lease.try_acquire(paths.lock)
    lease.record_holder(Holder(os.getpid(), os.getuid(), 1.0, "1"))
    try:
        with pytest.raises(OwnerUnavailable, match=f"engine pid {os.getpid()} holds .* does not answer") as info:
            observe.current_snapshot(paths, loaded, FakeClock())
        assert info.value.exit_code == 3
    finally:
        lease.release()


def test_a_corrupt_database_with_no_engine_is_reported_and_kept(tmp_path):
    paths, loaded = setup(tmp_path)
    paths.state_dir.mkdir()
    paths.database.write_bytes(b"\x00garbage" * 512)
    with pytest.raises(StoreError, match="corrupt"):
        observe.current_snapshot(paths, loaded, FakeClock())
    assert paths.database.read_bytes() == b"\x00garbage" * 512


@requires_root
def test_another_users_private_state_dir_is_a_clear_error(shared_dir):
    paths, loaded = setup(shared_dir)
    paths.state_dir.mkdir(mode=0o700)
    (paths.state_dir / "engine.sock").touch()
    answer = as_user(NOBODY, lambda: observe.current_snapshot(paths, loaded, FakeClock()))
    assert answer.startswith("StateDirError") and "not accessible as uid 65534" in answer


@requires_root
def test_another_users_engine_is_named(shared_dir):
    import socket as sk

    paths, loaded = setup(shared_dir)
    paths.state_dir.mkdir(mode=0o755)
    listener = sk.socket(sk.AF_UNIX, sk.SOCK_STREAM)
    listener.bind(str(paths.socket))
    listener.listen()
    os.chmod(paths.socket, 0o600)
    lease = Lease.try_acquire(paths.lock)
    lease.record_holder(Holder(os.getpid(), 0, 1.0, "1"))
    try:
        answer = as_user(NOBODY, lambda: observe.current_snapshot(paths, loaded, FakeClock()))
    finally:
        lease.release()
        listener.close()
    assert answer.startswith("LeaseError") and "as uid 0 (root)" in answer


def test_error_classes_map_to_the_documented_exit_codes():
    assert StateDirError("x").exit_code == 2 and LeaseError("x").exit_code == 2
    assert StoreError("x").exit_code == 2 and OwnerUnavailable("x").exit_code == 3


async def test_the_config_is_parsed_only_when_it_is_not_what_the_engine_loaded(shared_dir):
    """`--once` parsed the whole TOML config on every call only to see that it loads (31 ms at 1,000
    loops): now only when the file's bytes are not those the answering engine loaded."""
    import asyncio

    from console.core.config import load_config
    from console.host.engine import Engine
    from console.host.server import SocketServer

    config = shared_dir / "loopctl.toml"
    config.write_text('[host]\nname = "edge-1"\n')
    paths = resolve_paths(str(shared_dir / "s"), str(config), {}, shared_dir)
    paths.state_dir.mkdir()
    store = Store.open(paths.database, FakeClock())
    engine = Engine(paths=paths, loaded=load_config(paths), store=store, clock=store.clock, pid=4242)
    await engine.start()
    server = SocketServer(paths.socket, engine)
    await server.start()
    parses: list[int] = []

    def load():
        parses.append(1)
        try:
            return load_config(paths)
        except observe.ConfigError as exc:
            return exc

    async def once():
        return await asyncio.to_thread(observe.current_snapshot, paths, load, FakeClock())

    try:
        snap = await once()
        assert parses == [] and snap.host.name == "edge-1" and snap.host.config_digest
        config.write_text('[host]\nname = "edge-2"\n')  # edited, not reloaded: parsed, and it loads
        snap = await once()
        assert parses == [1] and not [r for r in snap.tray.reasons if r.subject == "config:file"]
        config.write_text('[host]\nnmae = "edge-2"\n')  # edited wrong: parsed, and said
        snap = await once()
        assert parses == [1, 1]
        assert any("nmae: unknown key" in r.text for r in snap.tray.reasons)
    finally:
        await server.close()
        await engine.stop()
        store.close()
