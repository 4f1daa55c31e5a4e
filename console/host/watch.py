"""The async side of talking to the owner: `watch` (a snapshot now and after every change),
`EarlyWatch` (the same watch opened on a thread before the event loop exists) and `arequest`
(actions from the console)."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

from console.core.decode import DecodeError
from console.core.errors import OwnerUnavailable
from console.host.client import DEFAULT_TIMEOUT, exchange
from console.host.protocol import MAX_RESPONSE_BYTES, decode_line, encode_line
from console.readmodel.snapshot import SNAPSHOT_SCHEMA, Snapshot

# Each says the newest snapshot schema this loopctl reads: an engine answers a client that says none
# (a loopctl before schema 2) in schema 1.
WATCH = {"id": 1, "op": "watch", "schema": SNAPSHOT_SCHEMA}
SNAPSHOT = {"id": 1, "op": "snapshot", "schema": SNAPSHOT_SCHEMA}
T = TypeVar("T")


def watch(socket_path: Path, early: EarlyWatch | None = None) -> AsyncGenerator[Snapshot, None]:
    """Yield the owner's snapshot now and after every change; return when the owner goes away.
    With `early`, the connection it opened is carried on (its first snapshot is yielded first)."""
    return watch_frames(socket_path, _read_snapshot, early)


def _read_snapshot(line: bytes) -> Snapshot:
    return snapshot_of(decode_line(line))


async def watch_frames(socket_path: Path, read: Callable[[bytes], T],
                       early: EarlyWatch | None = None) -> AsyncGenerator[T | Snapshot, None]:
    """The watch's lines as `read` makes them (a snapshot, or a push held encoded until it is drawn);
    with `early`, its first snapshot and then its connection."""
    if early is None:
        reader, writer = await asyncio.open_unix_connection(os.fspath(socket_path), limit=MAX_RESPONSE_BYTES)
        writer.write(encode_line(WATCH))
    else:
        yield await early.first_snapshot()
        reader, writer = await early.stream()
    try:
        await writer.drain()
        while True:
            try:
                line = await reader.readline()
            except (ConnectionError, ValueError):
                return
            if not line:
                return
            yield read(line)
    finally:
        writer.close()


def snapshot_of(message: dict[str, Any]) -> Snapshot:
    if not message.get("ok"):
        err = message.get("error", {})
        raise OwnerUnavailable(f"the engine refused to be watched: {err.get('message', err)}")
    if "snapshot" not in message:
        raise DecodeError("snapshot", "a snapshot")
    return Snapshot.from_dict(message["snapshot"])


class EarlyWatch:
    """The watch opened, and its first snapshot read, on a thread while the console imports its UI
    library (about half a second on a small host): the first frame then has the owner's data in hand
    instead of waiting for it after start-up. The stream carries on over the same connection, so the
    owner builds that first snapshot once."""

    def __init__(self, socket_path: Path, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.socket_path = socket_path
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._rest = b""  # bytes read past the first line: the start of the next snapshot
        self._first: Snapshot | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._open, name="loopctl-early-watch", daemon=True)
        self._thread.start()

    def _open(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            self._connect(sock)
            answer, self._rest = exchange(sock, self.socket_path, WATCH, self.timeout)
            self._first = snapshot_of(answer)
            sock.setblocking(False)
            self._sock = sock
        except BaseException as exc:  # handed to the event loop's side, raised there
            sock.close()
            self._error = exc

    def _connect(self, sock: socket.socket) -> None:
        """An engine that has just taken the lease binds its socket moments later: this runs that early,
        so it retries for a while before it calls the engine gone."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                sock.connect(os.fspath(self.socket_path))
                return
            except (FileNotFoundError, ConnectionRefusedError):
                if time.monotonic() >= deadline:
                    raise OwnerUnavailable(f"no engine answers on {self.socket_path}: it has stopped") from None
                time.sleep(0.05)

    def ready(self) -> Snapshot | None:
        """The first snapshot if it has already arrived; never waits."""
        return None if self._thread.is_alive() else self._first

    async def first_snapshot(self) -> Snapshot:
        if self._thread.is_alive():
            await asyncio.to_thread(self._thread.join)
        if self._error is not None:
            raise self._error
        assert self._first is not None
        return self._first

    async def stream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """The connection as asyncio streams, with whatever was read past the first line fed first."""
        assert self._sock is not None, "first_snapshot() comes first"
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=MAX_RESPONSE_BYTES, loop=loop)
        reader.feed_data(self._rest)
        transport, protocol = await loop.create_unix_connection(
            lambda: asyncio.StreamReaderProtocol(reader, loop=loop), sock=self._sock)
        self._sock = None  # the transport owns it now
        return reader, asyncio.StreamWriter(transport, protocol, reader, loop)

    def close(self) -> None:
        """For a console that never ran its feed: the connection must not outlive it."""
        self._thread.join()
        if self._sock is not None:
            self._sock.close()


async def arequest(socket_path: Path, op: str, *, timeout: float = DEFAULT_TIMEOUT, **fields: Any) -> dict[str, Any]:
    """Async request/response for the TUI (actions sent to another owner)."""
    async def exchange() -> dict[str, Any]:
        reader, writer = await asyncio.open_unix_connection(os.fspath(socket_path), limit=MAX_RESPONSE_BYTES)
        try:
            writer.write(encode_line({"id": 1, "op": op, **fields}))
            await writer.drain()
            line = await reader.readline()
        finally:
            writer.close()
        if not line:
            raise OwnerUnavailable(f"the engine on {socket_path} closed the connection without answering")
        return decode_line(line)

    try:
        async with asyncio.timeout(timeout):
            return await exchange()
    except TimeoutError:
        raise OwnerUnavailable(f"the engine on {socket_path} did not answer within {timeout:g} s") from None
    except (FileNotFoundError, ConnectionRefusedError):
        raise OwnerUnavailable(f"no engine answers on {socket_path}: it has stopped") from None


async def atail(socket_path: Path, target: str, lines: int, *, follow: bool,
                timeout: float = DEFAULT_TIMEOUT) -> AsyncIterator[dict[str, Any]]:
    """The `tail` op's answers for the console, until its `end` or a refusal (yielded, then done).
    The first answer has a deadline; a followed log may then stay quiet as long as it likes."""
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_unix_connection(os.fspath(socket_path), limit=MAX_RESPONSE_BYTES)
    except TimeoutError:
        raise OwnerUnavailable(f"the engine on {socket_path} did not answer within {timeout:g} s") from None
    except (FileNotFoundError, ConnectionRefusedError):
        raise OwnerUnavailable(f"no engine answers on {socket_path}: it has stopped") from None
    try:
        writer.write(encode_line({"id": 1, "op": "tail", "target": target, "lines": lines, "follow": follow}))
        await writer.drain()
        first = True
        while True:
            try:
                if first:
                    async with asyncio.timeout(timeout):
                        line = await reader.readline()
                else:
                    line = await reader.readline()
            except TimeoutError:
                raise OwnerUnavailable(f"the engine on {socket_path} did not answer within {timeout:g} s") from None
            except (ConnectionError, ValueError) as exc:
                raise OwnerUnavailable(f"the engine on {socket_path} hung up ({exc})") from None
            if not line:
                raise OwnerUnavailable(f"the engine on {socket_path} hung up: it may have stopped")
            first = False
            answer = decode_line(line)
            yield answer
            if not answer.get("ok") or answer.get("end"):
                return
    finally:
        writer.close()
