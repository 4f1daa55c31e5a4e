"""Each tab's table as plain data: columns, and rows keyed by `kind:name` so the table can update
them in place. Pure (rich Text for styling, no Textual), with `now` passed in for the countdowns."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar

from rich.text import Text

from console.core.records import View
from console.core.time_text import duration
from console.readmodel.snapshot import LoopView, RunView, SidecarView, Snapshot
from console.readmodel.tray import Reason
from console.tui.format import continuation_text, liveness_badge, run_duration, short_id, stop_text
from console.tui.palette import GLYPHS, LEVEL_STYLES, STATE_STYLES
from console.tui.ticking import Ticking, ago_cell, countdown_cell

Cell = str | Text | Ticking  # a Ticking cell's text is the table's to write, at each second (ticking.py)
Row = tuple[str, tuple[Cell, ...]]
F = TypeVar("F")


def state(value: str) -> Text:
    return Text(value, style=STATE_STYLES.get(value, ""))


class RowMemo:
    """The rows of the last build, each with the facts it was built from. A push at 1,000 loops
    builds again only the rows of the things whose record changed (records compare in C), and the
    table is handed the very tuples it holds for the others, which it passes over by identity."""

    def __init__(self) -> None:
        self._rows: dict[str, tuple[object, Row]] = {}

    def rows(self, facts: list[tuple[str, F]], build: Callable[[str, F], tuple[Cell, ...]]) -> list[Row]:
        """The rows for `facts`, (key, facts) in order: a row whose facts equal its last build's is that
        row; the others are built. What was not asked for (things gone) is forgotten. One loop, no call
        per row: 1,000 loops a push."""
        kept = self._rows
        rows: list[Row] = []
        fresh: dict[str, tuple[object, Row]] = {}
        for key, fact in facts:
            old = kept.get(key)
            row = old[1] if old is not None and old[0] == fact else (key, build(key, fact))
            fresh[key] = (fact, row)
            rows.append(row)
        self._rows = fresh
        return rows


class Table(View, frozen=True):
    columns: tuple[tuple[str, str], ...]  # (key, label)
    rows: Callable[..., list[Row]]  # (snapshot, now[, memo]) -> rows
    empty: str  # what a table without rows means, said in the detail pane
    newest_first: Callable[[str], Any] | None = None  # for tables listed newest first: sort key of a row's key


def reason_rows(snap: Snapshot, now: float, _memo: RowMemo | None = None) -> list[Row]:
    """Keyed `subject#code`: one thing can have several reasons (a remote config rolled back while its
    polls fail), and each is a row of its own; "" is the host's own subject."""
    rows: list[Row] = []
    seen: set[str] = set()
    for i, r in enumerate(snap.tray.reasons):
        key = f"{r.subject}#{r.code}"
        if key in seen:  # the same code twice about one thing: the later ones also carry their rank
            key = f"{key}#{i}"
        seen.add(key)
        level = Text(f"{GLYPHS[r.level]} {r.level.value}", style=LEVEL_STYLES[r.level])
        rows.append((key, (level, r.code, r.text, r.action)))
    return rows


def reason_for(snap: Snapshot, key: str) -> Reason | None:
    """The reason an Overview row's key names (see reason_rows), if it is still reported."""
    subject, _, rest = key.partition("#")
    code, _, rank = rest.partition("#")
    reasons = snap.tray.reasons
    if rank:
        r = reasons[int(rank)] if int(rank) < len(reasons) else None
        return r if r is not None and (r.subject, r.code) == (subject, code) else None
    return next((r for r in reasons if (r.subject, r.code) == (subject, code)), None)


def subject_of(key: str) -> str:
    """What a row is about, for the actions: an Overview row's subject, any other row's own key."""
    return key.partition("#")[0]


def sidecar_rows(snap: Snapshot, now: float, memo: RowMemo | None = None) -> list[Row]:
    return (memo or RowMemo()).rows([(s.key, s) for s in snap.sidecars], lambda _key, s: _sidecar_cells(s))


def _sidecar_cells(s: SidecarView) -> tuple[Cell, ...]:
    return (s.name, state(s.state), str(s.pid or "-"), str(s.port or "-"),
            f"{s.restarts}/{s.max_restarts}" if s.attempts else "-",
            countdown_cell(s.next_retry_at) if s.state == "backoff" else "-", s.reason or "-")


def loop_rows(snap: Snapshot, now: float, memo: RowMemo | None = None) -> list[Row]:
    # A loop's last liveness comes from the owner's per-loop index; read offline (no index then), from
    # the newest finished run the snapshot has (runs are newest first: the first one seen per loop).
    carried: dict[str, str | None] = {}
    for r in snap.runs:
        if r.finished_at is not None:
            carried.setdefault(r.loop_id, r.liveness)
    memo = memo or RowMemo()
    return memo.rows([(lp.key, (lp, lp.last_liveness if lp.last_run_id is not None else carried.get(lp.id)))
                      for lp in snap.loops], _loop_row)


def _loop_row(_key: str, facts: tuple[LoopView, str | None]) -> tuple[Cell, ...]:
    return _loop_cells(*facts)


def _loop_cells(lp: LoopView, liveness: str | None) -> tuple[Cell, ...]:
    shown = Text.assemble(state(lp.state), (" · paused here", "yellow")) if lp.held_by else state(lp.state)
    return (lp.id, shown, short_id(lp.current_run) if lp.current_run else "-",
            countdown_cell(lp.next_run_at) if lp.next_run_at else "-",
            liveness_badge(liveness) if liveness else "-",
            lp.reason if lp.state != "active" else "-")


def run_rows(snap: Snapshot, now: float, _memo: RowMemo | None = None) -> list[Row]:
    return [(r.key, (short_id(r.id), r.loop_id, state(r.status), liveness_badge(r.liveness), stop_text(r),
                     continuation_text(r), _run_duration(r, now), ago_cell(r.last_useful_action_at)))
            for r in snap.runs]


def _run_duration(run: RunView, now: float) -> Cell:
    """A running run's duration ticks; a finished one's is fixed."""
    if run.started_at is not None and run.finished_at is None:
        return Ticking("elapsed", run.started_at)
    return run_duration(run, now)


def event_rows(snap: Snapshot, now: float, _memo: RowMemo | None = None) -> list[Row]:
    """The snapshot's newest events; the Events tab shows the whole log's (event_history.py)."""
    from console.tui.event_history import history_rows  # noqa: PLC0415  (it imports this module's peers)

    return history_rows(snap.events, now)


TABLES: dict[str, Table] = {
    "overview": Table((("level", "level"), ("code", "reason"), ("text", "what"), ("action", "what clears it")),
                      reason_rows, "Nothing needs attention: no sidecar, loop, plugin or config has a reason to "
                      "report."),
    "sidecars": Table((("name", "sidecar"), ("state", "state"), ("pid", "pid"), ("port", "port"),
                       ("restarts", "restarts"), ("retry", "next retry"), ("reason", "reason")), sidecar_rows,
                      "No sidecars: this host's config declares none."),
    "loops": Table((("id", "loop"), ("state", "state"), ("run", "current run"), ("next", "next run"),
                    ("last", "last liveness"), ("reason", "reason")), loop_rows,
                   "No loops: this host's config declares none."),
    "runs": Table((("id", "run"), ("loop", "loop"), ("status", "status"), ("liveness", "liveness"),
                   ("stop", "stop reason"), ("cont", "cont."), ("duration", "duration"),
                   ("useful", "last useful")), run_rows, "No runs in the ledger yet.",
                  newest_first=str),  # `run:ULID`: a ULID sorts by time
    "events": Table((("id", "#"), ("at", "when"), ("thing", "thing"), ("transition", "transition"),
                     ("reason", "reason")), event_rows, "No events recorded yet.",
                    newest_first=lambda key: int(key.partition(":")[2])),
}


SELECT_HINT = "select a row to see its detail (arrows, then enter to enlarge)"


def placeholder(tab: str, rows: int, filter_text: str) -> str:
    """What the detail pane says when no row is selected: why the tab's table is empty, if it is."""
    if rows:
        return SELECT_HINT
    if filter_text:
        return f"No rows here match the filter '{filter_text}': esc clears it."
    return TABLES[tab].empty


def matches(row: Row, needle: str) -> bool:
    """The filter: any cell, or the row's key (a run's whole id, where its cell shows the short one).
    Not a ticking cell (a countdown): a row it matched would leave the table a second later."""
    if not needle:
        return True
    needle = needle.lower()
    key, cells = row
    return needle in key.lower() or any(needle in (c.plain if isinstance(c, Text) else c).lower()
                                        for c in cells if not isinstance(c, Ticking))


def counts(snap: Snapshot) -> list[str]:
    """`sidecars  2 ready · 1 failed` lines for the Overview."""
    def line(label: str, states: list[str], empty: str = "none configured") -> str:
        if not states:
            return f"{label:<9} {empty}"
        c = Counter(states)
        return f"{label:<9} " + " · ".join(f"{n} {s}" for s, n in sorted(c.items(), key=lambda kv: (-kv[1], kv[0])))
    return [
        line("sidecars", [s.state for s in snap.sidecars]),
        line("loops", [lp.state for lp in snap.loops]),
        line("runs", [r.status for r in snap.runs], "none yet") + (f"  (newest {len(snap.runs)})" if snap.runs else ""),
    ]


def uptime(snap: Snapshot, now: float) -> str:
    return duration(now - snap.engine.started_at) if snap.engine.started_at else "-"
