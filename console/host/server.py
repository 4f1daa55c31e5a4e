"""The owner's Unix socket (`engine.sock`, mode 0600): observers on the same host read snapshots,
watch for changes and send actions. Peers must be our uid or root (SO_PEERCRED).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import struct
from pathlib import Path
from typing import Any

from console.core.actions import ActionError
from console.core.logtail import split_chunk
from console.core.records import to_builtins
from console.core.waiting import first_done
from console.host.engine import Engine
from console.host.lease import peer_allowed
from console.host.logs import plan, stream
from console.host.protocol import (
    MAX_EVENTS_PAGE,
    MAX_REQUEST_BYTES,
    MAX_TAILS,
    OPS,
    PROTOCOL_VERSION,
    ProtocolError,
    decode_line,
    encode_line,
    error,
    ok,
)

log = logging.getLogger("loopctl.socket")


def peer_credentials(sock: socket.socket) -> tuple[int, int, int]:
    """(pid, uid, gid) of the process at the other end."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", raw)
    return pid, uid, gid


class SocketServer:
    def __init__(self, path: Path, engine: Engine) -> None:
        self.path = path
        self.engine = engine
        self._server: asyncio.AbstractServer | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._watch_sent: dict[asyncio.Task[None], int] = {}  # last version pushed to each watcher
        self._tails = 0  # connections following a log right now
        self.tail_poll_seconds: float | None = None  # tests poll faster than the default

    async def start(self) -> None:
        # Only the lease holder gets here, so an existing socket is a dead engine's: replace it.
        # Bind under a temporary name, restrict it, then rename: no moment where it is wider than 0600.
        # The temporary name is never longer than `engine.sock` (".s" + a pid of at most 7 digits), so a
        # state dir that passed the socket-length check in paths.py can always bind it.
        tmp = self.path.with_name(f".s{os.getpid()}")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(str(tmp))
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
            sock.listen(64)
            sock.setblocking(False)
            self._server = await asyncio.start_unix_server(self._handle, sock=sock, limit=MAX_REQUEST_BYTES)
        except BaseException:
            sock.close()
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise

    async def close(self) -> None:
        if self._server is None:
            return
        self._server.close()
        await self._flush_watchers()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _flush_watchers(self, timeout: float = 0.5) -> None:
        """Let every watcher receive the newest snapshot (say, the recorded stop) before hanging up."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline and any(
            sent < self.engine.changes.version for sent in self._watch_sent.values()
        ):
            await asyncio.sleep(0.01)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            _pid, uid, _gid = peer_credentials(writer.get_extra_info("socket"))
            if not peer_allowed(uid):
                log.warning("refused socket peer uid %d: not this engine's uid nor root", uid)
                # Take its request off the socket first (briefly): closing on a peer still sending makes it
                # fail with a broken pipe instead of reading the refusal.
                with contextlib.suppress(TimeoutError, ValueError, asyncio.LimitOverrunError):
                    async with asyncio.timeout(1.0):
                        await reader.readline()
                await _send(writer, error(None, "forbidden", f"uid {uid} may not talk to this engine"))
                return
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._connections.discard(task)
            self._watch_sent.pop(task, None)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                line = await reader.readline()
            except ValueError:  # the line outgrew MAX_REQUEST_BYTES
                await _send(writer, error(None, "too_large", f"requests are limited to {MAX_REQUEST_BYTES} bytes"))
                return
            if not line:
                return
            try:
                request = decode_line(line)
            except ProtocolError as exc:
                await _send(writer, error(None, exc.code, exc.message))
                continue
            rid = request.get("id")
            op = request.get("op")
            if op == "watch":
                await self._watch(rid, reader, writer)
                return
            if op == "tail":
                await self._tail(rid, request, reader, writer)
                return
            await _send(writer, await self._answer(rid, op, request))

    async def _answer(self, rid: object, op: object, request: dict[str, Any]) -> dict[str, Any]:
        if op == "hello":
            snap = self.engine.snapshot()
            return ok(rid, protocol=PROTOCOL_VERSION, engine=snap.to_dict()["engine"])
        if op == "snapshot":
            return ok(rid, snapshot=self.engine.snapshot().to_dict(), version=self.engine.changes.version)
        if op == "action":
            try:
                result = await self.engine.act(request.get("verb"), request.get("target"))
            except ActionError as exc:
                return error(rid, exc.code, exc.message)
            return ok(rid, result=result)
        if op == "events":
            return self._events(rid, request)
        return error(rid, "unknown_op", f"unknown op {op!r}: use one of {', '.join(OPS)}")

    def _events(self, rid: object, request: dict[str, Any]) -> dict[str, Any]:
        """A page of the event log; each filter checked at the boundary, a wrong one named."""
        filters: dict[str, Any] = {}
        for key, types in (("kind", (str,)), ("name", (str,)), ("since", (int, float)), ("until", (int, float)),
                           ("before", (int,)), ("limit", (int,))):
            value = request.get(key)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, types):
                kind = "a string" if types == (str,) else "a number"
                return error(rid, "bad_request", f"events: {key} must be {kind}, not {value!r}")
            filters[key] = value
        limit = max(1, min(int(filters.pop("limit", 100)), MAX_EVENTS_PAGE))
        page = self.engine.store.events_page(limit=limit, **filters)
        events = [{"id": t.event_id, "at": t.at, "kind": t.kind, "name": t.name, "previous": t.previous,
                   "new": t.new, "reason": t.reason} for t in page]
        return ok(rid, events=events, next=page[-1].event_id if len(page) == limit else None)

    async def _watch(self, rid: object, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Push the snapshot now and after every change, until the peer hangs up."""
        changes = self.engine.changes
        task = asyncio.current_task()
        assert task is not None
        hangup = asyncio.ensure_future(_until_eof(reader))
        try:
            while True:
                seen = changes.version
                await _send(writer, ok(rid, snapshot=self.engine.snapshot().to_dict(), version=seen))
                self._watch_sent[task] = seen
                newer = asyncio.ensure_future(changes.wait_newer(seen))
                await first_done(newer, hangup)
                if hangup.done():
                    newer.cancel()
                    return
        finally:
            hangup.cancel()


    async def _tail(self, rid: object, request: dict[str, Any], reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter) -> None:
        """A thing's log: its history, then (following) each new chunk, then `end`. The connection is
        the tail's: it ends with it, or when the peer hangs up."""
        follow = request.get("follow") is True
        try:
            log_plan = plan(self.engine, request.get("target"))
        except ActionError as exc:
            await _send(writer, error(rid, exc.code, exc.message))
            return
        if follow and self._tails >= MAX_TAILS:
            await _send(writer, error(rid, "busy", f"{MAX_TAILS} consoles already follow logs here: close one, "
                                                   f"or read without following"))
            return
        self._tails += follow
        hangup = asyncio.ensure_future(_until_eof(reader))
        try:
            poll = {"poll_seconds": self.tail_poll_seconds} if self.tail_poll_seconds else {}
            chunks = stream(log_plan, request.get("lines", 100), follow=follow, **poll)
            try:
                while True:
                    step = asyncio.ensure_future(anext(chunks))
                    await first_done(step, hangup)
                    if hangup.done():
                        step.cancel()  # and awaited, before the generator is closed beneath it
                        with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration, ActionError):
                            await step
                        return
                    try:
                        chunk = step.result()
                    except StopAsyncIteration:
                        break
                    for piece in split_chunk(chunk):
                        await _send(writer, ok(rid, chunk=to_builtins(piece)))
            except ActionError as exc:
                await _send(writer, error(rid, exc.code, exc.message))
                return
            finally:
                await chunks.aclose()
            await _send(writer, ok(rid, end=True))
        finally:
            self._tails -= follow
            hangup.cancel()


async def _until_eof(reader: asyncio.StreamReader) -> None:
    while await reader.read(4096):
        pass  # a watcher has nothing more to say; anything it sends is dropped


async def _send(writer: asyncio.StreamWriter, obj: dict[str, Any]) -> None:
    writer.write(encode_line(obj))
    await writer.drain()
