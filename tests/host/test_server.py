"""The owner's socket, end to end over a real Unix socket."""

import asyncio
import contextlib
import json
import os
import socket
import stat
import threading

import pytest

from console.core.config import HostConfig, LoadedConfig
from console.core.fake_clock import FakeClock
from console.core.paths import resolve_paths
from console.core.store import Store
from console.host.client import request, tail
from console.host.engine import Engine
from console.host.server import SocketServer
from console.host.watch import arequest, watch
from console.readmodel.snapshot import SNAPSHOT_SCHEMA, Snapshot
from tests.conftest import NOBODY, as_user, requires_root, wait_for


@pytest.fixture
async def served(shared_dir):
    paths = resolve_paths(str(shared_dir / "s"), None, {}, shared_dir)
    paths.state_dir.mkdir()
    store = Store.open(paths.database, FakeClock())
    engine = Engine(paths=paths, loaded=LoadedConfig(HostConfig(), paths.config_path, False), store=store,
                    clock=store.clock, pid=4242)
    await engine.start()
    server = SocketServer(paths.socket, engine)
    await server.start()
    yield engine, server, paths
    await server.close()
    store.close()


async def raw_exchange(path, payload: bytes) -> list[dict]:
    reader, writer = await asyncio.open_unix_connection(str(path))
    writer.write(payload)
    await writer.drain()
    writer.write_eof()
    lines = []
    while line := await reader.readline():
        lines.append(json.loads(line))
    writer.close()
    return lines


async def test_socket_is_private_and_answers_snapshot_and_hello(served):
    _engine, _server, paths = served
    assert stat.S_IMODE(paths.socket.stat().st_mode) == 0o600
    answer = await arequest(paths.socket, "snapshot")
    assert answer["ok"] and answer["snapshot"]["engine"]["pid"] == 4242
    hello = await arequest(paths.socket, "hello")
    assert hello["protocol"] == 1 and hello["engine"]["running"] is True


async def test_sync_client_used_by_once_gets_the_same_snapshot(served):
    engine, _server, paths = served
    answer = await asyncio.to_thread(request, paths.socket, "snapshot", schema=SNAPSHOT_SCHEMA)  # as --once asks
    assert answer["snapshot"] == engine.snapshot().to_dict()


async def test_bad_lines_get_structured_errors_and_the_connection_survives(served):
    _engine, _server, paths = served
    lines = await raw_exchange(paths.socket, b"not json\n[1]\n" + json.dumps({"id": 3, "op": "nope"}).encode()
                               + b"\n" + json.dumps({"id": 4, "op": "hello"}).encode() + b"\n")
    assert [line.get("error", {}).get("code") for line in lines[:3]] == ["bad_request", "bad_request", "unknown_op"]
    assert lines[2]["id"] == 3
    assert lines[3]["ok"] is True and lines[3]["id"] == 4


async def test_oversized_request_is_refused(served):
    _engine, _server, paths = served

    def flood_and_read() -> tuple[bytes, bytes]:
        """A plain socket: what the engine sent is read before its hang-up, whatever our flood's write
        met (an asyncio stream raised the broken pipe of its own write before the buffered answer)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(10)
            sock.connect(str(paths.socket))

            def flood() -> None:
                with contextlib.suppress(OSError):
                    sock.sendall(b"x" * (2 << 20) + b"\n")

            sender = threading.Thread(target=flood)
            sender.start()
            got = b""
            with contextlib.suppress(ConnectionResetError):  # the hang-up, our flood left unread
                while chunk := sock.recv(1 << 16):
                    got += chunk
            sender.join(10)
            line, _, rest = got.partition(b"\n")
            return line, rest

    line, rest = await asyncio.to_thread(flood_and_read)
    assert json.loads(line)["error"]["code"] == "too_large"
    assert rest == b""  # and nothing after it: the engine hung up


async def test_actions_answer_with_a_result_or_a_structured_error(served):
    engine, _server, paths = served

    async def retry(target):
        engine.store.transition(target.kind, target.name, "starting", "operator retry")
        return {"message": f"{target.name} relaunched"}

    engine.actions.register("retry", "sidecar", retry)
    ok = await arequest(paths.socket, "action", verb="retry", target="sidecar:web")
    assert ok["ok"] and ok["result"]["message"] == "web relaunched"
    assert engine.store.thing("sidecar", "web").state == "starting"
    refused = await arequest(paths.socket, "action", verb="cancel", target="sidecar:web")
    assert refused["ok"] is False and refused["error"]["code"] == "not_applicable"
    engine.read_only = True
    ro = await arequest(paths.socket, "action", verb="retry", target="sidecar:web")
    assert ro["error"]["code"] == "read_only"


async def test_watch_pushes_on_change_not_on_a_timer(served):
    engine, _server, paths = served
    stream = watch(paths.socket)
    first = await anext(stream)
    assert [t.key for t in first.things] == ["engine:main"]
    pending = asyncio.ensure_future(anext(stream))
    # Hours pass on the engine's clock and the server answers another client (so it has run since): nothing
    # changed, so nothing was pushed. The next push must then be the change itself, one version on.
    engine.clock.advance(6 * 3600)
    assert (await arequest(paths.socket, "hello"))["ok"]
    assert not pending.done()
    engine.store.transition("sidecar", "web", "ready", "health check passed")
    second = await asyncio.wait_for(pending, 5)
    assert second.events[0].reason == "health check passed" and second.events[0].name == "web"
    await stream.aclose()


async def test_watchers_get_the_final_stop_before_the_socket_closes(served):
    engine, server, paths = served
    stream = watch(paths.socket)
    await anext(stream)
    await engine.stop()
    await server.close()
    final = [snap async for snap in stream]
    assert final and final[-1].events[0].new == "stopped"
    assert not paths.socket.exists()


async def test_a_stale_socket_file_is_replaced(tmp_path):
    paths = resolve_paths(str(tmp_path / "s"), None, {}, tmp_path)
    paths.state_dir.mkdir()
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(paths.socket))
    dead.close()  # what a SIGKILLed engine leaves: a socket file nobody listens on
    assert request(paths.socket, "hello") is None
    store = Store.open(paths.database, FakeClock())
    engine = Engine(paths=paths, loaded=LoadedConfig(HostConfig(), paths.config_path, False), store=store,
                    clock=store.clock)
    server = SocketServer(paths.socket, engine)
    await server.start()
    try:
        assert (await arequest(paths.socket, "hello"))["ok"]
    finally:
        await server.close()
        store.close()


@requires_root
def test_peers_of_another_uid_are_refused_by_so_peercred(shared_dir):
    """The engine runs as its own process and this test forks the `nobody` client from its main
    thread: forking a process that also runs an event loop and executor threads can inherit a
    lock some other thread held, which is not what this test is about."""
    import subprocess
    import sys

    state = shared_dir / "state"
    state.mkdir(mode=0o755)
    state.chmod(0o755)
    env = {**os.environ, "XDG_CONFIG_HOME": str(shared_dir / "no-config")}  # the embedded default
    engine = subprocess.Popen([sys.executable, "-m", "console", "--state-dir", str(state), "run"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    socket_path = state / "engine.sock"
    try:
        wait_for(lambda: request(socket_path, "hello") is not None, what="the engine's socket")
        # Open every door a file mode could close, so only SO_PEERCRED stands between nobody and the engine.
        os.chmod(socket_path, 0o666)
        answer = as_user(NOBODY, lambda: request(socket_path, "snapshot"))
        tailed = as_user(NOBODY, lambda: list(tail(socket_path, "sidecar:web", 10, follow=True)))
    finally:
        engine.terminate()
        engine.wait(timeout=15)
    assert "'code': 'forbidden'" in answer and "uid 65534" in answer
    assert "snapshot" not in answer.split("'error'")[0]
    assert "'code': 'forbidden'" in tailed and "chunk" not in tailed


async def test_a_version_is_encoded_once_whoever_asks(served, monkeypatch):
    """Two watchers and a snapshot request of one version cost one encode, and get the same bytes."""
    engine, _server, paths = served
    encodes: list[int] = []
    real = Snapshot.to_json

    def counting(snap):
        encodes.append(1)
        return real(snap)

    monkeypatch.setattr(Snapshot, "to_json", counting)
    engine.store.transition("sidecar", "web", "ready", "health check passed")  # a new version
    # Published before anyone asks: within the build spacing (a loaded machine stretches a build's
    # time) a watcher would be given the version before it, and the other the new one.
    _server.publisher.publish_now()
    one, two = watch(paths.socket), watch(paths.socket)
    first, second = await anext(one), await anext(two)
    answer = await arequest(paths.socket, "snapshot", schema=SNAPSHOT_SCHEMA)  # as loopctl asks
    assert first == second and Snapshot.from_dict(answer["snapshot"]) == first
    assert len(encodes) == 1
    await one.aclose()
    await two.aclose()


async def _served_with(shared_dir, **limits):
    paths = resolve_paths(str(shared_dir / "s"), None, {}, shared_dir)
    paths.state_dir.mkdir(exist_ok=True)
    store = Store.open(paths.database, FakeClock())
    engine = Engine(paths=paths, loaded=LoadedConfig(HostConfig(), paths.config_path, False), store=store,
                    clock=store.clock, pid=4242)
    server = SocketServer(paths.socket, engine, **limits)
    await server.start()
    return store, server, paths


async def test_at_the_cap_the_longest_idle_client_gives_way_and_watchers_never_do(shared_dir):
    store, server, paths = await _served_with(shared_dir, max_connections=4)
    try:
        watchers = [await asyncio.open_unix_connection(str(paths.socket)) for _ in range(2)]
        for reader, writer in watchers:
            writer.write(b'{"id": 1, "op": "watch"}\n')
            await writer.drain()
            assert json.loads(await reader.readline())["ok"]
        idle = [await asyncio.open_unix_connection(str(paths.socket)) for _ in range(2)]
        await asyncio.sleep(0)
        answer = await asyncio.to_thread(request, paths.socket, "snapshot")  # the fifth: the idlest gives way
        assert answer["ok"] and "snapshot" in answer
        assert await asyncio.wait_for(idle[0][0].read(), 5) == b""  # the oldest idle one was hung up on
        assert server.refused_busy == 0
        for _reader, writer in idle[1:]:
            writer.close()
        busy_ones = [await asyncio.open_unix_connection(str(paths.socket)) for _ in range(2)]
        for reader, writer in busy_ones:  # now four watchers: nothing idle to give way
            writer.write(b'{"id": 1, "op": "watch"}\n')
            await writer.drain()
            assert json.loads(await reader.readline())["ok"]
        from console.core.errors import OwnerUnavailable

        with pytest.raises(OwnerUnavailable, match=r"is busy \(the engine serves 4 connections already") as info:
            await asyncio.to_thread(request, paths.socket, "snapshot")
        assert "\n" not in info.value.message and server.refused_busy == 1
        for _reader, writer in [*watchers, *busy_ones]:
            writer.close()
    finally:
        await server.close()
        store.close()


async def test_a_client_that_sends_nothing_is_closed_after_the_idle_timeout(shared_dir):
    store, server, paths = await _served_with(shared_dir, idle_seconds=0.2)
    try:
        reader, writer = await asyncio.open_unix_connection(str(paths.socket))
        said = json.loads(await asyncio.wait_for(reader.readline(), 10))  # the event: the engine hangs up
        assert said["error"]["code"] == "idle" and await reader.read() == b""
        writer.close()
    finally:
        await server.close()
        store.close()


async def test_the_snapshot_says_when_the_engine_runs_out_of_descriptors(served):
    import resource

    engine, _server, _paths = served
    assert "descriptors_exhausted" not in [r.code for r in engine.snapshot().tray.reasons]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    held = len(os.listdir("/proc/self/fd"))
    resource.setrlimit(resource.RLIMIT_NOFILE, (held + 1, hard))  # a real limit, one above what is open
    try:
        codes = [r.code for r in engine.snapshot().tray.reasons]
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert "descriptors_exhausted" in codes
    assert "descriptors_exhausted" not in [r.code for r in engine.snapshot().tray.reasons]


async def test_a_report_of_a_quiet_host_is_as_of_now_not_as_of_its_last_change(served):
    """The owner encodes a snapshot once per version; on a quiet host that version can be hours old.
    `--once` works out what depends on time again (here: when it was generated) from its own clock."""
    from console.host.observe import current_snapshot

    engine, _server, paths = served
    first = await asyncio.to_thread(current_snapshot, paths, engine.loaded, engine.clock)
    engine.clock.advance(3600)  # nothing changes meanwhile: the owner serves the same version
    later = await asyncio.to_thread(current_snapshot, paths, engine.loaded, engine.clock)
    assert later.generated_at == first.generated_at + 3600
    assert engine.snapshot().generated_at == first.generated_at  # the cached version itself, unchanged


@pytest.mark.parametrize(("frame", "said"), [
    (b'{"id": 1, "op": "action", "verb": 3, "target": "sidecar:web"}\n', "request verb: expected a string, got 3"),
    (b'{"id": 1, "op": "tail", "target": "sidecar:web", "lines": "all"}\n',
     "request lines: expected an integer, got 'all'"),
    (b'{"id": 1}\n', "request op: missing, expected a string"),
    (b'[1, 2]\n', "a request must be a JSON object"),
    (b'{"id": 1, "op": "hello", "from_a_newer_client": true}\n', None),  # unknown keys: ignored
])
async def test_request_frames_are_typed_at_the_boundary(served, frame, said):
    _engine, _server, paths = served
    [answer] = await raw_exchange(paths.socket, frame)
    if said is None:
        assert answer["ok"] and answer["id"] == 1
    else:
        assert answer["ok"] is False and answer["error"] == {"code": "bad_request", "message": said}


async def test_under_descriptor_pressure_a_version_is_still_encoded_once(served, monkeypatch):
    """A flood of clients is when one encode per version matters most (the pressure reason is added to
    each snapshot: a new object every call made the cache miss every time)."""
    import console.host.engine as engine_module

    engine, _server, _paths = served
    monkeypatch.setattr(engine_module.descriptors, "usage", lambda: (1000, 1024))
    monkeypatch.setattr(engine_module.descriptors, "under_pressure", lambda held, limit: True)
    encodes: list[int] = []
    real = Snapshot.to_json
    monkeypatch.setattr(Snapshot, "to_json", lambda snap: encodes.append(1) or real(snap))
    engine.store.transition("sidecar", "web", "ready", "health check passed")  # a version not yet encoded
    first = engine.snapshot_json()
    assert all(engine.snapshot_json() == first for _ in range(4))
    assert len(encodes) == 1
    assert any(r.code == "descriptors_exhausted" for r in engine.snapshot().tray.reasons)
