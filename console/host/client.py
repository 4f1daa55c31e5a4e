"""Talking to the engine that owns the host, as an observer: one request, one answer.

Synchronous on purpose: `--once` and the CLI actions must not pay asyncio's start-up cost. The
async side (`watch`, `arequest`) for the console and standby engines is in watch.py.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from console.core.errors import OwnerUnavailable
from console.host.protocol import MAX_RESPONSE_BYTES, decode_line, encode_line

DEFAULT_TIMEOUT = 5.0


class NotPermitted(Exception):
    """The socket exists but belongs to someone else (EACCES)."""


class NoEngine(Exception):
    """No engine listens on the socket (none, or a dead engine's)."""


def request(socket_path: Path, op: str, *, timeout: float = DEFAULT_TIMEOUT, **fields: Any) -> dict[str, Any] | None:
    """One request/response. None when no engine listens (no socket, or a dead engine's socket)."""
    try:
        sock = connect(socket_path, timeout)
    except NoEngine:
        return None
    try:
        answer, _rest = exchange(sock, socket_path, {"id": 1, "op": op, **fields}, timeout)
        return answer
    finally:
        sock.close()


def connect(socket_path: Path, timeout: float) -> socket.socket:
    """A connected socket to the engine. Raises NoEngine (no socket, or a dead engine's), NotPermitted
    (another user's), or OwnerUnavailable when its queue of new connections is full."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(os.fspath(socket_path))
    except (FileNotFoundError, ConnectionRefusedError):
        sock.close()
        raise NoEngine(str(socket_path)) from None
    except PermissionError:
        sock.close()
        raise NotPermitted(str(socket_path)) from None
    except BlockingIOError:  # EAGAIN: the listen backlog is full
        sock.close()
        raise busy(socket_path, "its queue of new connections is full") from None
    return sock


def busy(socket_path: Path, why: str) -> OwnerUnavailable:
    return OwnerUnavailable(f"the engine on {socket_path} is busy ({why}): try again in a moment")


def exchange(sock: socket.socket, socket_path: Path, message: dict[str, Any],
             timeout: float) -> tuple[dict[str, Any], bytes]:
    """Send one request on a connected socket and read its answer: the answer, and whatever arrived
    after it (a watch's next snapshot). A hung, busy or vanished engine is a one-line OwnerUnavailable."""
    try:
        with contextlib.suppress(ConnectionError):  # an engine at its cap hangs up at once, `busy` already sent
            sock.sendall(encode_line(message))
        line, rest = read_line(sock)
    except TimeoutError:
        raise OwnerUnavailable(
            f"the engine on {socket_path} did not answer within {timeout:g} s: it may be hung; "
            f"check `loopctl run` logs"
        ) from None
    except ConnectionError as exc:
        raise OwnerUnavailable(f"the engine on {socket_path} hung up ({exc}): try again") from None
    if line is None:
        raise OwnerUnavailable(f"the engine on {socket_path} closed the connection without answering")
    answer = decode_line(line)
    err = answer.get("error") if answer.get("ok") is False else None
    if isinstance(err, dict) and err.get("code") == "busy":
        raise busy(socket_path, str(err.get("message", "at its connection cap")))
    return answer, rest


def read_line(sock: socket.socket) -> tuple[bytes | None, bytes]:
    """One answer line (None if the engine hung up first) and whatever arrived after it."""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = sock.recv(1 << 16)
        if not chunk:
            return None, b""
        newline = chunk.find(b"\n")
        if newline >= 0:
            chunks.append(chunk[: newline + 1])
            return b"".join(chunks), chunk[newline + 1:]
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise OwnerUnavailable(f"the engine's answer exceeded {MAX_RESPONSE_BYTES} bytes")


def tail(socket_path: Path, target: str, lines: int, *, follow: bool,
         timeout: float = DEFAULT_TIMEOUT) -> Iterator[dict[str, Any]]:
    """The `tail` op's answers, one at a time, until its `end` (an `ok: false` answer is yielded and
    ends it too). Raises NoEngine, NotPermitted, or OwnerUnavailable for an engine that stops answering.
    While following, the engine may stay quiet as long as the log does: only the first answer has a
    deadline."""
    sock = connect(socket_path, timeout)
    try:
        answer, rest = exchange(sock, socket_path, {"id": 1, "op": "tail", "target": target, "lines": lines,
                                                    "follow": follow}, timeout)
        sock.settimeout(None if follow else timeout)
        buffer = bytearray(rest)
        while True:
            yield answer
            if not answer.get("ok") or answer.get("end"):
                return
            while (newline := buffer.find(b"\n")) < 0:
                if len(buffer) > MAX_RESPONSE_BYTES:
                    raise OwnerUnavailable(f"the engine's answer exceeded {MAX_RESPONSE_BYTES} bytes")
                try:
                    data = sock.recv(1 << 16)
                except TimeoutError:
                    raise OwnerUnavailable(f"the engine on {socket_path} stopped answering mid-log") from None
                if not data:
                    raise OwnerUnavailable(f"the engine on {socket_path} hung up: it may have stopped")
                buffer += data
            answer = decode_line(bytes(buffer[: newline + 1]))
            del buffer[: newline + 1]
    finally:
        sock.close()
