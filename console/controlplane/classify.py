"""Heartbeat outcomes (DESIGN section 3), pure. The incident to never repeat: a live managed loop
finalized because its runner token went stale, when a proof-of-possession heartbeat could have
revived it; and a revival sent for a loop whose runner was dead."""

from __future__ import annotations

from enum import StrEnum

from console.core.records import View


class Outcome(StrEnum):
    LIVE = "live"
    TRANSIENT = "transient"
    TERMINAL = "terminal"
    POP_FALLBACK = "pop_fallback"


class Why(StrEnum):
    SERVER_ERROR = "server_error"
    NETWORK_ERROR = "network_error"
    TIMED_OUT = "timed_out"
    UNAUTHORIZED = "unauthorized"
    NOT_FOUND = "not_found"
    GONE = "gone"
    BAD_ANSWER = "bad_answer"  # a status, but a body of the wrong shape (not JSON, a field missing, too large)


class Provenance(View, frozen=True):
    managed: bool  # created by this host and bound to its key (else: a user's token)
    runner_alive: bool  # the loop's local runner process is alive and verified ours
    key_available: bool  # the host key can sign a proof


class Verdict(View, frozen=True):
    outcome: Outcome
    why: Why | None = None


def classify(status: int | None, failure: str | None = None, provenance: Provenance | None = None) -> Verdict:
    """`status`: the HTTP status, or None when there was none; `failure`: "timeout" or "network" then,
    or "bad_answer" for an answer whose body was of the wrong shape (whatever its status said).

    Without a provenance context a 401 stays terminal. Anything unexpected is transient: an answer
    we do not understand must never finalize a live loop.
    """
    if failure == "bad_answer":
        return Verdict(Outcome.TRANSIENT, Why.BAD_ANSWER)
    if status is None:
        return Verdict(Outcome.TRANSIENT, Why.TIMED_OUT if failure == "timeout" else Why.NETWORK_ERROR)
    if 200 <= status < 300:
        return Verdict(Outcome.LIVE)
    if status == 401:
        if provenance is not None and provenance.managed and provenance.runner_alive and provenance.key_available:
            return Verdict(Outcome.POP_FALLBACK, Why.UNAUTHORIZED)
        return Verdict(Outcome.TERMINAL, Why.UNAUTHORIZED)
    if status == 404:
        return Verdict(Outcome.TERMINAL, Why.NOT_FOUND)
    if status == 410:
        return Verdict(Outcome.TERMINAL, Why.GONE)
    return Verdict(Outcome.TRANSIENT, Why.SERVER_ERROR)
