"""The snapshot schema a client reads is the one it gets: a loopctl from before schema 2 sends no
`schema` and reads lists of objects (its reader was `convert(Snapshot, data)`, as here), so the
consoles and hosts of a fleet can be upgraded in any order. Real socket, real engine."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import msgspec

from console.core.config import HostConfig, LoopConfig
from console.core.decode import convert
from console.host.protocol import MAX_RESPONSE_BYTES
from console.readmodel.snapshot import SNAPSHOT_SCHEMA, Snapshot
from tests.host.test_socket_priority import serve

CONFIG = HostConfig(loop=[LoopConfig(id=f"l{n}", command=["true"], interval_seconds=60.0 + n) for n in range(30)])


def frames(path, frame: dict[str, Any], count: int = 1) -> list[dict[str, Any]]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(30)
        sock.connect(str(path))
        sock.sendall(json.dumps(frame).encode() + b"\n")
        lines = sock.makefile("rb")
        return [json.loads(lines.readline()) for _ in range(count)]


def schema1_reader(data: object) -> Snapshot:
    """How a loopctl before schema 2 read a snapshot (its Snapshot.from_dict)."""
    return convert(Snapshot, data)


async def test_a_client_that_names_no_schema_gets_lists_of_objects_it_reads(shared_dir):
    engine, server, paths = await serve(shared_dir, CONFIG)
    try:
        engine.store.transition("loop", "l3", "active", "an event to carry")
        assert server.publisher is not None
        server.publisher.publish_now()  # what is read is the schema, not how fresh: the state's version
        old = (await asyncio.to_thread(frames, paths.socket, {"id": 1, "op": "snapshot"}))[0]["snapshot"]
        new = (await asyncio.to_thread(frames, paths.socket,
                                       {"id": 1, "op": "snapshot", "schema": SNAPSHOT_SCHEMA}))[0]["snapshot"]
        assert old["schema"] == 1 and isinstance(old["loops"], list) and isinstance(old["loops"][0], dict)
        assert new["schema"] == 2 and set(new["loops"]) == {"columns", "rows"}
        read_old, read_new = schema1_reader(old), Snapshot.from_dict(new)
        assert len(read_old.loops) == 30 and read_old.events
        assert msgspec.structs.replace(read_old, schema=2) == read_new  # the same facts in both forms
        # A newer client than this engine gets the newest this engine writes.
        newer = (await asyncio.to_thread(frames, paths.socket, {"id": 1, "op": "snapshot", "schema": 7}))[0]
        assert newer["snapshot"]["schema"] == SNAPSHOT_SCHEMA
    finally:
        await server.close()
        engine.store.close()


async def test_an_old_watcher_gets_every_push_in_schema_1_and_a_new_one_in_tables(shared_dir):
    engine, server, paths = await serve(shared_dir, CONFIG)
    try:
        assert server.publisher is not None
        watchers = []
        for frame in ({"id": 1, "op": "watch"}, {"id": 2, "op": "watch", "schema": SNAPSHOT_SCHEMA}):
            reader, writer = await asyncio.open_unix_connection(str(paths.socket), limit=MAX_RESPONSE_BYTES)
            writer.write(json.dumps(frame).encode() + b"\n")
            watchers.append((reader, writer, [json.loads(await asyncio.wait_for(reader.readline(), 30))]))
        engine.store.transition("loop", "l5", "active", "pushed to both")  # after both first pushes
        server.publisher.publish_now()
        for reader, _writer, got in watchers:
            got.append(json.loads(await asyncio.wait_for(reader.readline(), 30)))
        (_, _, old), (_, _, new) = watchers
        assert [f["snapshot"]["schema"] for f in old] == [1, 1]
        assert all(isinstance(f["snapshot"]["loops"], list) for f in old)
        assert [f["snapshot"]["schema"] for f in new] == [2, 2]
        assert schema1_reader(old[-1]["snapshot"]).events[0].reason == "pushed to both"
        assert old[-1]["version"] == new[-1]["version"] == engine.changes.version
        for _reader, writer, _got in watchers:
            writer.close()
    finally:
        await server.close()
        engine.store.close()
