"""The `tail` socket op, end to end: a real sidecar writing its log, a real Unix socket."""

from __future__ import annotations

import asyncio
import json
import sys

import pytest

from console.core.config import HostConfig, LoadedConfig, SidecarConfig
from console.core.fake_clock import FakeClock
from console.core.paths import resolve_paths
from console.core.store import Store
from console.host.engine import Engine
from console.host.protocol import MAX_TAILS, encode_line
from console.host.server import SocketServer
from console.host.watch import atail
from console.runs.ledger import queue_run
from tests.conftest import finish_with_clock

TICKER = "import itertools, sys, time\nfor i in itertools.count():\n    print(f'tick {i}', flush=True)\n" \
         "    time.sleep(0.05)\n"


@pytest.fixture
async def served(short_tmp):
    paths = resolve_paths(str(short_tmp / "s"), None, {}, short_tmp)
    (paths.state_dir / "sidecars").mkdir(parents=True)
    (paths.state_dir / "sidecars" / "ticker.log").write_text("said by the last launch\n")
    config = HostConfig(sidecar=[SidecarConfig(name="ticker", command=[sys.executable, "-c", TICKER])])
    store = Store.open(paths.database, FakeClock())
    engine = Engine(paths=paths, loaded=LoadedConfig(config, paths.config_path, True), store=store,
                    clock=store.clock, pid=4242)
    await engine.start()
    server = SocketServer(paths.socket, engine)
    server.tail_poll_seconds = 0.02
    await server.start()
    yield engine, server, paths
    await server.close()
    await finish_with_clock(store.clock, engine.stop())
    store.close()


async def answers(paths, target: str, lines: int = 100, *, follow: bool = False, until=None) -> list[dict]:
    got = []
    async for answer in atail(paths.socket, target, lines, follow=follow):
        got.append(answer)
        if until is not None and until(got):
            break
    return got


def text_of(got: list[dict]) -> list[str]:
    return [line for answer in got if "chunk" in answer for line in answer["chunk"]["lines"]]


async def test_a_sidecar_log_comes_with_its_previous_launch_then_ends_unless_followed(served):
    _engine, _server, paths = served
    while b"tick 3" not in (paths.state_dir / "sidecars" / "ticker.log").read_bytes():
        await asyncio.sleep(0.02)
    got = await answers(paths, "sidecar:ticker", 100)
    files = [a["chunk"]["file"] for a in got if "chunk" in a]
    assert files == ["ticker.log.1 (older)", "ticker.log"]
    assert got[0]["chunk"]["lines"] == ["said by the last launch"]
    assert got[1]["chunk"]["lines"][:3] == ["tick 0", "tick 1", "tick 2"]
    assert got[-1] == {"id": 1, "ok": True, "end": True}


async def test_the_count_is_of_the_newest_lines_across_both_files(served):
    _engine, _server, paths = served
    while b"tick 3" not in (paths.state_dir / "sidecars" / "ticker.log").read_bytes():
        await asyncio.sleep(0.02)
    got = await answers(paths, "sidecar:ticker", 2)
    lines = text_of(got)
    assert len(lines) == 2 and all(line.startswith("tick") for line in lines)
    assert [a["chunk"]["file"] for a in got if "chunk" in a] == ["ticker.log.1 (older)", "ticker.log"]
    assert got[0]["chunk"]["lines"] == []  # no room left for the older file's lines


async def test_following_delivers_lines_as_they_are_written_and_a_hang_up_ends_it(served):
    _engine, server, paths = served
    got = await answers(paths, "sidecar:ticker", 0, follow=True,
                        until=lambda got: sum(len(a.get("chunk", {}).get("lines", [])) for a in got) >= 8)
    ticks = [line for line in text_of(got) if line.startswith("tick")]
    assert ticks == [f"tick {i}" for i in range(len(ticks))][-len(ticks):]  # in order, none twice
    assert len(ticks) >= 6
    while server._tails:  # the server noticed the hang-up and let the follow go
        await asyncio.sleep(0.01)


async def test_a_run_is_followed_until_it_has_finished_and_its_output_read(served):
    engine, _server, paths = served
    queue_run(engine.store, "01ABCDEF", "worker", "scheduled")
    out = paths.state_dir / "runs" / "01ABCDEF"
    out.mkdir(parents=True)
    (out / "output.log").write_text("step 1\n")
    stream = atail(paths.socket, "run:cdef", 10, follow=True)
    first = await anext(stream)
    assert first["chunk"] == {"file": "run 01ABCDEF output.log", "lines": ["step 1"], "note": ""}
    with open(out / "output.log", "a") as handle:
        handle.write("step 2\n")
    engine.store.transition("run", "01ABCDEF", "succeeded", "done")
    rest = [answer async for answer in stream]
    assert text_of(rest) == ["step 2"] and rest[-1]["end"] is True


@pytest.mark.parametrize(("target", "code"), [
    ("sidecar:nope", "unknown_target"), ("run:nope", "unknown_target"), ("loop:worker", "not_applicable"),
    ("web", "bad_target"), (7, "bad_request"),  # a target that is no string: the frame itself is wrong
])
async def test_targets_without_a_log_are_refused_with_a_reason(served, target, code):
    _engine, _server, paths = served
    reader, writer = await asyncio.open_unix_connection(str(paths.socket))
    writer.write(encode_line({"id": 9, "op": "tail", "target": target, "follow": True}))
    answer = json.loads(await reader.readline())
    writer.close()
    assert answer["ok"] is False and answer["error"]["code"] == code and answer["id"] == 9
    assert answer["error"]["message"]


async def test_a_log_replaced_by_a_link_is_not_read(served):
    engine, _server, paths = served
    secret = paths.state_dir / "secret"
    secret.write_text("runner-token\n")
    queue_run(engine.store, "01LINKED", "worker", "scheduled")
    (paths.state_dir / "runs" / "01LINKED").mkdir(parents=True)
    (paths.state_dir / "runs" / "01LINKED" / "output.log").symlink_to(secret)
    got = await answers(paths, "run:01LINKED")
    assert got[-1]["ok"] is False and got[-1]["error"]["code"] == "unreadable"
    assert "runner-token" not in json.dumps(got)


async def test_followers_are_capped_and_a_reader_without_follow_still_gets_in(served):
    _engine, server, paths = served
    streams = [atail(paths.socket, "sidecar:ticker", 0, follow=True) for _ in range(MAX_TAILS)]
    for stream in streams:
        await anext(stream)
    assert server._tails == MAX_TAILS
    refused = await answers(paths, "sidecar:ticker", 0, follow=True)
    assert refused[0]["error"]["code"] == "busy"
    assert (await answers(paths, "sidecar:ticker", 1))[-1]["end"] is True
    for stream in streams:
        await stream.aclose()
