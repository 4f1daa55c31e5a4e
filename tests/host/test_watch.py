"""The watch stream, opened late (`watch`) or early on a thread (`EarlyWatch`), against real sockets."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.core.errors import OwnerUnavailable
from console.core.paths import resolve_paths
from console.host.protocol import encode_line
from console.host.watch import EarlyWatch, arequest, watch
from console.readmodel.snapshot import EngineView, HostView, Snapshot, compose
from tests.conftest import Host, wait_for


def snap(pid: int) -> Snapshot:
    return compose(now=float(pid), host=HostView("h", "/s", "/c", False, 0),
                   engine=EngineView(True, "running", pid=pid), things=[], events=[])


@contextlib.contextmanager
def one_shot_server(path: Path, payload: bytes) -> Iterator[None]:
    """A listener that answers one connection's first line with `payload` in one write, then hangs up."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)

    def answer() -> None:
        conn, _ = server.accept()
        with conn:
            conn.makefile("rb").readline()
            conn.sendall(payload)
        server.close()

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    yield
    thread.join(timeout=5)


async def collect(path: Path, early: EarlyWatch | None) -> list[Snapshot]:
    return [s async for s in watch(path, early)]


def test_bytes_read_past_the_first_snapshot_reach_the_stream(short_tmp: Path):
    """Two snapshots in one write: the early reader takes the first, and the second (already in its
    buffer) must not be lost when the asyncio stream takes over the connection."""
    path = short_tmp / "s.sock"
    lines = encode_line({"id": 1, "ok": True, "snapshot": snap(101).to_dict()}) + \
        encode_line({"id": 1, "ok": True, "snapshot": snap(102).to_dict()})
    with one_shot_server(path, lines):
        early = EarlyWatch(path)
        wait_for(lambda: early.ready() is not None, what="the first snapshot")
        assert early.ready().engine.pid == 101  # type: ignore[union-attr]
        got = asyncio.run(collect(path, early))
    assert [s.engine.pid for s in got] == [101, 102]
    assert got[0] is early.ready()  # the console draws it once, from `ready()`, and skips it from the feed


def test_no_engine_is_raised_where_the_console_reads_the_feed(short_tmp: Path):
    early = EarlyWatch(short_tmp / "none.sock", timeout=0.3)
    wait_for(lambda: not early._thread.is_alive(), what="the early watch to give up")
    assert early.ready() is None
    with pytest.raises(OwnerUnavailable, match=r"no engine answers on .*none\.sock: it has stopped"):
        asyncio.run(collect(short_tmp / "none.sock", early))


def test_an_engine_still_binding_its_socket_is_waited_for(short_tmp: Path):
    """The lease is taken a moment before the socket exists: an observer starting then must not give up."""
    path = short_tmp / "s.sock"
    early = EarlyWatch(path, timeout=5)
    time.sleep(0.3)  # the engine is "starting": no socket yet
    assert early.ready() is None
    with one_shot_server(path, encode_line({"id": 1, "ok": True, "snapshot": snap(7).to_dict()})):
        wait_for(lambda: early.ready() is not None, what="the first snapshot once the socket is up")
    assert early.ready().engine.pid == 7  # type: ignore[union-attr]


def test_a_refusal_is_one_clear_error(short_tmp: Path):
    path = short_tmp / "s.sock"
    refusal = encode_line({"id": 1, "ok": False, "error": {"code": "busy", "message": "too many watchers"}})
    with one_shot_server(path, refusal):
        early = EarlyWatch(path)
        with pytest.raises(OwnerUnavailable, match=r"is busy \(too many watchers\): try again"):
            asyncio.run(collect(path, early))


def test_an_engine_that_hangs_up_before_answering_is_reported(short_tmp: Path):
    path = short_tmp / "s.sock"
    with one_shot_server(path, b""):
        early = EarlyWatch(path)
        with pytest.raises(OwnerUnavailable, match="closed the connection without answering"):
            asyncio.run(collect(path, early))


def test_an_early_watch_on_a_real_engine_follows_its_changes(host: Host):
    """First snapshot from the thread, the next ones over the same connection as the engine changes."""
    host.write_config(f'[[sidecar]]\nname = "flaky"\ncommand = ["{sys.executable}", "-c", "raise SystemExit(3)"]\n'
                      f"max_restarts = 0\n")
    engine = host.spawn("run")
    host.wait_owner(engine)
    wait_for(lambda: host.once_json()[1]["snapshot"]["sidecars"][0]["state"] == "failed", what="flaky failed")
    paths = resolve_paths(str(host.state), None, {}, host.root)
    early = EarlyWatch(paths.socket)

    async def through_a_retry() -> list[str]:
        states: list[str] = []
        async with asyncio.timeout(20):
            async for s in watch(paths.socket, early):
                states.append(s.sidecars[0].state)
                if len(states) == 1:
                    assert s is early.ready() and s.engine.pid == engine.pid
                    answer = await arequest(paths.socket, "action", verb="retry", target="sidecar:flaky")
                    assert answer["ok"], answer
                elif states[-1] == "failed":
                    return states
        return states

    states = asyncio.run(through_a_retry())
    assert states[0] == "failed" and "starting" in states[1:] and states[-1] == "failed"


def test_an_engine_that_never_answers_is_named_as_hung(short_tmp: Path):
    path = short_tmp / "s.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)  # accepts (the kernel does), never answers
    try:
        early = EarlyWatch(path, timeout=0.3)
        with pytest.raises(OwnerUnavailable, match=r"did not answer within 0.3 s: it may be hung"):
            asyncio.run(collect(path, early))
    finally:
        server.close()
