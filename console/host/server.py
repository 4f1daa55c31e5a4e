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
from console.core.waiting import cancel_and_wait, first_done
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
    Request,
    decode_request,
    encode_line,
    error,
    ok,
)
from console.readmodel.snapshot import events_view

log = logging.getLogger("loopctl.socket")

# Documented limits (README, 'The engine socket'; [host] socket_max_connections, socket_idle_seconds).
# The cap keeps a flood of idle clients far below the systemd default of 1024 descriptors. At the cap
# the longest-idle connection waiting for a request gives way to the new one, so idle clients can
# never lock `--once` out; only when every connection is busy (watchers, requests in progress) is
# the new one told `busy` and hung up on.
MAX_CONNECTIONS = 128
IDLE_SECONDS = 30.0  # a connection that sends no complete request for this long is closed
WRITE_SECONDS = 10.0  # an answer (or a watch push) the peer does not take within this ends the connection


def peer_credentials(sock: socket.socket) -> tuple[int, int, int]:
    """(pid, uid, gid) of the process at the other end."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", raw)
    return pid, uid, gid


class SocketServer:
    def __init__(self, path: Path, engine: Engine, *, max_connections: int = MAX_CONNECTIONS,
                 idle_seconds: float = IDLE_SECONDS, write_seconds: float = WRITE_SECONDS) -> None:
        self.path = path
        self.engine = engine
        self.max_connections = max_connections
        self.idle_seconds = idle_seconds
        self.write_seconds = write_seconds
        self.refused_busy = 0  # connections turned away at the cap, since start
        self._server: asyncio.AbstractServer | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._idle_since: dict[asyncio.Task[None], float] = {}  # connections waiting for a request
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
            sock.listen(256)  # a burst queues; what is accepted past the cap is told `busy`
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
        if len(self._connections) >= self.max_connections and not self._evict_idlest():
            self.refused_busy += 1
            # No wait for the peer to read: a refusal must cost the engine nothing it could be made to hold.
            writer.write(encode_line(error(None, "busy", f"the engine serves {self.max_connections} connections "
                                                         f"already (its cap): try again")))
            writer.close()
            return
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
                await self._send(writer, error(None, "forbidden", f"uid {uid} may not talk to this engine"))
                return
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except TimeoutError:  # a peer that does not read what it asked for: the connection ends
            log.info("socket peer did not read its answer within %g s: closed", self.write_seconds)
        finally:
            self._connections.discard(task)
            self._idle_since.pop(task, None)
            self._watch_sent.pop(task, None)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _evict_idlest(self) -> bool:
        """Close the connection that has waited longest for a request, to make room. False when none waits."""
        if not self._idle_since:
            return False
        idlest = min(self._idle_since, key=self._idle_since.__getitem__)
        self._idle_since.pop(idlest)
        self._connections.discard(idlest)  # counted out now: its handler ends on its next turn
        idlest.cancel()
        return True

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        while True:
            self._idle_since[task] = loop.time()
            try:
                async with asyncio.timeout(self.idle_seconds):
                    line = await reader.readline()
            except TimeoutError:
                await self._send(writer, error(None, "idle", f"no request within {self.idle_seconds:g} s: closed"))
                return
            except ValueError:  # the line outgrew MAX_REQUEST_BYTES
                await self._send(writer, error(None, "too_large",
                                               f"requests are limited to {MAX_REQUEST_BYTES} bytes"))
                return
            finally:
                self._idle_since.pop(task, None)
            if not line:
                return
            try:
                request = decode_request(line)
            except ProtocolError as exc:
                await self._send(writer, error(exc.request_id, exc.code, exc.message))
                continue
            rid, op = request.id, request.op
            if op == "watch":
                await self._watch(rid, reader, writer)
                return
            if op == "tail":
                await self._tail(rid, request, reader, writer)
                return
            await self._send(writer, await self._answer(rid, op, request))

    async def _answer(self, rid: object, op: str, request: Request) -> dict[str, Any]:
        if op == "hello":
            snap = self.engine.snapshot()
            return ok(rid, protocol=PROTOCOL_VERSION, engine=snap.engine)
        if op == "snapshot":
            version, encoded = self.engine.encoded_snapshot()
            return ok(rid, snapshot=encoded, version=version)
        if op == "action":
            try:
                result = await self.engine.act(request.verb, request.target)
            except ActionError as exc:
                return error(rid, exc.code, exc.message)
            return ok(rid, result=result)
        if op == "events":
            return self._events(rid, request)
        return error(rid, "unknown_op", f"unknown op {op!r}: use one of {', '.join(OPS)}")

    def _events(self, rid: object, request: Request) -> dict[str, Any]:
        """A page of the event log; the filters were typed at the boundary (a wrong one: bad_request)."""
        limit = max(1, min(request.limit, MAX_EVENTS_PAGE))
        page = self.engine.store.events_page(kind=request.kind, name=request.name, since=request.since,
                                             until=request.until, before=request.before, limit=limit)
        events = events_view(page)  # the records themselves: the observer decodes them as EventView
        return ok(rid, events=events, next=page[-1].event_id if len(page) == limit else None)

    async def _watch(self, rid: object, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Push the snapshot now and after every change, until the peer hangs up."""
        changes = self.engine.changes
        task = asyncio.current_task()
        assert task is not None
        hangup = asyncio.ensure_future(_until_eof(reader))
        try:
            while True:
                seen, encoded = self.engine.encoded_snapshot()
                await self._send(writer, ok(rid, snapshot=encoded, version=seen))
                self._watch_sent[task] = seen
                newer = asyncio.ensure_future(changes.wait_newer(seen))
                await first_done(newer, hangup)
                if hangup.done():
                    newer.cancel()
                    return
                # Changes that come fast are pushed together: the latest version once the build spacing
                # allows, never a queue of the versions in between.
                spacing = asyncio.ensure_future(asyncio.sleep(self.engine.build_due_in()))
                await first_done(spacing, hangup)
                if hangup.done():
                    spacing.cancel()
                    return
        finally:
            hangup.cancel()

    async def _send(self, writer: asyncio.StreamWriter, obj: dict[str, Any]) -> None:
        """Raises TimeoutError when the peer does not take it within `write_seconds`."""
        writer.write(encode_line(obj))
        async with asyncio.timeout(self.write_seconds):
            await writer.drain()

    async def _tail(self, rid: object, request: Request, reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter) -> None:
        """A thing's log: its history, then (following) each new chunk, then `end`. The connection is
        the tail's: it ends with it, or when the peer hangs up."""
        follow = request.follow
        try:
            log_plan = plan(self.engine, request.target)
        except ActionError as exc:
            await self._send(writer, error(rid, exc.code, exc.message))
            return
        if follow and self._tails >= MAX_TAILS:
            await self._send(writer, error(rid, "busy", f"{MAX_TAILS} consoles already follow logs here: close one, "
                                                   f"or read without following"))
            return
        self._tails += follow
        hangup = asyncio.ensure_future(_until_eof(reader))
        try:
            poll = {"poll_seconds": self.tail_poll_seconds} if self.tail_poll_seconds else {}
            chunks = stream(log_plan, request.lines, follow=follow, **poll)
            try:
                while True:
                    step = asyncio.ensure_future(anext(chunks))
                    await first_done(step, hangup)
                    if hangup.done():
                        # Ended and awaited before the generator is closed beneath it; a cancel of this
                        # handler itself still goes on up (cancel_and_wait re-raises it).
                        with contextlib.suppress(StopAsyncIteration, ActionError):
                            await cancel_and_wait(step)
                        return
                    try:
                        chunk = step.result()
                    except StopAsyncIteration:
                        break
                    for piece in split_chunk(chunk):
                        await self._send(writer, ok(rid, chunk=to_builtins(piece)))
            except ActionError as exc:
                await self._send(writer, error(rid, exc.code, exc.message))
                return
            finally:
                await chunks.aclose()
            await self._send(writer, ok(rid, end=True))
        finally:
            self._tails -= follow
            hangup.cancel()


async def _until_eof(reader: asyncio.StreamReader) -> None:
    while await reader.read(4096):
        pass  # a watcher has nothing more to say; anything it sends is dropped


