"""When a snapshot request waits for a build (issue 19): the pure decision, then a real engine behind
a real socket whose builds are pinned at a busy host's CPU (bench_scale's 1,000 loops with their
runs and 200 sidecars: about 35 ms; this test's loops alone build in about 5)."""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st

from console.core.config import HostConfig, LoopConfig
from console.host import freshness
from console.host import server as server_module
from console.host.client import request
from console.host.engine import Engine
from console.host.freshness import CHEAP_BUILD_SECONDS, FRESH_SECONDS, answer_at_once
from tests.host.test_socket_priority import serve

seconds = st.floats(min_value=0.0, max_value=100.0)


@given(age=seconds, cost=seconds, due_in=seconds)
def test_at_once_exactly_when_churning_or_a_costly_build_of_a_fresh_version(age, cost, due_in):
    at_once = answer_at_once(age=age, build_cpu=cost, due_in=due_in)
    assert at_once == (due_in > 0 or (age < FRESH_SECONDS and cost > CHEAP_BUILD_SECONDS))


def test_a_quiet_host_waits_and_a_stale_version_is_waited_for():
    assert not answer_at_once(age=0.0, build_cpu=0.001, due_in=0.0)  # a millisecond's build: current
    assert not answer_at_once(age=FRESH_SECONDS, build_cpu=0.035, due_in=0.0)  # too old to give
    assert answer_at_once(age=0.1, build_cpu=0.035, due_in=0.0)  # busy, recent: at once


async def test_a_busy_host_answers_from_the_recent_version_at_once_and_builds_the_next(shared_dir, monkeypatch):
    config = HostConfig(loop=[LoopConfig(id=f"l{n}", command=["true"]) for n in range(30)])
    engine, server, paths = await serve(shared_dir, config)
    try:
        assert server.publisher is not None
        monkeypatch.setattr(Engine, "build_cpu", property(lambda _engine: 0.035))
        assert engine.build_cpu > CHEAP_BUILD_SECONDS
        server.publisher.publish_now()
        monkeypatch.setattr(engine, "build_due_in", lambda: 0.0)  # past the spacing: only freshness decides
        monkeypatch.setattr(server_module, "BUILD_WAIT", 30.0)  # were it waited for, it would be current
        published = server.publisher.published.latest.version
        engine.store.transition("loop", "l1", "active", "moved after the publish")
        answer = await asyncio.to_thread(request, paths.socket, "snapshot")
        assert answer["version"] == published < engine.changes.version  # at once, not after a build
        # It asked for a build: the version published next (on this, the engine's loop) is the
        # state's, without any watcher.
        built = asyncio.Event()
        server.publisher.published.listen(lambda latest: built.set())
        if server.publisher.published.latest.version < engine.changes.version:
            await asyncio.wait_for(built.wait(), 30)
        assert server.publisher.published.latest.version == engine.changes.version
        again = await asyncio.to_thread(request, paths.socket, "snapshot")
        assert again["version"] == engine.changes.version
        # A version older than FRESH_SECONDS is not given while a build can come: the answer waits.
        monkeypatch.setattr(freshness, "FRESH_SECONDS", 0.0)
        engine.store.transition("loop", "l2", "active", "moved again")
        waited = await asyncio.to_thread(request, paths.socket, "snapshot")
        assert waited["version"] == engine.changes.version
    finally:
        await server.close()
        engine.store.close()
