"""The engine socket speaks JSON lines: one request object per line, one response object per line.

    {"id": 1, "op": "hello"}                                   -> {"id": 1, "ok": true, "engine": {...}}
    {"id": 2, "op": "snapshot"}                                -> {"id": 2, "ok": true, "snapshot": {...}}
    {"id": 3, "op": "watch"}                                   -> {"id": 3, "ok": true, "snapshot": {...}} ...
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

`watch` answers with the current snapshot at once, then one more line each time something changes.
`tail` answers with a thing's last `lines` lines (at most 5000; a sidecar's previous launch's log
before its current one), then with `follow` one chunk per poll that found more, until the peer hangs
up or the run it reads has finished; `end` says nothing more comes. At most `MAX_TAILS` follow at once.
`events` answers with a page of the event log, newest first, every filter optional; `next` is the
`before` of the following page (null at the oldest). At most `MAX_EVENTS_PAGE` events a page.
"""

from __future__ import annotations

import json
from typing import Any

PROTOCOL_VERSION = 1
MAX_REQUEST_BYTES = 1 << 20
MAX_RESPONSE_BYTES = 64 << 20
OPS = ("hello", "snapshot", "watch", "action", "tail", "events")
MAX_TAILS = 16
MAX_EVENTS_PAGE = 500


class ProtocolError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def encode_line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode("utf-8") + b"\n"


def decode_line(line: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError("bad_request", f"not a JSON line: {exc}") from None
    if not isinstance(obj, dict):
        raise ProtocolError("bad_request", "a request must be a JSON object")
    return obj


def ok(request_id: object, **payload: Any) -> dict[str, Any]:
    return {"id": request_id, "ok": True, **payload}


def error(request_id: object, code: str, message: str) -> dict[str, Any]:
    return {"id": request_id, "ok": False, "error": {"code": code, "message": message}}
