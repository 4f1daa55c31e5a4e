"""A hostile control plane: a real HTTP server on loopback that answers each call well (as the
reference does) until a test tells it to answer one call with a wrong shape.

It checks nothing (no DPoP, no tokens): it is the other side of the wire for the client's
boundary, not a control plane. Bodies may be streamed without end; a write to a client that hung
up simply ends that answer.
"""

from __future__ import annotations

import contextlib
import gzip
import http.server
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

# The calls, by how the server recognises them.
JOIN, TOKEN, HOST_HEARTBEAT, CONFIG, LOOP_CREATE, LOOP_HEARTBEAT, REVIVAL = (
    "join", "token", "host heartbeat", "config", "loop create", "loop heartbeat", "PoP revival")
CALLS = (JOIN, TOKEN, HOST_HEARTBEAT, CONFIG, LOOP_CREATE, LOOP_HEARTBEAT, REVIVAL)
ADMIN = "admin"


@dataclass(frozen=True)
class Shape:
    """One answer: a status, headers and a body (bytes, or a maker of chunks streamed with chunked
    encoding, called anew for each request)."""

    status: int
    body: bytes | Callable[[], Iterator[bytes]] = b""
    headers: dict[str, str] = field(default_factory=dict)

    @staticmethod
    def json(status: int, value: object, **headers: str) -> Shape:
        return Shape(status, json.dumps(value).encode(), {"Content-Type": "application/json", **headers})


DOCUMENT = {"schema": 1, "sidecar": [], "loop": [], "plugin": []}


def good(call: str, loop_id: str = "lp_remote1") -> Shape:
    """What a well-behaved control plane answers."""
    grant = {"loop_id": loop_id, "runner_token": "rt_good", "jti": "j1", "expires_at": time.time() + 3600}
    return {
        JOIN: Shape.json(201, {"host_id": "h_hostile", "refresh_token": "rf_good", "poll_interval_seconds": 60}),
        TOKEN: Shape.json(200, {"access_token": "at_good", "token_type": "DPoP", "expires_in": 3600}),
        HOST_HEARTBEAT: Shape.json(200, {"status": "online", "previous_status": "online"}),
        CONFIG: Shape(404, b'{"error": "no_remote_config", "message": "none"}'),
        LOOP_CREATE: Shape.json(201, grant),
        LOOP_HEARTBEAT: Shape.json(200, {"status": "active"}),
        REVIVAL: Shape.json(200, {"revived": True, "status": "active", **grant}),
        ADMIN: Shape.json(201, {"join_token": "jt_hostile"}),  # what the shared rigs ask the admin API
    }.get(call, Shape(404, b""))


def endless(chunk: bytes = b"x" * 65536) -> Iterator[bytes]:
    """A body that never ends (the client must stop reading at its cap)."""
    while True:
        yield chunk


def nested(depth: int = 100_000) -> bytes:
    return b"[" * depth + b"]" * depth


# The wrong shapes every call gets, whatever it is; per-call ones below.
COMMON: dict[str, Shape] = {
    "empty object": Shape.json(200, {}),
    "captive portal html": Shape(200, b"<html><body>Please log in to the hotel wifi</body></html>",
                                 {"Content-Type": "text/html"}),
    "a JSON list": Shape.json(200, [1, 2, 3]),
    "truncated JSON": Shape(200, b'{"status": "onl'),
    "gzip header, plain body": Shape(200, b'{"status": "online"}', {"Content-Encoding": "gzip"}),
    "unknown encoding": Shape(200, b'{"status": "online"}', {"Content-Encoding": "br"}),
    "endless chunked body": Shape(200, endless),
    "gzip bomb": Shape(200, gzip.compress(b" " * (8 * 1024 * 1024), 9), {"Content-Encoding": "gzip"}),
    "deeply nested": Shape(200, nested()),
    "over-long Content-Length": Shape(200, b"{}", {"Content-Length": str(2 * 1024 ** 3)}),
}
PER_CALL: dict[str, dict[str, Shape]] = {
    TOKEN: {"no access_token": Shape.json(200, {"token_type": "DPoP", "expires_in": 60}),
            "expires_in soon": Shape.json(200, {"access_token": "at_x", "token_type": "DPoP", "expires_in": "soon"}),
            "token with a newline": Shape.json(200, {"access_token": "at\nx", "expires_in": 60})},
    HOST_HEARTBEAT: {"unknown status": Shape.json(200, {"status": "on fire"})},
    LOOP_CREATE: {"no loop_id": Shape.json(201, {"runner_token": "rt_x", "jti": "j", "expires_at": 1}),
                  "loop_id escaping the path": Shape.json(201, {"loop_id": "../../admin", "runner_token": "rt"}),
                  "runner_token a number": Shape.json(201, {"loop_id": "lp_1", "runner_token": 7})},
    LOOP_HEARTBEAT: {"status not a status": Shape.json(200, {"status": "whatever"})},
    REVIVAL: {"revived without a token": Shape.json(200, {"revived": True}),
              "revived false": Shape.json(200, {"revived": False, "runner_token": "rt_x"})},
    JOIN: {"no host_id": Shape.json(201, {"refresh_token": "rf"}),
           "host_id with a quote": Shape.json(201, {"host_id": 'a"b', "refresh_token": "rf"}),
           "host_id injecting a table": Shape.json(201, {"host_id": 'a"\n[[sidecar]]\nname = "x',
                                                         "refresh_token": "rf"})},
}


def wrong_shapes(call: str) -> dict[str, Shape]:
    return {**COMMON, **PER_CALL.get(call, {})}


class HostilePlane:
    """The server; `answer(call, shape)` sets what `call` gets until `reset(call)`."""

    def __init__(self) -> None:
        self.shapes: dict[str, Shape] = {}
        self.hits: dict[str, int] = {call: 0 for call in CALLS}
        self.requests: list[tuple[str, str, str, dict[str, str]]] = []  # (call, method, url, headers)
        self.bodies: list[tuple[str, bytes]] = []  # (call, request body)
        self.lock = threading.Lock()
        plane = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self._answer()

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self._answer(self.rfile.read(length))

            def _answer(self, body: bytes = b"") -> None:
                call = plane.which(self.command, self.path, self.headers.get("Authorization"))
                with plane.lock:
                    plane.hits[call] = plane.hits.get(call, 0) + 1
                    plane.requests.append((call, self.command, f"{plane.url}{self.path}", dict(self.headers)))
                    plane.bodies.append((call, body))
                    shape = plane.shapes.get(call) or good(call)
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self._write(shape)  # a client that stopped reading (as it should) ends the answer
                self.close_connection = True

            def _write(self, shape: Shape) -> None:
                self.send_response(shape.status)
                for name, value in shape.headers.items():
                    self.send_header(name, value)
                self.send_header("Connection", "close")
                if isinstance(shape.body, bytes):
                    if "Content-Length" not in shape.headers:
                        self.send_header("Content-Length", str(len(shape.body)))
                    self.end_headers()
                    self.wfile.write(shape.body)
                    return
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for chunk in shape.body():
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.write(b"0\r\n\r\n")

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @staticmethod
    def which(method: str, path: str, authorization: str | None) -> str:
        if path.startswith("/admin/"):
            return ADMIN
        if path == "/v1/join":
            return JOIN
        if path == "/v1/token":
            return TOKEN
        if re.fullmatch(r"/v1/hosts/[^/]+/heartbeat", path):
            return HOST_HEARTBEAT
        if re.fullmatch(r"/v1/hosts/[^/]+/config", path):
            return CONFIG
        if path == "/v1/loops":
            return LOOP_CREATE
        if re.fullmatch(r"/v1/loops/[^/]+/heartbeat", path):
            return LOOP_HEARTBEAT if (authorization or "").startswith("Bearer ") else REVIVAL
        return "unknown"

    def answer(self, call: str, shape: Shape) -> None:
        with self.lock:
            self.shapes[call] = shape

    def reset(self, call: str | None = None) -> None:
        with self.lock:
            if call is None:
                self.shapes.clear()
            else:
                self.shapes.pop(call, None)

    def count(self, call: str) -> int:
        with self.lock:
            return self.hits.get(call, 0)

    def __enter__(self) -> HostilePlane:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
