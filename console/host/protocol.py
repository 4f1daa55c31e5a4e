"""The engine socket speaks JSON lines: one request object per line, one response object per line.

    {"id": 1, "op": "hello"}                                   -> {"id": 1, "ok": true, "engine": {...}}
    {"id": 2, "op": "snapshot", "schema": 2}                   -> {"id": 2, "ok": true, "snapshot": {...}}
    {"id": 3, "op": "watch", "schema": 2}                      -> {"id": 3, "ok": true, "snapshot": {...}} ...
    {"id": 4, "op": "action", "verb": "retry", "target": "sidecar:web"}
                                                               -> {"id": 4, "ok": true, "result": {...}}
    any failure                                                -> {"id": n, "ok": false,
                                                                   "error": {"code": "...", "message": "..."}}

    {"id": 5, "op": "tail", "target": "sidecar:web", "lines": 100, "follow": true}
                                                               -> {"id": 5, "ok": true, "chunk": {"file": "web.log",
                                                                   "lines": [...], "note": ""}} ...
                                                                  {"id": 5, "ok": true, "end": true}

    {"id": 6, "op": "events", "kind": "sidecar", "name": "web", "since": 0, "until": 9e9, "before": 812,
     "limit": 100}                                             -> {"id": 6, "ok": true, "events": [...],
                                                                   "next": 700}

A request is decoded into `Request` at the boundary: a wrong shape is one `bad_request` answer naming the
key (`request lines: expected an integer, got 'all'`), with the frame's id when it had one.
`schema` is the newest snapshot schema the client reads (none: 1, lists of objects; 2: tables).
`watch` answers with the current snapshot at once, then one more line each time something changes.
`tail` answers with a thing's last `lines` lines (at most 5000; a sidecar's previous launch's log
before its current one), then with `follow` one chunk per poll that found more, until the peer hangs
up or the run it reads has finished; `end` says nothing more comes. At most `MAX_TAILS` follow at once.
`events` answers with a page of the event log, newest first, every filter optional; `next` is the
`before` of the following page (null at the oldest). At most `MAX_EVENTS_PAGE` events a page.
"""

from __future__ import annotations

from typing import Any

import msgspec
import msgspec.json

from console.core.decode import DecodeError, decode_json
from console.core.records import View

PROTOCOL_VERSION = 1
MAX_REQUEST_BYTES = 1 << 20
MAX_RESPONSE_BYTES = 64 << 20
OPS = ("hello", "snapshot", "watch", "action", "tail", "events")
MAX_TAILS = 16
MAX_EVENTS_PAGE = 500


class ProtocolError(Exception):
    def __init__(self, code: str, message: str, request_id: int | str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id  # echoed when the frame said one, so the client can match the refusal


_encoder = msgspec.json.Encoder()


def encode_line(obj: dict[str, Any]) -> bytes:
    """A frame: records (a Snapshot, an EngineView) are encoded as they are, without a copy as dicts."""
    return _encoder.encode(obj) + b"\n"


class Request(View, frozen=True):
    """A request frame, decoded at the socket's boundary into this record (a wrong shape is one
    `bad_request` naming the key); keys it does not know are ignored, as a newer client may send them."""

    op: str
    id: int | str | None = None
    verb: str | None = None  # action
    target: str | None = None  # action, tail
    lines: int = 100  # tail: how many of the last lines first (clamped to MAX_LINES)
    follow: bool = False  # tail
    kind: str | None = None  # events: the filters, each optional
    name: str | None = None
    since: float | None = None
    until: float | None = None
    before: int | None = None  # events: the page before this event id
    limit: int = 100  # events: at most MAX_EVENTS_PAGE
    # snapshot, watch: the newest snapshot schema the client reads. A loopctl before schema 2 sends
    # none, and is answered in schema 1 (lists of objects), which it can read.
    schema: int = 1


def decode_request(line: bytes) -> Request:
    try:
        return decode_json(Request, line)
    except DecodeError as exc:
        if exc.expected == "JSON":
            raise ProtocolError("bad_request", f"not a JSON line: {exc.got}") from None
        if not exc.key:
            raise ProtocolError("bad_request", "a request must be a JSON object") from None
        raise ProtocolError("bad_request", f"request {exc}", _said_id(line)) from None


def _said_id(line: bytes) -> int | str | None:
    """The id of a JSON object whose other keys were wrong (it parsed: DecodeError came after)."""
    try:
        said = msgspec.json.decode(line)
    except (msgspec.DecodeError, RecursionError):
        return None
    rid = said.get("id") if isinstance(said, dict) else None
    return rid if isinstance(rid, int | str) and not isinstance(rid, bool) else None


def decode_line(line: bytes) -> dict[str, Any]:
    try:
        obj = msgspec.json.decode(line)
    except msgspec.DecodeError as exc:
        raise ProtocolError("bad_request", f"not a JSON line: {exc}") from None
    except RecursionError:  # `[[[[...`: a frame under the size cap can still nest past any use
        raise ProtocolError("bad_request", "not a JSON line: nested too deeply") from None
    if not isinstance(obj, dict):
        raise ProtocolError("bad_request", "a request must be a JSON object")
    return obj


def ok(request_id: object, **payload: Any) -> dict[str, Any]:
    return {"id": request_id, "ok": True, **payload}


def error(request_id: object, code: str, message: str) -> dict[str, Any]:
    return {"id": request_id, "ok": False, "error": {"code": code, "message": message}}
