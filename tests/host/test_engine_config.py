"""The engine's side of config changes: the staged in-process restart (unchanged sidecars keep running),
and the plugin reconcile wired to the host-status transition provisioning -> online on the bus,
whichever path records it."""

from __future__ import annotations

import asyncio
import hashlib
import sys

from console.core.config import HostConfig, LoadedConfig, LoopConfig, PluginConfig, SidecarConfig
from console.core.fake_clock import FakeClock
from console.core.paths import Paths
from console.core.store import Store
from console.host.engine import Engine
from console.remote.plugins import installed
from tests.conftest import drive, finish_with_clock, free_port, http_server, make_artifact


def make_engine(tmp_path, config: HostConfig) -> tuple[Engine, FakeClock]:
    paths = Paths(state_dir=tmp_path / "state", config_path=tmp_path / "loopctl.toml", config_explicit=False)
    paths.state_dir.mkdir(exist_ok=True)
    clock = FakeClock()
    store = Store.open(paths.database, clock)
    return Engine(paths=paths, loaded=LoadedConfig(config, paths.config_path, True), store=store, clock=clock), clock


def pids(engine: Engine) -> dict[str, int | None]:
    return {v.name: v.pid for v in engine.snapshot().sidecars if v.state == "ready"}


async def test_a_staged_restart_touches_only_what_changed(tmp_path):
    ports = [free_port() for _ in range(3)]
    keep = SidecarConfig(name="keep", command=http_server(ports[0]), port=ports[0])
    change = SidecarConfig(name="change", command=http_server(ports[1]), port=ports[1])
    gone = SidecarConfig(name="gone", command=[sys.executable, "-c", "import time; time.sleep(300)"])
    engine, clock = make_engine(tmp_path, HostConfig(sidecar=[keep, change, gone]))
    await engine.start()
    try:
        await drive(clock, lambda: len(pids(engine)) == 3, what="three sidecars ready")
        before = pids(engine)
        moved = SidecarConfig(name="change", command=http_server(ports[2]), port=ports[2])
        added = SidecarConfig(name="added", command=[sys.executable, "-c", "import time; time.sleep(300)"])
        loop = LoopConfig(id="docs", command=[sys.executable, "-c", "pass"], interval_seconds=3600)
        new = HostConfig(sidecar=[keep, moved, added], loop=[loop])
        await finish_with_clock(clock, engine.reconfigure(new, False))
        await drive(clock, lambda: set(pids(engine)) == {"keep", "change", "added"}, what="the new set ready")
        after = pids(engine)
        assert after["keep"] == before["keep"]  # untouched
        assert after["change"] != before["change"]
        assert [v.port for v in engine.snapshot().sidecars if v.name == "change"] == [ports[2]]
        assert engine.store.thing("sidecar", "gone").state == "stopped"
        assert "removed from the config" in engine.store.thing("sidecar", "gone").reason
        assert [lp.id for lp in engine.snapshot().loops] == ["docs"]
        assert engine.snapshot().host.configured_count == 4
    finally:
        await finish_with_clock(clock, engine.stop())
        engine.store.close()


async def test_plugins_reconcile_when_the_host_comes_online_whichever_path_records_it(tmp_path, artifact_server):
    base, served = artifact_server
    art = make_artifact({"bin/tool": b"#!/bin/sh\n"})
    (served / "tool.tgz").write_bytes(art)
    plugin = PluginConfig(name="tool", version="1.0", source=f"{base}/tool.tgz",
                          artifact_hash=hashlib.sha256(art).hexdigest())
    engine, _clock = make_engine(tmp_path, HostConfig(plugin=[plugin]))
    root = engine.plugins.root
    old = root / "old" / "0.1"
    old.mkdir(parents=True)
    (old / ".loopctl-plugin.json").write_text('{"sha256": "' + "e" * 64 + '"}')
    try:
        store = engine.store
        # Not the heartbeat loop: any writer of the transition (an admin tool, a poll, another engine's
        # record) is a path the reconcile must not depend on.
        store.transition("host", "h_1", "provisioning", "joined")
        assert not engine._background  # provisioning alone reconciles nothing
        store.transition("host", "h_1", "online", "recorded by another path")
        assert engine._background
        await asyncio.wait_for(asyncio.gather(*engine._background), 10)
        assert [(i.name, i.version) for i in installed(root)] == [("tool", "1.0")]
        assert store.thing("plugin", "old").state == "removed"
        # Online -> offline -> online is not provisioning -> online: no second reconcile.
        store.transition("host", "h_1", "offline", "x")
        store.transition("host", "h_1", "online", "y")
        assert not engine._background
    finally:
        if engine._fetcher is not None:
            await engine._fetcher.aclose()
        engine.store.close()


async def test_a_reload_naming_a_plugin_program_that_is_not_there_changes_nothing(tmp_path):
    import pytest

    from console.core.errors import ConfigError

    plugin = PluginConfig(name="tool", version="1.0", source="http://127.0.0.1:9/tool.tgz", artifact_hash="a" * 64)
    engine, _clock = make_engine(tmp_path, HostConfig(plugin=[plugin]))
    try:
        before = engine.loaded
        uses = SidecarConfig(name="t", command=["bin/tool"], plugin="tool")
        with pytest.raises(ConfigError, match=r"sidecar\[0\]\.plugin: tool 1.0 is not installed"):
            await engine.reload_local(LoadedConfig(HostConfig(plugin=[plugin], sidecar=[uses]), before.path, True))
        assert engine.loaded is before and engine.config.sidecar == []
        assert not engine.reload_requested.is_set()
        assert await engine.reload_local(before) == "nothing to change"
    finally:
        engine.store.close()


async def test_a_refused_reload_is_a_reason_in_the_snapshot_until_a_reload_applies(tmp_path):
    engine, _clock = make_engine(tmp_path, HostConfig())
    try:
        before = engine.snapshot()
        engine.refuse_reload("loopctl.toml: invalid TOML")
        refused = engine.snapshot()
        assert refused is not before  # a new version: observers are pushed the change
        reason = next(r for r in refused.tray.reasons if r.code == "config_reload_refused")
        assert reason.level.value == "degraded" and "invalid TOML" in reason.text
        assert refused.tray.state.value == "degraded"
        assert await engine.reload_local(engine.loaded) == "nothing to change"
        assert not any(r.code == "config_reload_refused" for r in engine.snapshot().tray.reasons)
    finally:
        engine.store.close()


def sidecar_processes(engine: Engine) -> list[int]:
    """Live processes carrying this engine's sidecar session prefix (what it started, found by environment)."""
    from console.core.processes import carrying
    from console.sidecars.reclaim import TOKEN_VARIABLE

    prefix = f"{engine.supervisor.prefix}:"
    return [c.pid for c in carrying(TOKEN_VARIABLE, lambda value: value.startswith(prefix))]


async def test_overlapping_reconfigures_are_serialized_and_leak_no_sidecar(tmp_path):
    sleeper = [sys.executable, "-c", "import time; time.sleep(300)"]
    engine, clock = make_engine(tmp_path, HostConfig(sidecar=[SidecarConfig(name="x", command=sleeper)]))
    await engine.start()
    try:
        await drive(clock, lambda: len(pids(engine)) == 1, what="x ready")
        # A SIGHUP reload, a remote apply and a probation expiry at once, each with its own x.
        configs = [HostConfig(sidecar=[SidecarConfig(name="x", command=[*sleeper, str(n)])]) for n in range(3)]
        await finish_with_clock(clock, asyncio.gather(*(engine.reconfigure(c, False) for c in configs)))
        await drive(clock, lambda: len(pids(engine)) == 1, what="the last x ready")
        assert engine.supervisor.runners["x"].cfg == configs[-1].sidecar[0]
    finally:
        await finish_with_clock(clock, engine.stop())
        engine.store.close()
    assert sidecar_processes(engine) == [], "a sidecar outlived the engine's stop"


async def test_stop_stops_sidecars_even_when_stopping_the_loops_fails(tmp_path, caplog):
    sleeper = [sys.executable, "-c", "import time; time.sleep(300)"]
    engine, clock = make_engine(tmp_path, HostConfig(sidecar=[SidecarConfig(name="x", command=sleeper)]))
    await engine.start()
    await drive(clock, lambda: len(pids(engine)) == 1, what="x ready")
    real_stop = engine.loops.stop

    async def failing_stop() -> None:  # an injected fault: the loops' stop raises halfway
        await real_stop()
        raise RuntimeError("injected: the loops failed to stop")

    engine.loops.stop = failing_stop  # type: ignore[method-assign]
    try:
        await finish_with_clock(clock, engine.stop())
    finally:
        engine.store.close()
    assert sidecar_processes(engine) == [], "a failed loop stop skipped the sidecars"
    assert "stopping the loops failed" in caplog.text and "injected" in caplog.text
