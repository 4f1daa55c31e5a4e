"""The engine socket speaks JSON lines: one request object per line, one response object per line.

    {"id": 1, "op": "hello"}                                   -> {"id": 1, "ok": true, "engine": {...}}
    {"id": 2, "op": "snapshot"}                                -> {"id": 2, "ok": true, "snapshot": {...}}
    {"id": 3, "op": "watch"}                                   -> {"id": 3, "ok": true, "snapshot": {...}} ...
    {"id": 4, "op": "action", "verb": "retry", "target": "sidecar:web"}
                                                               -> {"id": 4, "ok": true, "result": {...}}
    any failure                                                -> {"id": n, "ok": false,
                                                                   "error": {"code": "...", "message": "..."}}

`watch` answers with the current snapshot at once, then one more line each time something changes.
"""

from __future__ import annotations

from typing import Any

import msgspec
import msgspec.json

PROTOCOL_VERSION = 1
MAX_REQUEST_BYTES = 1 << 20
MAX_RESPONSE_BYTES = 64 << 20
OPS = ("hello", "snapshot", "watch", "action")


class ProtocolError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


_encoder = msgspec.json.Encoder()


def encode_line(obj: dict[str, Any]) -> bytes:
    """A frame: records (a Snapshot, an EngineView) are encoded as they are, without a copy as dicts."""
    return _encoder.encode(obj) + b"\n"


def decode_line(line: bytes) -> dict[str, Any]:
    try:
        obj = msgspec.json.decode(line)
    except msgspec.DecodeError as exc:
        raise ProtocolError("bad_request", f"not a JSON line: {exc}") from None
    if not isinstance(obj, dict):
        raise ProtocolError("bad_request", "a request must be a JSON object")
    return obj


def ok(request_id: object, **payload: Any) -> dict[str, Any]:
    return {"id": request_id, "ok": True, **payload}


def error(request_id: object, code: str, message: str) -> dict[str, Any]:
    return {"id": request_id, "ok": False, "error": {"code": code, "message": message}}
