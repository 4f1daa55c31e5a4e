"""What the control plane answers, as typed records decoded at the client boundary (DESIGN 6, rule 9).

Each call's success body is decoded with `msgspec.json.decode(body, type=...)` into one of these
frozen records; anything else (HTML from a captive portal, a missing field, `expires_in: "soon"`, an
id that would not be safe in a URL path or a TOML file) is one `BadAnswer` naming the call and what
was wrong. msgspec's messages name the field and the expected type, never the value, so a problem
can be logged and shown without leaking a token.
"""

from __future__ import annotations

from typing import Annotated, Literal, TypeVar

import msgspec

from console.core.records import View

# An id the control plane hands out goes into URL paths and the host config: letters, digits and
# `._-`, starting with a letter or digit (no `/`, no `..`, no quotes, no newline).
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
# A token goes into an HTTP header and a 0600 file: visible ASCII, no spaces, bounded.
TOKEN_PATTERN = r"^[\x21-\x7e]{1,4096}$"

Id = Annotated[str, msgspec.Meta(pattern=ID_PATTERN)]
Token = Annotated[str, msgspec.Meta(pattern=TOKEN_PATTERN)]
Seconds = Annotated[float, msgspec.Meta(ge=0, le=10 * 365 * 86400)]
Stamp = Annotated[float, msgspec.Meta(ge=0, le=1e11)]  # a Unix time (before the year 5000)
Short = Annotated[str, msgspec.Meta(max_length=256)]

# Per-call caps on the decoded body: every answer here is a few hundred bytes.
ANSWER_CAP = 64 * 1024



class Joined(View, frozen=True):
    """201 to `POST /v1/join`."""

    host_id: Id
    refresh_token: Token
    poll_interval_seconds: Seconds | None = None


class AccessToken(View, frozen=True):
    """200 to `POST /v1/token`."""

    access_token: Token
    expires_in: Seconds
    token_type: Literal["DPoP", "dpop"] = "DPoP"


HostStatus = Literal["provisioning", "online", "offline", "degraded", "failed"]


class HostBeat(View, frozen=True):
    """200 to `POST /v1/hosts/{id}/heartbeat`."""

    status: HostStatus
    previous_status: HostStatus | None = None


class LoopGrant(View, frozen=True):
    """201 to `POST /v1/loops`: a managed loop bound to the host key."""

    loop_id: Id
    runner_token: Token
    jti: Short | None = None
    expires_at: Stamp | None = None


class LoopBeat(View, frozen=True):
    """200 to `POST /v1/loops/{id}/heartbeat` with the runner token."""

    status: Literal["active", "paused", "timed_out"]


class Revived(View, frozen=True):
    """200 to the same call by proof of possession: a fresh runner token."""

    revived: Literal[True]
    runner_token: Token
    jti: Short | None = None
    expires_at: Stamp | None = None
    status: Literal["active", "paused", "timed_out"] = "active"


class Refusal(View, frozen=True):
    """The body of an error status, read leniently: only its message is ever shown."""

    message: Annotated[str, msgspec.Meta(max_length=500)] = ""
    error: Short = ""


Record = TypeVar("Record", Joined, AccessToken, HostBeat, LoopGrant, LoopBeat, Revived, Refusal)


class BadAnswer(Exception):
    """A control-plane answer of the wrong shape: `call` names the call, `problem` what was wrong."""

    def __init__(self, call: str, problem: str) -> None:
        super().__init__(f"{call}: {problem}")
        self.call = call
        self.problem = problem


def decode(call: str, body: bytes, record: type[Record]) -> Record:
    """The body as `record`, or BadAnswer. msgspec has no recursion limit to hit: a deeply nested
    document fails the type check at its first level."""
    try:
        return msgspec.json.decode(body, type=record)
    except msgspec.ValidationError as exc:
        raise BadAnswer(call, f"unexpected answer ({exc})") from None
    except msgspec.DecodeError as exc:
        raise BadAnswer(call, f"not JSON ({exc})") from None


def refusal_message(body: bytes) -> str:
    """The `message` of an error body, or "" when there is none worth showing."""
    try:
        return decode("refusal", body, Refusal).message
    except BadAnswer:
        return ""
