"""What is recorded about remote config (state.json, the snapshot): polls, applies, boots and rollbacks.

Apart from the decisions in probation.py so that the snapshot, which an observing console decodes
before its first frame, does not build what only the engine decides with.
"""

from __future__ import annotations

from console.core.records import View


class Rollback(View, frozen=True):
    etag: str
    reason: str
    at: float
    detail: str
    outcome: str  # rolled_back | rollback_no_target
    to_etag: str | None = None


class ApplyRecord(View, frozen=True):
    etag: str
    result: str  # applied | noop_same_etag | skipped_bad_etag | an apply error code
    at: float
    detail: str = ""


class BootRecord(View, frozen=True):
    outcome: str
    at: float
    detail: str = ""


class PollRecord(View, frozen=True):
    at: float
    result: str  # ok | not_modified | no_remote_config | rate_limited | an error code
    status: int | None = None
    detail: str = ""
    authenticated: bool = False  # a 200/304 the control plane answered to this host's credentials
