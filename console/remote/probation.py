"""Remote-config decisions, pure: what to do with a served document, when probation ends, what a
boot finds, where a rollback goes. The files are in slots.py; the effects in remote_config.py.

The incidents behind these rules: a config that broke the host stayed because nothing proved it
good or bad; a crash before the pointer flip left a marker that later rolled back a good config; a
rollback "target" that was the bad document itself.
"""

from __future__ import annotations

from enum import StrEnum

from console.core.records import View

PROBATION_FLOOR = 120.0
BAD_BACKOFF_BASE = 600.0
BAD_BACKOFF_CAP = 86400.0


class Stage(StrEnum):
    APPLIED = "applied"
    NOOP_SAME_ETAG = "noop_same_etag"
    SKIPPED_BAD_ETAG = "skipped_bad_etag"


class Boot(StrEnum):
    NONE = "none"
    CLEARED_ORPHAN = "cleared_orphan"
    ROLLED_BACK = "rolled_back"
    ROLLBACK_NO_TARGET = "rollback_no_target"


def window(poll_interval: float) -> float:
    """Long enough for three polls, and never under two minutes."""
    return max(3 * poll_interval, PROBATION_FLOOR)


def bad_backoff(count: int) -> float:
    """How long a document that failed stays refused: 10 min, doubling, at most a day."""
    return min(BAD_BACKOFF_CAP, BAD_BACKOFF_BASE * 2.0 ** max(0, count - 1))


class SlotInfo(View, frozen=True):
    name: str  # "a" | "b"
    etag: str
    intact: bool  # the document parses and its digest is the one its etag file recorded


class Marker(View, frozen=True):
    """Written before the pointer flips: probation for `etag` in `slot`, until `deadline`."""

    slot: str
    etag: str
    staged_at: float
    deadline: float
    previous_slot: str | None = None  # last-known-good: where a rollback goes
    previous_etag: str | None = None


class Bad(View, frozen=True):
    etag: str
    count: int
    until: float  # re-applying it is refused until then


def stage(etag: str, running_etag: str | None, bad: Bad | None, now: float) -> Stage:
    if etag == running_etag:
        return Stage.NOOP_SAME_ETAG
    if bad is not None and etag == bad.etag and now < bad.until:
        return Stage.SKIPPED_BAD_ETAG
    return Stage.APPLIED


def remember_bad(etag: str, previous: Bad | None, now: float) -> Bad:
    count = previous.count + 1 if previous is not None and previous.etag == etag else 1
    return Bad(etag=etag, count=count, until=now + bad_backoff(count))


def other_slot(name: str | None) -> str:
    return "b" if name == "a" else "a"


def rollback_target(active: SlotInfo | None, other: SlotInfo | None, marker: Marker | None) -> str | None:
    """A distinct, intact slot that is not the document being rolled back; with a marker, it must
    still hold the last-known-good document the marker names."""
    if other is None or not other.intact:
        return None
    if active is not None and other.etag == active.etag:
        return None
    if marker is not None and (marker.previous_slot != other.name or marker.previous_etag != other.etag):
        return None
    return other.name


class Decision(View, frozen=True):
    outcome: Boot
    reason: str = ""  # the rollback reason (probation_expired, validation_failed) when there is one
    flip_to: str | None = None
    clear_marker: bool = False
    detail: str = ""


def on_boot(active: SlotInfo | None, other: SlotInfo | None, marker: Marker | None, now: float) -> Decision:
    """Before any component starts. A marker whose flip never happened is an orphan; a marker whose
    document is active decides by its deadline (the crash-loop case); a torn active slot rolls back."""
    if marker is not None:
        flipped = active is not None and active.name == marker.slot and active.etag == marker.etag
        if not flipped:
            return Decision(Boot.CLEARED_ORPHAN, clear_marker=True,
                            detail=f"probation marker for {marker.etag} (slot {marker.slot}) was written but the "
                                   f"pointer never flipped: discarded")
    if active is not None and not active.intact:
        return _roll_back(active, other, marker, "validation_failed",
                          f"active slot {active.name} does not match its etag file (torn or edited)")
    if marker is not None and now >= marker.deadline:
        return expire(active, other, marker)
    return Decision(Boot.NONE)


def expire(active: SlotInfo | None, other: SlotInfo | None, marker: Marker) -> Decision:
    """Probation ran out without an authenticated successful poll."""
    return _roll_back(active, other, marker, "probation_expired",
                      f"no successful poll within the probation window of {marker.etag}")


def _roll_back(active: SlotInfo | None, other: SlotInfo | None, marker: Marker | None, reason: str,
               detail: str) -> Decision:
    target = rollback_target(active, other, marker)
    if target is None:
        return Decision(Boot.ROLLBACK_NO_TARGET, reason=reason, clear_marker=True,
                        detail=f"{detail}; no distinct last-known-good slot to roll back to: kept running it")
    return Decision(Boot.ROLLED_BACK, reason=reason, flip_to=target, clear_marker=True, detail=detail)
