import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from console.core.errors import StoreError
from console.core.fake_clock import FakeClock
from console.core.store import SCHEMA_VERSION, Store
from console.core.transitions import Transition


def files(directory):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


@pytest.fixture
def store(tmp_path):
    s = Store.open(tmp_path / "loopctl.db", FakeClock())
    yield s
    s.close()


def test_fresh_database_is_migrated_in_wal_mode_with_full_sync(store, tmp_path):
    conn = store._conn
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_transition_records_previous_new_reason_and_appends_an_event(store):
    first = store.transition("sidecar", "web", "starting", "launch")
    assert first is not None and first.previous is None and first.new == "starting"
    store.clock.advance(5)
    second = store.transition("sidecar", "web", "ready", "health check passed", {"pid": 7})
    assert second is not None and (second.previous, second.new) == ("starting", "ready")
    assert store.thing("sidecar", "web").state == "ready"
    assert store.thing("sidecar", "web").detail == {"pid": 7}
    assert [(e.previous, e.new, e.reason) for e in store.recent_events()] == [
        ("starting", "ready", "health check passed"), (None, "starting", "launch")]


def test_same_state_and_reason_is_not_a_transition(store):
    store.transition("loop", "a", "active", "heartbeat ok")
    assert store.transition("loop", "a", "active", "heartbeat ok") is None
    assert len(store.recent_events()) == 1


def test_a_new_reason_in_the_same_state_is_recorded_and_keeps_since(store):
    store.transition("sidecar", "web", "failed", "crash_loop")
    since = store.thing("sidecar", "web").since
    store.clock.advance(10)
    t = store.transition("sidecar", "web", "failed", "port_conflict")
    assert t is not None and t.previous == "failed"
    assert store.thing("sidecar", "web").since == since


def test_subscriber_fires_whichever_code_path_performs_the_transition(store):
    """The workspace bug: an effect wired to one branch never ran because another branch performed
    the same transition first. Effects subscribe to the transition itself."""
    fired: list[Transition] = []
    store.bus.subscribe(fired.append, kind="host", from_="provisioning", to="online")

    def first_heartbeat_path(name: str) -> None:  # how the heartbeat loop flips the host
        store.transition("host", name, "online", "first heartbeat accepted")

    def boot_recovery_path(name: str) -> None:  # a different branch reaching the same state
        store.transition("host", name, "online", "control plane reports online at boot", {"source": "boot"})

    store.transition("host", "h1", "provisioning", "joined")
    store.transition("host", "h2", "provisioning", "joined")
    first_heartbeat_path("h1")
    boot_recovery_path("h2")
    store.transition("host", "h3", "online", "created online")  # no provisioning before: not a match
    store.transition("host", "h1", "degraded", "heartbeat late")  # other target state: not a match
    assert [(t.name, t.reason) for t in fired] == [
        ("h1", "first heartbeat accepted"), ("h2", "control plane reports online at boot")]


def test_a_failing_subscriber_neither_undoes_the_transition_nor_starves_others(store, caplog):
    seen = []

    def broken(_t):
        raise RuntimeError("subscriber bug")

    store.bus.subscribe(broken)
    store.bus.subscribe(seen.append)
    t = store.transition("sidecar", "web", "ready", "ok")
    assert seen == [t]
    assert store.thing("sidecar", "web").state == "ready"
    assert "subscriber bug" in caplog.text


def test_unsubscribe_stops_delivery(store):
    seen = []
    unsubscribe = store.bus.subscribe(seen.append)
    unsubscribe()
    store.transition("sidecar", "web", "ready", "ok")
    assert seen == []


def test_reopen_keeps_data_and_does_not_migrate_again(tmp_path):
    path = tmp_path / "loopctl.db"
    s = Store.open(path, FakeClock())
    s.transition("sidecar", "web", "ready", "ok")
    s.close()
    again = Store.open(path, FakeClock())
    assert again.thing("sidecar", "web").state == "ready"
    again.close()


def test_a_newer_schema_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "loopctl.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    conn.close()
    before = files(tmp_path)
    with pytest.raises(StoreError, match=r"newer than this loopctl understands.*upgrade loopctl"):
        Store.open(path, FakeClock())
    assert files(tmp_path) == before


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_corrupt_database_is_reported_and_kept(tmp_path, damage):
    path = tmp_path / "loopctl.db"
    if damage == "garbage":
        path.write_bytes(b"this is not sqlite" * 100)
    else:
        s = Store.open(path, FakeClock())
        for i in range(300):
            s.transition("sidecar", f"s{i}", "ready", "x" * 200)
        s.close()
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    before = files(tmp_path)
    with pytest.raises(StoreError) as info:
        Store.open(path, FakeClock())
    assert "corrupt" in info.value.message and "left untouched" in info.value.message
    assert "\n" not in info.value.message
    assert files(tmp_path) == before  # nothing deleted, nothing rewritten


def test_transitions_survive_a_killed_writer_and_the_offline_reader_sees_them_without_mutating(tmp_path):
    """An engine SIGKILLed before it checkpoints leaves its last writes in the WAL. The observer's
    read-only open must see them (immutable=1 would not) and must not change any byte on disk."""
    path = tmp_path / "loopctl.db"
    code = textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        from console.core.clock import SystemClock
        from console.core.store import Store
        s = Store.open(Path({str(path)!r}), SystemClock())
        for i in range(20):
            s.transition("sidecar", "web", "ready" if i % 2 else "starting", f"step {{i}}")
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", code], check=False)
    assert proc.returncode == -signal.SIGKILL
    assert (tmp_path / "loopctl.db-wal").exists()
    before = {k: v for k, v in files(tmp_path).items() if not k.endswith("-shm")}
    names_before = sorted(os.listdir(tmp_path))
    reader = Store.open_snapshot(path, FakeClock())
    assert reader is not None
    assert reader.thing("sidecar", "web").reason == "step 19"
    assert len(reader.recent_events(100)) == 20
    reader.close()
    assert sorted(os.listdir(tmp_path)) == names_before
    assert {k: v for k, v in files(tmp_path).items() if not k.endswith("-shm")} == before


def test_offline_reader_of_a_cleanly_closed_database_creates_no_files(tmp_path):
    path = tmp_path / "loopctl.db"
    s = Store.open(path, FakeClock())
    s.transition("sidecar", "web", "ready", "ok")
    s.close()
    before = files(tmp_path)
    reader = Store.open_snapshot(path, FakeClock())
    assert reader is not None and reader.thing("sidecar", "web").state == "ready"
    reader.close()
    assert files(tmp_path) == before
    assert Store.open_snapshot(tmp_path / "absent.db", FakeClock()) is None


def test_the_offline_reader_cannot_write(tmp_path):
    s = Store.open(tmp_path / "loopctl.db", FakeClock())
    s.close()
    reader = Store.open_snapshot(tmp_path / "loopctl.db", FakeClock())
    with pytest.raises(StoreError, match="read-only"):
        reader.transition("sidecar", "web", "ready", "ok")
    reader.close()
