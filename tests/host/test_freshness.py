"""When a snapshot request waits for a build (issue 19): the pure decision, then a real engine behind a
real socket whose builds cost tens of milliseconds (made so: 1,000 loops that ran nothing build in 2 to
6 ms, either side of CHEAP_BUILD_SECONDS), and what a busy host must still answer current."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from console.core.actions import Target
from console.core.config import HostConfig, LoadedConfig, LoopConfig
from console.core.fake_clock import FakeClock
from console.core.paths import resolve_paths
from console.core.records import replace
from console.core.store import Store
from console.host import freshness
from console.host import server as server_module
from console.host.client import request
from console.host.engine import MAX_BUILD_SPACING, Engine
from console.host.freshness import CHEAP_BUILD_SECONDS, FRESH_SECONDS, OLDEST_SECONDS, answer_at_once
from console.host.server import SocketServer
from console.readmodel.snapshot import Snapshot
from tests.host.test_socket_priority import serve

seconds = st.floats(min_value=0.0, max_value=100.0)


@given(age=seconds, cost=seconds, due_in=seconds, acted=st.booleans())
def test_at_once_exactly_when_churning_or_a_costly_build_of_a_fresh_version(age, cost, due_in, acted):
    at_once = answer_at_once(age=age, build_cpu=cost, due_in=due_in, acted=acted)
    churning = due_in > 0 and age < OLDEST_SECONDS
    busy = due_in <= 0 and age < FRESH_SECONDS and cost > CHEAP_BUILD_SECONDS
    assert at_once == (not acted and (churning or busy))


def test_a_quiet_host_waits_and_a_stale_version_is_waited_for():
    assert not answer_at_once(age=0.0, build_cpu=0.001, due_in=0.0)  # a millisecond's build: current
    assert not answer_at_once(age=FRESH_SECONDS, build_cpu=0.035, due_in=0.0)  # too old to give
    assert answer_at_once(age=0.1, build_cpu=0.035, due_in=0.0)  # busy, recent: at once
    assert not answer_at_once(age=0.1, build_cpu=0.035, due_in=0.0, acted=True)  # whoever acted reads it
    assert not answer_at_once(age=OLDEST_SECONDS, build_cpu=0.035, due_in=0.1)  # churning, but too old


def test_the_oldest_answer_while_churning_is_the_longest_spacing():
    assert OLDEST_SECONDS == MAX_BUILD_SPACING


SLOW = 0.03  # CPU seconds added to every build that composes: a busy host on any machine


def burn(seconds: float) -> None:
    """Work for `seconds` of this thread's CPU (what the engine measures; a sleep costs none)."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def slow_builds(monkeypatch, engine, seconds: float = SLOW) -> None:
    """Every build costs at least `seconds` of CPU, where the engine measures it (inside the compose)."""
    real = engine.loops.views

    def views(*args, **kwargs):
        burn(seconds)
        return real(*args, **kwargs)

    monkeypatch.setattr(engine.loops, "views", views)


async def reads_what_was_just_recorded(engine, paths) -> None:
    engine.store.transition("sidecar", "web", "ready", "just recorded")
    answer = await asyncio.to_thread(request, paths.socket, "snapshot")
    assert answer["version"] == engine.changes.version, "read the version from before the change"


def built_anew(server, engine, n: int) -> None:
    for k in range(n):
        engine.store.transition("loop", "l0", "active", f"built anew ({k})")
        server.publisher.publish_now()


async def test_a_busy_host_answers_from_the_recent_version_at_once_and_builds_the_next(shared_dir, monkeypatch):
    config = HostConfig(loop=[LoopConfig(id=f"l{n}", command=["true"]) for n in range(30)])
    engine, server, paths = await serve(shared_dir, config)
    try:
        assert server.publisher is not None
        slow_builds(monkeypatch, engine)
        built_anew(server, engine, 2)  # builds that steadily cost: one alone is no proof
        assert engine.build_cpu > CHEAP_BUILD_SECONDS, f"built in {engine.build_cpu * 1e3:.1f} ms"
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


async def test_an_action_from_the_owners_console_is_what_the_next_request_reads(shared_dir, monkeypatch):
    """The owner's console acts in-process (OwnedSource.act: Engine.act, no socket, no publish); the
    engine then asks for a build that shows it. A `loopctl --once` right after reads the action's outcome,
    however costly the build and however recent the published version."""
    engine, server, paths = await serve(shared_dir, HostConfig(loop=[LoopConfig(id="l0", command=["true"])]))
    try:
        slow_builds(monkeypatch, engine)
        monkeypatch.setattr(server_module, "BUILD_WAIT", 30.0)  # a loaded machine's build still comes
        built_anew(server, engine, 3)  # a steadily busy host, its version just published

        async def poke(target: Target) -> dict[str, Any]:
            engine.store.transition("sidecar", target.name, "ready", "poked from the console")
            return {}

        engine.actions.register("trigger", "probe", poke)
        await engine.act("trigger", "probe:web")  # what OwnedSource.act does
        answer = await asyncio.to_thread(request, paths.socket, "snapshot")
        assert answer["version"] == engine.changes.version, "read a version from before the action"
        assert Snapshot.from_dict(answer["snapshot"]).events[0].reason == "poked from the console"
    finally:
        await server.close()
        engine.store.close()


async def test_a_version_older_than_the_spacing_is_not_served_while_another_reader_builds(shared_dir, monkeypatch):
    """The owner's console (OwnedSource.follow) and the metrics textfile build with Engine.snapshot: the
    spacing runs (build_due_in > 0) while the published version stays as old as the last request made it,
    a minute on a host polled every minute. A request is not answered from that version at once."""
    engine, server, paths = await serve(shared_dir, HostConfig(loop=[LoopConfig(id="l0", command=["true"])]))
    try:
        slow_builds(monkeypatch, engine, 0.05)  # a spacing of 0.15 s: the request comes within it
        monkeypatch.setattr(server_module, "BUILD_WAIT", 30.0)
        built_anew(server, engine, 3)
        published = server.publisher.published
        published.publish(replace(published.latest, built_at=published.latest.built_at - 60))  # a minute ago
        engine.store.transition("loop", "l0", "active", "moved since")
        engine.snapshot()  # the console's build, a frame of its own: never published
        assert engine.build_due_in() > 0
        answer = await asyncio.to_thread(request, paths.socket, "snapshot")
        assert answer["version"] == engine.changes.version, "answered from the version of a minute ago"
    finally:
        await server.close()
        engine.store.close()


async def test_one_slow_build_does_not_make_a_small_host_answer_from_the_version_before(shared_dir, monkeypatch):
    """A small host builds in a fraction of a millisecond; one build that took longer (the cold first one,
    a collection, a loaded CI machine: 8 to 18 ms seen for an engine of no loops under `-n 4`) does not make
    its next requests read from the version before what was just recorded."""
    engine, server, paths = await serve(shared_dir, HostConfig())
    try:
        monkeypatch.setattr(server_module, "BUILD_WAIT", 30.0)
        built_anew(server, engine, 3)  # cheap builds
        with monkeypatch.context() as once:
            slow_builds(once, engine, 0.02)
            built_anew(server, engine, 1)  # the one slow build
        await asyncio.sleep(engine.build_due_in() + 0.02)  # past its spacing: not the churning case
        await reads_what_was_just_recorded(engine, paths)
    finally:
        await server.close()
        engine.store.close()


async def test_the_first_build_alone_does_not_make_a_host_busy(shared_dir, monkeypatch):
    """The publisher's first build (at the socket's start) is a cold one; on its own it is no proof."""
    paths = resolve_paths(str(shared_dir / "s"), None, {}, shared_dir)
    paths.state_dir.mkdir(exist_ok=True)
    store = Store.open(paths.database, FakeClock())
    engine = Engine(paths=paths, loaded=LoadedConfig(HostConfig(), paths.config_path, True), store=store,
                    clock=store.clock, pid=4242)
    slow_builds(monkeypatch, engine, 0.02)
    server = SocketServer(paths.socket, engine)
    await server.start()
    try:
        monkeypatch.undo()
        monkeypatch.setattr(server_module, "BUILD_WAIT", 30.0)
        await asyncio.sleep(engine.build_due_in() + 0.02)
        await reads_what_was_just_recorded(engine, paths)
    finally:
        await server.close()
        store.close()


async def test_an_owners_action_published_while_a_request_decides_is_still_what_it_reads(shared_dir, monkeypatch):
    """The socket's thread reads the published version, then whether an action asked for a build; the
    engine's thread may build and publish in between (a GIL switch while a 35 ms build runs). The
    build clears the ask: the request must not then answer, at once, the version it read before."""
    engine, server, paths = await serve(shared_dir, HostConfig(loop=[LoopConfig(id="l0", command=["true"])]))
    try:
        assert server.publisher is not None
        slow_builds(monkeypatch, engine, 0.05)  # a spacing of 0.15 s: due_in > 0 right after a build
        monkeypatch.setattr(server_module, "BUILD_WAIT", 30.0)
        built_anew(server, engine, 3)
        loop, publisher = asyncio.get_running_loop(), server.publisher
        real_due_in = engine.build_due_in

        def due_in_after_a_publish() -> float:
            # Read by _fresh after `latest`, before `acted`: the engine's thread builds and publishes now.
            if threading.current_thread() is server.thread:
                monkeypatch.setattr(engine, "build_due_in", real_due_in)
                asyncio.run_coroutine_threadsafe(_on_loop(publisher.publish_now), loop).result(30)
            return real_due_in()

        async def poke(target: Target) -> dict[str, Any]:
            engine.store.transition("sidecar", target.name, "ready", "poked from the console")
            return {}

        engine.actions.register("trigger", "probe", poke)
        await engine.act("trigger", "probe:web")  # the owner's console: in-process, nothing published
        monkeypatch.setattr(engine, "build_due_in", due_in_after_a_publish)
        answer = await asyncio.to_thread(request, paths.socket, "snapshot")
        assert answer["version"] == engine.changes.version, "read a version from before the action"
    finally:
        await server.close()
        engine.store.close()


async def _on_loop(fn: Any) -> Any:
    return fn()
