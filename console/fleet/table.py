"""The fleet as plain data: what is known of each host, its row, and the fleet's worst state. Pure:
the watches (watcher.py), Prometheus (prometheus.py), the reports and the view all read these."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

from console.core.errors import EXIT_CRITICAL, EXIT_OK, EXIT_UNKNOWN, EXIT_WARNING, MONITORING_WORDS
from console.core.records import View, field
from console.core.time_text import duration
from console.readmodel.snapshot import Snapshot
from console.readmodel.tray import Level

UNREACHABLE = "unreachable"
STALE = "stale"
CONNECTING = "connecting"
# Icinga's order of severity: a host we cannot see is worse than a warning, not worse than a host down.
SEVERITY = {EXIT_OK: 0, EXIT_WARNING: 1, EXIT_UNKNOWN: 2, EXIT_CRITICAL: 3}


class Counts(View, frozen=True):
    """What a row counts: from a snapshot, or from Prometheus's series for the host."""

    sidecars_ready: int = 0
    sidecars_total: int = 0
    loops_active: int = 0
    loops_escalated: int = 0
    runs_running: int = 0


class HostStatus(View, frozen=True):
    """One host as the fleet knows it now. `level` is None while it cannot be evaluated (connecting,
    unreachable, stale); `problem` then says why."""

    name: str
    url: str
    level: Level | None = None
    reason: str = ""  # the top non-ok reason, or the problem
    counts: Counts = field(default_factory=Counts)
    pushed_at: float | None = None  # when the last snapshot (or sample) arrived
    problem: str = ""  # "" | connecting | unreachable | stale
    retry_at: float | None = None
    snapshot: Snapshot | None = None  # the last one, while watched (never from Prometheus)


class Feed(Protocol):
    """What the fleet view reads: every host now, and a hook it sets, called (on any thread) on a change."""

    notify: Callable[[], None] | None
    problem: str  # the feed's own trouble (Prometheus did not answer), "" when none

    def statuses(self) -> list[HostStatus]: ...


def counts_of(snap: Snapshot) -> Counts:
    return Counts(
        sidecars_ready=sum(1 for s in snap.sidecars if s.state == "ready"),
        sidecars_total=len(snap.sidecars),
        loops_active=sum(1 for lp in snap.loops if lp.state == "active"),
        loops_escalated=sum(1 for lp in snap.loops if lp.state == "escalated"),
        runs_running=sum(1 for r in snap.runs if r.status == "running"),
    )


def watched(name: str, url: str, snap: Snapshot, at: float) -> HostStatus:
    top = next((r for r in snap.tray.reasons if r.level is not Level.OK), None)
    return HostStatus(name=name, url=url, level=snap.tray.state, reason=top.text if top else "",
                      counts=counts_of(snap), pushed_at=at, snapshot=snap)


def lost(previous: HostStatus, why: str, retry_at: float | None) -> HostStatus:
    """Unreachable now; what was last seen stays (its counts, its push time) to be read as old."""
    return HostStatus(name=previous.name, url=previous.url, reason=why, counts=previous.counts,
                      pushed_at=previous.pushed_at, problem=UNREACHABLE, retry_at=retry_at)


def exit_code_of(status: HostStatus) -> int:
    return EXIT_UNKNOWN if status.level is None else status.level.exit_code


def fleet_exit_code(statuses: Iterable[HostStatus]) -> int:
    """The worst host's, by severity (CRITICAL > UNKNOWN > WARNING > OK); no hosts at all is UNKNOWN."""
    codes = [exit_code_of(s) for s in statuses]
    return max(codes, key=SEVERITY.__getitem__) if codes else EXIT_UNKNOWN


def fleet_level(statuses: Iterable[HostStatus]) -> Level:
    """The fleet's tray: the worst host's; a host that cannot be seen counts as down."""
    levels = [s.level if s.level is not None else Level.DOWN for s in statuses]
    return max(levels, key=lambda level: level.rank, default=Level.OK)


def state_word(status: HostStatus) -> str:
    return status.problem or (status.level.value if status.level is not None else CONNECTING)


def coarse_age(seconds: float) -> str:
    """`<1m`, `5m`, `3h`, `2d`: a watched host is pushed only on a change, so its age is how long it has
    been quiet, to the minute. A cell that ticks each second on every row would redraw the whole table
    once a second for nothing (the fleet's idle CPU)."""
    s = int(max(0.0, seconds))
    if s < 60:
        return "<1m"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h"
    return f"{s // 86400}d"


RETRY_STEP = 5  # seconds: the retry countdowns all move at once, on multiples of this


def age_text(status: HostStatus, now: float) -> str:
    """The last push's age; for a host being retried, when the next attempt is. The countdown moves in
    steps of RETRY_STEP s, every row's on the same tick: one redraw per step, not one per second per row."""
    if status.problem == UNREACHABLE and status.retry_at is not None:
        tick = now - now % RETRY_STEP
        return f"retry in {duration(max(0.0, status.retry_at - tick))}"
    if status.pushed_at is None:
        return "-"
    return f"{coarse_age(now - status.pushed_at)} ago"


def row_reason(status: HostStatus) -> str:
    """The reason as a row shows it: the row names the host, so an ssh error's own prefix goes."""
    prefix = f"ssh {status.name}: "
    reason = status.reason.removeprefix(prefix)
    return reason or ("-" if status.level is not None else "")


def row_cells(status: HostStatus, now: float) -> tuple[str, ...]:
    """host, state, sidecars ready/total, loops active/escalated, runs running, last push, reason (last:
    the one cell that may be long)."""
    c = status.counts
    known = status.level is not None or status.pushed_at is not None
    return (
        status.name,
        state_word(status),
        f"{c.sidecars_ready}/{c.sidecars_total}" if known else "-",
        f"{c.loops_active}/{c.loops_escalated}" if known else "-",
        str(c.runs_running) if known else "-",
        age_text(status, now),
        row_reason(status),
    )


COLUMNS = (("host", "Host"), ("state", "State"), ("sidecars", "Sidecars"), ("loops", "Loops a/e"),
           ("runs", "Running"), ("push", "Last push"), ("reason", "Top reason"))


def summary(statuses: list[HostStatus]) -> str:
    """One line: the fleet's word and how many hosts are in each state."""
    code = fleet_exit_code(statuses)
    by_state: dict[str, int] = {}
    for s in statuses:
        by_state[state_word(s)] = by_state.get(state_word(s), 0) + 1
    counted = ", ".join(f"{n} {word}" for word, n in sorted(by_state.items(), key=lambda kv: (-kv[1], kv[0])))
    return f"LOOPCTL FLEET {MONITORING_WORDS[code]} - {len(statuses)} hosts" + (f": {counted}" if counted else "")
