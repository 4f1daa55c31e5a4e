"""The async side of talking to the owner: `watch` (a snapshot now and after every change) and
`arequest` (actions from the console)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from console.engine.client import DEFAULT_TIMEOUT
from console.engine.errors import OwnerUnavailable
from console.engine.protocol import MAX_RESPONSE_BYTES, decode_line, encode_line
from console.engine.snapshot import Snapshot


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
        async with asyncio.timeout(timeout):
            return await exchange()
    except TimeoutError:
        raise OwnerUnavailable(f"the engine on {socket_path} did not answer within {timeout:g} s") from None
    except (FileNotFoundError, ConnectionRefusedError):
        raise OwnerUnavailable(f"no engine answers on {socket_path}: it has stopped") from None
