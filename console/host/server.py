"""The owner's Unix socket (`engine.sock`, mode 0600): observers on the same host read snapshots,
watch for changes and send actions. Peers must be our uid or root (SO_PEERCRED).

Served at a fixed priority (issue 19): the socket has a thread and an event loop of its own, so
accepting, `hello`, `snapshot` and `watch` never wait behind what the engine's loop is doing (1,000
loops firing: spawns, commits, builds). They are answered from the latest published encoding
(published.py); a request that finds the state moved on asks for a build, and on a quiet host waits
for it at most `BUILD_WAIT` (a busy one answers from the latest at once: freshness.py). What only the
engine may do (actions, the event log, a log's tail) is handed to its loop (on_loop.py). The limits
are the socket's own, on its thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import struct
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from console.core.actions import ActionError
from console.core.changes import ChangeFeed
from console.core.logtail import LogChunk, split_chunk
from console.core.records import to_builtins
from console.core.waiting import cancel_and_wait, first_done
from console.host.engine import Engine
from console.host.freshness import answer_at_once
from console.host.lease import peer_allowed
from console.host.logs import plan, stream
from console.host.on_loop import on_loop
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
from console.host.published import Latest, Publisher
from console.readmodel.snapshot import SNAPSHOT_SCHEMA, events_view

log = logging.getLogger("loopctl.socket")
T = TypeVar("T")

# Documented limits (README, 'The engine socket'; [host] socket_max_connections, socket_idle_seconds).
# The cap keeps a flood of idle clients far below the systemd default of 1024 descriptors. At the cap
# the longest-idle connection waiting for a request gives way to the new one, so idle clients can
# never lock `--once` out; only when every connection is busy (watchers, requests in progress) is
# the new one told `busy` and hung up on.
MAX_CONNECTIONS = 128
IDLE_SECONDS = 30.0  # a connection that sends no complete request for this long is closed
WRITE_SECONDS = 10.0  # an answer (or a watch push) the peer does not take within this ends the connection
# A request that finds the state moved on waits this long at most for a build, then takes the latest
# published one. An idle loop builds 1,000 loops in about 35 ms; a busy one (where the wait ends
# unmet) is where `--once` has the least time to spare: 0.1 s here was most of the engine's part of
# the slowest samples (bench_scale --phases).
BUILD_WAIT = 0.05
FLUSH_SECONDS = 0.5  # at close, how long watchers get to receive the last version


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
        self.tail_poll_seconds: float | None = None  # tests poll faster than the default
        self.publisher: Publisher | None = None
        self._engine_loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ended: asyncio.Future[None] | None = None  # on the engine's loop: the socket's thread is done
        # The rest lives on the socket's thread and its loop only.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._published = ChangeFeed()  # bumped on the socket's loop each time a version is published
        self._connections: set[asyncio.Task[None]] = set()
        self._idle_since: dict[asyncio.Task[None], float] = {}  # connections waiting for a request
        self._watch_sent: dict[asyncio.Task[None], int] = {}  # last version pushed to each watcher
        self._schema1: tuple[int, msgspec.Raw] | None = None  # the latest version in schema 1, once asked
        self._tails = 0  # connections following a log right now
        self._close_asked = threading.Event()

    @property
    def thread(self) -> threading.Thread | None:
        return self._thread

    async def start(self) -> None:
        # Only the lease holder gets here, so an existing socket is a dead engine's: replace it.
        # Bind under a temporary name, restrict it, then rename: no moment where it is wider than 0600.
        # The temporary name is never longer than `engine.sock` (".s" + a pid of at most 7 digits), so a
        # state dir that passed the socket-length check in paths.py can always bind it.
        # The first build before the socket exists: if it raises, no socket is left that nobody answers.
        publisher = Publisher(self.engine)
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
        except BaseException:
            sock.close()
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise
        self._engine_loop = asyncio.get_running_loop()
        self.publisher = publisher  # its first build made: the thread never starts without one
        self.publisher.start()
        ready = self._engine_loop.create_future()
        self._ended = self._engine_loop.create_future()
        self._thread = threading.Thread(target=self._run_thread, args=(sock, ready), name="loopctl-socket",
                                        daemon=True)  # daemon: a crashed engine's process still exits
        self._thread.start()
        try:
            await ready
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """The last version published (the recorded stop, say) and received by the watchers, then the
        thread and its connections end and the socket file goes."""
        if self._thread is None or self.publisher is None or self._ended is None:
            return
        try:
            self.publisher.publish_now()
        except Exception:
            log.exception("the last snapshot before closing the socket could not be built")
        try:
            await self.publisher.stop()
        finally:  # the thread and the socket file end whatever the publisher's end was
            self._close_asked.set()  # seen by a thread that has not made its stop event yet (a cancelled start)
            loop, stopping = self._loop, self._stopping
            if loop is not None and stopping is not None:
                with contextlib.suppress(RuntimeError):  # its loop has ended already
                    loop.call_soon_threadsafe(stopping.set)
            await self._ended
            self._thread.join()
            self._thread = None
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    # -- the socket's thread ---------------------------------------------------------------------------

    def _run_thread(self, sock: socket.socket, ready: asyncio.Future[None]) -> None:
        loop = asyncio.new_event_loop()  # never set as the thread's loop: child watchers stay the engine's
        self._loop = loop
        try:
            loop.run_until_complete(self._serve_thread(sock, ready))
            loop.run_until_complete(loop.shutdown_asyncgens())
        except BaseException as exc:
            log.exception("the engine socket's thread failed")
            self._tell_engine(_settle, ready, exc)
        finally:
            loop.close()
            sock.close()
            self._tell_engine(_settle, self._ended, None)

    def _tell_engine(self, callback: Callable[..., object], *args: Any) -> None:
        assert self._engine_loop is not None
        with contextlib.suppress(RuntimeError):  # the engine's loop has closed: nobody is waiting
            self._engine_loop.call_soon_threadsafe(callback, *args)

    async def _serve_thread(self, sock: socket.socket, ready: asyncio.Future[None]) -> None:
        assert self.publisher is not None
        loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        if self._close_asked.is_set():  # close() came before this event existed
            self._stopping.set()
        published = self.publisher.published

        def on_publish(_latest: Latest) -> None:  # on the engine's thread
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._published.bump)

        published.listen(on_publish)
        try:
            server = await asyncio.start_unix_server(self._handle, sock=sock, limit=MAX_REQUEST_BYTES)
        except BaseException as exc:
            published.unlisten(on_publish)
            self._tell_engine(_settle, ready, exc)
            return
        self._tell_engine(_settle, ready, None)
        try:
            await self._stopping.wait()
            server.close()
            await self._flush_watchers()
            for task in list(self._connections):
                task.cancel()
            if self._connections:
                await asyncio.gather(*self._connections, return_exceptions=True)
            await server.wait_closed()
        finally:
            published.unlisten(on_publish)

    async def _flush_watchers(self) -> None:
        """Let every watcher receive the newest snapshot (say, the recorded stop) before hanging up."""
        assert self.publisher is not None
        published = self.publisher.published
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(FLUSH_SECONDS):
                while any(sent < published.latest.version for sent in self._watch_sent.values()):
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
        except asyncio.CancelledError:
            pass  # made room for another (evicted), or the socket is closing: an end like a hang-up
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
                await self._watch(rid, request.schema, reader, writer)
                return
            if op == "tail":
                await self._tail(rid, request, reader, writer)
                return
            await self._send(writer, await self._answer(rid, op, request))

    async def _answer(self, rid: object, op: str, request: Request) -> dict[str, Any]:
        assert self.publisher is not None
        if op == "hello":
            return ok(rid, protocol=PROTOCOL_VERSION, engine=self.publisher.published.latest.engine)
        if op == "snapshot":
            latest = await self._fresh()
            return ok(rid, snapshot=self._encoded(latest, request.schema), version=latest.version)
        if op == "action":
            return await self._on_engine(self._act(rid, request))
        if op == "events":
            return await self._on_engine(self._events(rid, request))
        return error(rid, "unknown_op", f"unknown op {op!r}: use one of {', '.join(OPS)}")

    async def _fresh(self) -> Latest:
        """The latest published version, or the one built for this request if it comes within
        BUILD_WAIT: freshness.py decides which (a busy host answers at once from a version at most
        FRESH_SECONDS old; a quiet one waits the millisecond its build takes)."""
        assert self.publisher is not None
        published = self.publisher.published
        wanted = self.engine.changes.version  # a plain int, read across threads
        latest = published.latest
        if latest.version >= wanted:
            return latest
        engine = self.engine  # what decides is read before the build is asked for (it changes with one)
        # `acted` compares versions, not the engine's ask for a build: the engine's thread may build (which
        # clears the ask) and publish between this thread's reads, and `latest` is then from before it.
        at_once = answer_at_once(age=time.monotonic() - latest.built_at, build_cpu=engine.build_cpu,
                                 due_in=engine.build_due_in(), acted=latest.version < engine.acted_version)
        self.publisher.want()  # answered now or not, the next request and every watcher get a newer one
        if at_once:
            return published.latest  # `latest`, or one published since: never older
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(BUILD_WAIT):
                while True:
                    seen = self._published.version  # before the check: a publish after it bumps past it
                    if published.latest.version >= wanted:
                        break
                    await self._published.wait_newer(seen)
        return published.latest

    async def _on_engine(self, coro: Coroutine[Any, Any, T]) -> T:
        assert self._engine_loop is not None
        return await on_loop(self._engine_loop, coro)

    # -- on the engine's loop ----------------------------------------------------------------------

    async def _act(self, rid: object, request: Request) -> dict[str, Any]:
        assert self.publisher is not None
        try:
            result = await self.engine.act(request.verb, request.target)
        except ActionError as exc:
            return error(rid, exc.code, exc.message)
        finally:
            try:  # before the answer: whoever acted reads a snapshot that shows it
                self.publisher.publish_now()
            except Exception:
                log.exception("building the snapshot after an action failed")
        return ok(rid, result=result)

    async def _events(self, rid: object, request: Request) -> dict[str, Any]:
        """A page of the event log; the filters were typed at the boundary (a wrong one: bad_request)."""
        limit = max(1, min(request.limit, MAX_EVENTS_PAGE))
        page = self.engine.store.events_page(kind=request.kind, name=request.name, since=request.since,
                                             until=request.until, before=request.before, limit=limit)
        events = events_view(page)  # the records themselves: the observer decodes them as EventView
        return ok(rid, events=events, next=page[-1].event_id if len(page) == limit else None)

    # -- back on the socket's thread -------------------------------------------------------------------

    async def _watch(self, rid: object, schema: int, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
        """Push the snapshot now and each newer version published, until the peer hangs up. A watcher
        that falls behind gets the latest version, never a queue of the ones in between."""
        publisher = self.publisher
        assert publisher is not None
        task = asyncio.current_task()
        assert task is not None
        hangup = asyncio.ensure_future(_until_eof(reader))
        publisher.watchers += 1  # only this thread writes it; the publisher builds while it is not 0
        publisher.want()
        try:
            latest = await self._fresh()
            while True:
                await self._send(writer, ok(rid, snapshot=self._encoded(latest, schema), version=latest.version))
                self._watch_sent[task] = latest.version
                while True:
                    seen = self._published.version
                    latest = publisher.published.latest
                    if latest.version > self._watch_sent[task]:
                        break
                    newer = asyncio.ensure_future(self._published.wait_newer(seen))
                    try:
                        await first_done(newer, hangup)
                    finally:
                        newer.cancel()  # done, or a hangup or the socket closing came first
                    if hangup.done():
                        return
        finally:
            publisher.watchers -= 1
            hangup.cancel()

    def _encoded(self, latest: Latest, schema: int) -> msgspec.Raw:
        """The version's bytes in the newest schema the client reads: its one encoding for every
        client of this loopctl's schema; schema 1 (a loopctl from before tables) encoded once per
        version on this thread, for all such clients."""
        if schema >= SNAPSHOT_SCHEMA:
            return latest.encoded
        if self._schema1 is None or self._schema1[0] != latest.version:
            self._schema1 = (latest.version, msgspec.Raw(latest.snapshot.to_schema1_json()))
        return self._schema1[1]

    async def _send(self, writer: asyncio.StreamWriter, obj: dict[str, Any]) -> None:
        """Raises TimeoutError when the peer does not take it within `write_seconds`."""
        writer.write(encode_line(obj))
        async with asyncio.timeout(self.write_seconds):
            await writer.drain()

    async def _tail(self, rid: object, request: Request, reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter) -> None:
        """A thing's log: its history, then (following) each new chunk, then `end`. The connection is
        the tail's: it ends with it, or when the peer hangs up. The log is read on the engine's loop
        (what it reads is the engine's: a sidecar's files, whether a run has finished), a step at a
        time; what it yields is sent from here."""
        follow = request.follow
        try:
            log_plan = await self._on_engine(_call(plan, self.engine, request.target))
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
            step: asyncio.Future[LogChunk] | None = None
            try:
                while True:
                    step = asyncio.ensure_future(self._on_engine(_anext(chunks)))
                    await first_done(step, hangup)
                    if hangup.done():
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
                # A step still going is ended and awaited (on the engine's loop too) before the generator
                # is closed beneath it. A cancel of this handler goes on up from there: the generator
                # was ended by that cancel inside it.
                if step is not None:
                    with contextlib.suppress(StopAsyncIteration, ActionError):
                        await cancel_and_wait(step)
                await self._on_engine(chunks.aclose())
            await self._send(writer, ok(rid, end=True))
        finally:
            self._tails -= follow
            hangup.cancel()


async def _call(fn: Callable[..., Any], *args: Any) -> Any:
    """A plain call, as a coroutine for the engine's loop."""
    return fn(*args)


async def _anext(chunks: AsyncIterator[LogChunk]) -> LogChunk:
    return await anext(chunks)


def _settle(future: asyncio.Future[None], exc: BaseException | None) -> None:
    if future.done():
        return
    if exc is None:
        future.set_result(None)
    else:
        future.set_exception(exc)


async def _until_eof(reader: asyncio.StreamReader) -> None:
    while await reader.read(4096):
        pass  # a watcher has nothing more to say; anything it sends is dropped


