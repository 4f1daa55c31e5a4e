"""While the state moves faster than a snapshot can be built (1,000 loops starting or firing), the socket
answers from the latest build and watchers get the latest version at most once per build spacing,
never a queue of the versions in between. Real socket, a real engine of 1,000 loops (not started: their
store rows are made as the scheduler makes them)."""

from __future__ import annotations

import asyncio
import time

import pytest

from console.core.actions import ActionError
from console.core.config import HostConfig, LoadedConfig, LoopConfig
from console.core.fake_clock import FakeClock
from console.core.paths import resolve_paths
from console.core.store import Store
from console.host.engine import MAX_BUILD_SPACING, Engine
from console.host.server import SocketServer
from console.host.watch import arequest, watch
from console.readmodel.snapshot import Snapshot

LOOPS = 1000


@pytest.fixture
async def busy(shared_dir):
    paths = resolve_paths(str(shared_dir / "s"), None, {}, shared_dir)
    paths.state_dir.mkdir()
    store = Store.open(paths.database, FakeClock())
    config = HostConfig(loop=[LoopConfig(id=f"l{n}", command=["true"]) for n in range(LOOPS)])
    engine = Engine(paths=paths, loaded=LoadedConfig(config, paths.config_path, True), store=store,
                    clock=store.clock, pid=4242)
    with store.batch():
        for n in range(LOOPS):
            store.transition("loop", f"l{n}", "active", "scheduling runs")
    server = SocketServer(paths.socket, engine)
    await server.start()
    yield engine, paths
    await server.close()
    store.close()


def churn(engine: Engine, n: int) -> None:
    engine.store.transition("loop", f"l{n % LOOPS}", "active", f"scheduling runs ({n})")


async def test_a_request_while_the_state_churns_is_answered_from_the_latest_build(busy):
    engine, _paths = busy
    version, encoded = engine.encoded_snapshot()
    spacing = engine.build_spacing()
    assert 0 < spacing <= MAX_BUILD_SPACING  # 1,000 loops cost a measurable build
    churn(engine, 1)
    started = time.monotonic()
    again = engine.encoded_snapshot()
    if time.monotonic() - started < spacing:  # asked within the spacing (always, but on a stalled machine)
        assert again == (version, encoded) and engine.build_due_in() > 0
    await asyncio.sleep(engine.build_due_in())
    newer, _ = engine.encoded_snapshot()
    assert newer == engine.changes.version > version  # built anew once the spacing is over


async def test_an_action_is_followed_by_a_build_that_shows_it(busy):
    engine, _paths = busy
    engine.encoded_snapshot()
    churn(engine, 2)
    with pytest.raises(ActionError):
        await engine.act("retry", "loop:nonexistent")  # any action, refused or not, asks for a fresh build
    version, encoded = engine.encoded_snapshot()
    assert version == engine.changes.version
    assert "scheduling runs (2)" in bytes(encoded).decode()


async def test_a_watcher_of_a_churning_engine_gets_the_latest_version_not_every_one(busy):
    engine, paths = busy
    stream = watch(paths.socket)
    first = await anext(stream)
    got: list[Snapshot] = []

    async def read() -> None:
        async for snap in stream:
            got.append(snap)

    reader = asyncio.ensure_future(read())
    for n in range(300):  # about as fast as the engine can commit them
        churn(engine, n)
        if n % 10 == 0:
            await asyncio.sleep(0)
    final = engine.changes.version
    answer = await arequest(paths.socket, "snapshot")  # proves the server has run since the last change
    assert answer["ok"]
    async with asyncio.timeout(10):
        while not got or got[-1].events[0].reason != "scheduling runs (299)":
            await asyncio.sleep(0.01)
    assert len(got) < 300 / 3, f"{len(got)} pushes for 300 changes"  # fast changes pushed together
    assert got[-1].events[0].reason == "scheduling runs (299)" and engine.changes.version == final
    assert first.generated_at <= got[-1].generated_at
    reader.cancel()
    await asyncio.gather(reader, return_exceptions=True)
    await stream.aclose()
