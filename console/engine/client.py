"""Talking to the engine that owns the host, as an observer.

The synchronous client serves `--once` and the CLI actions (no asyncio start-up cost); the async
`watch` serves the TUI and standby engines.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from console.engine.errors import OwnerUnavailable
from console.engine.protocol import MAX_RESPONSE_BYTES, decode_line, encode_line
from console.engine.snapshot import Snapshot

DEFAULT_TIMEOUT = 5.0


class NotPermitted(Exception):
    """The socket exists but belongs to someone else (EACCES)."""


def request(socket_path: Path, op: str, *, timeout: float = DEFAULT_TIMEOUT, **fields: Any) -> dict[str, Any] | None:
    """One request/response. None when no engine listens (no socket, or a dead engine's socket)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        try:
            sock.connect(os.fspath(socket_path))
        except (FileNotFoundError, ConnectionRefusedError):
            return None
        except PermissionError:
            raise NotPermitted(str(socket_path)) from None
        try:
            sock.sendall(encode_line({"id": 1, "op": op, **fields}))
            line = _read_line(sock)
        except TimeoutError:
            raise OwnerUnavailable(
                f"the engine on {socket_path} did not answer within {timeout:g} s: it may be hung; "
                f"check `loopctl run` logs"
            ) from None
        except ConnectionError as exc:
            raise OwnerUnavailable(f"the engine on {socket_path} hung up ({exc}): try again") from None
        if line is None:
            raise OwnerUnavailable(f"the engine on {socket_path} closed the connection without answering")
        return decode_line(line)
    finally:
        sock.close()


def _read_line(sock: socket.socket) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = sock.recv(1 << 16)
        if not chunk:
            return None
        newline = chunk.find(b"\n")
        if newline >= 0:
            chunks.append(chunk[: newline + 1])
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise OwnerUnavailable(f"the engine's answer exceeded {MAX_RESPONSE_BYTES} bytes")


async def watch(socket_path: Path) -> AsyncIterator[Snapshot]:
    """Yield the owner's snapshot now and after every change; return when the owner goes away."""
    reader, writer = await asyncio.open_unix_connection(os.fspath(socket_path), limit=MAX_RESPONSE_BYTES)
    try:
        writer.write(encode_line({"id": 1, "op": "watch"}))
        await writer.drain()
        while True:
            try:
                line = await reader.readline()
            except (ConnectionError, ValueError):
                return
            if not line:
                return
            message = decode_line(line)
            if not message.get("ok"):
                err = message.get("error", {})
                raise OwnerUnavailable(f"the engine refused to be watched: {err.get('message', err)}")
            yield Snapshot.from_dict(message["snapshot"])
    finally:
        writer.close()


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
        return await asyncio.wait_for(exchange(), timeout)
    except TimeoutError:
        raise OwnerUnavailable(f"the engine on {socket_path} did not answer within {timeout:g} s") from None
    except (FileNotFoundError, ConnectionRefusedError):
        raise OwnerUnavailable(f"no engine answers on {socket_path}: it has stopped") from None
