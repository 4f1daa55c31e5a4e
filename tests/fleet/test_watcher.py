"""The fleet's watches against real sockets: a live engine, a host that accepts and never answers, and
one with no engine at all. Backoff runs on the fake clock."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from console.core.fake_clock import FakeClock
from console.fleet.contexts import HostEntry
from console.fleet.table import UNREACHABLE
from console.fleet.watcher import FleetWatch, dialer_for, poll_once
from tests.conftest import Host


async def until(predicate, what: str, timeout: float = 15.0) -> None:
    """Real processes and sockets do their part; nothing here waits on a timer of the code under test."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


def mute_socket(path: Path) -> socket.socket:
    """A host that accepts the connection and then says nothing, ever (a hung engine, a stuck link)."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(8)
    return server


async def test_a_hung_host_and_a_dead_one_never_delay_a_live_one(host: Host, short_tmp: Path):
    host.write_config('[[sidecar]]\nname = "web"\ncommand = ["sleep", "86400"]\n')
    engine = host.spawn("run")
    host.wait_owner(engine)
    (short_tmp / "hung").mkdir()
    mute = mute_socket(short_tmp / "hung" / "engine.sock")
    dead = short_tmp / "dead"
    entries = [HostEntry(name="hung", url="local", state_dir=str(short_tmp / "hung")),
               HostEntry(name="dead", url="local", state_dir=str(dead)),
               HostEntry(name="live", url="local", state_dir=str(host.state))]
    clock = FakeClock()
    watch = FleetWatch(entries, dialer_for(["ssh"]), clock)
    task = asyncio.create_task(watch.run())
    try:
        status = {s.name: s for s in watch.statuses()}

        def by_name() -> dict:
            return {s.name: s for s in watch.statuses()}

        await until(lambda: by_name()["live"].level is not None and by_name()["dead"].problem == UNREACHABLE,
                    "the live host's snapshot and the dead host's failure")
        status = by_name()
        assert status["hung"].problem == "connecting"  # still waiting on its own task, holding up no one
        assert status["live"].counts.sidecars_total == 1
        assert "no engine owns" in status["dead"].reason
        assert status["dead"].retry_at == clock.time() + 1  # the first retry after 1 s ...
        clock.advance(1)
        await until(lambda: by_name()["dead"].retry_at == clock.time() + 2, "the second failure")  # ... then 2 s
        clock.advance(2)
        await until(lambda: by_name()["dead"].retry_at == clock.time() + 4, "the third failure")
        # an engine comes up there: the next attempt connects, and the row is live
        other = Host(root=dead.parent / "dead-host", state=dead, config_dir=dead.parent / "dead-config")
        (other.root / "home").mkdir(parents=True)
        other.write_config("")
        revived = other.spawn("run")
        other.wait_owner(revived)
        clock.advance(4)
        await until(lambda: by_name()["dead"].level is not None, "the revived host's first snapshot")
        assert by_name()["dead"].problem == "" and by_name()["hung"].problem == "connecting"
        revived.terminate()
        revived.wait(timeout=15)
        await until(lambda: by_name()["dead"].problem == UNREACHABLE, "its loss")
        assert by_name()["dead"].retry_at == clock.time() + 1  # a link that worked starts its backoff afresh
        assert by_name()["dead"].counts.sidecars_total == 0 and by_name()["dead"].pushed_at is not None
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        mute.close()


async def test_once_gives_a_hung_host_its_timeout_and_answers_for_the_rest(host: Host, short_tmp: Path):
    engine = host.spawn("run")
    host.wait_owner(engine)
    (short_tmp / "hung").mkdir()
    mute = mute_socket(short_tmp / "hung" / "engine.sock")
    try:
        entries = [HostEntry(name="hung", url="local", state_dir=str(short_tmp / "hung")),
                   HostEntry(name="live", url="local", state_dir=str(host.state))]
        statuses = await poll_once(entries, dialer_for(["ssh"]), FakeClock(), timeout=0.5)
    finally:
        mute.close()
    hung, live = statuses
    assert hung.problem == UNREACHABLE and hung.reason == "no answer within 0.5 s"
    assert live.level is not None and live.snapshot is not None and live.snapshot.engine.pid == engine.pid
