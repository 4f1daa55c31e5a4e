"""What `loopctl run` writes to its journal for a transition: one line, at a level that matches.

Pure: the level from what the thing became (and what it was), the line from the transition. A
failure or a latch is WARNING or ERROR, a recovery INFO; an update that changes no state (a run's
handoff touched, say) is DEBUG, below the daemon's level, so "every transition once" stays a line
per change and not a line per heartbeat.
"""

from __future__ import annotations

import logging

from console.core.printable import printable
from console.core.transitions import Transition

# What a thing became -> level. Latched or terminal states are errors: they stay until someone acts.
ERRORS = frozenset({"failed", "crashed", "escalated", "finalized", "rolled_back", "rejected", "kill_failed"})
WARNINGS = frozenset({"backoff", "transient", "paused", "timed_out", "offline", "degraded", "cancelled",
                      "poll_failed", "probation_expired", "removed"})
ERROR_KINDS = frozenset({"engine", "sidecar", "loop", "plugin", "host", "remote_config"})


def level_of(t: Transition) -> int:
    if t.previous == t.new:
        return logging.DEBUG
    if t.new in ERRORS:
        # A failed run is one window of a loop that carries on: a warning; a failed sidecar is latched.
        return logging.ERROR if t.kind in ERROR_KINDS else logging.WARNING
    if t.new in WARNINGS:
        return logging.WARNING
    return logging.INFO


def line_of(t: Transition) -> str:
    """`sidecar:web backoff -> failed: crash_loop ...`: the thing, previous -> new, the reason code
    (the stored detail's `reason`, when there is one) and the text. Made printable: one line, always."""
    code = t.detail.get("reason") if isinstance(t.detail.get("reason"), str) else ""
    said = f"{code}: {t.reason}" if code and not t.reason.startswith(code) else t.reason
    return printable(f"{t.kind}:{t.name} {t.previous or 'new'} -> {t.new}: {said}", lines=False)


def redact(text: str, secrets: list[str]) -> str:
    """`text` with each secret value (a token loopctl holds) replaced: a reason that quoted one, say
    an error carrying a header, must not carry it into the journal."""
    for secret in secrets:
        if len(secret) >= 8 and secret in text:
            text = text.replace(secret, "[redacted]")
    return text
