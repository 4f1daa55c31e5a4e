"""The Events tab's history: pages of the whole event log (the socket's `events` op), newest first,
filtered by kind, thing and time, and the new events of each snapshot on top. Textual-free.

The filter box takes the query on this tab: `kind:sidecar`, a thing (`sidecar:web`, `run:2QVPQ06K`),
`since:30m` / `until:2h` (ago: s, m, h, d) or a date and time (`since:2026-01-01T02:00`), and any
other words, matched against the rows read so far. The server filters what it can, so paging
reaches the oldest event of one thing however busy the rest of the host was.
"""

from __future__ import annotations

import re
from datetime import datetime

from rich.text import Text

from console.core.records import View
from console.readmodel.snapshot import EventView
from console.tui.format import short_id
from console.tui.ticking import Ticking

PAGE = 200  # events a page (the socket's cap is 500)
_AGO = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class EventQuery(View, frozen=True):
    kind: str | None = None
    name: str | None = None
    since: float | None = None
    until: float | None = None
    text: str = ""  # the other words: matched against the rows read so far
    error: str = ""  # a word that does not parse, said instead of guessed

    def admits(self, e: EventView) -> bool:
        """What the server's filters would let through (for the new events of a snapshot)."""
        return ((self.kind is None or e.kind == self.kind) and (self.name is None or e.name == self.name)
                and (self.since is None or e.at >= self.since) and (self.until is None or e.at < self.until))

    def said(self) -> str:
        parts = [f"kind {self.kind}" if self.kind and not self.name else "",
                 f"{self.kind}:{self.name}" if self.name else "",
                 f"since {self._when(self.since)}" if self.since is not None else "",
                 f"until {self._when(self.until)}" if self.until is not None else "",
                 f"matching '{self.text}' (in what is read)" if self.text else ""]
        return ", ".join(p for p in parts if p)

    @staticmethod
    def _when(at: float) -> str:
        return datetime.fromtimestamp(at).strftime("%Y-%m-%d %H:%M:%S")


def parse_query(text: str, now: float, run_ids: list[str] | None = None) -> EventQuery:
    """The filter box's words as a query. `run_ids`: the snapshot's, so a run's short id (as the
    tables show it) finds its whole one."""
    kind = name = None
    since = until = None
    words, errors = [], []
    for word in text.split():
        key, sep, value = word.partition(":")
        if not sep or not value:
            words.append(word)
        elif key in ("since", "until"):
            at = _moment(value, now)
            if at is None:
                errors.append(f"{key}:{value} (say 30m, 2h, 1d or 2026-01-01T02:00)")
            elif key == "since":
                since = at
            else:
                until = at
        elif key == "kind":
            kind = value
        else:
            kind, name = key, value
            if key == "run":
                whole = [r for r in run_ids or [] if r.upper().endswith(value.upper())]
                name = whole[0] if len(whole) == 1 else value
    return EventQuery(kind, name, since, until, " ".join(words), "; ".join(errors))


def _moment(value: str, now: float) -> float | None:
    match = _AGO.match(value)
    if match:
        return now - float(match.group(1)) * _UNITS[match.group(2)]
    try:
        return datetime.fromisoformat(value).timestamp()  # no zone given: this machine's
    except ValueError:
        return None


class History:
    """What the Events tab has read of the log for one query; `generation` keeps a page asked for an
    older query from landing in a newer one's rows (DESIGN rule 7)."""

    def __init__(self) -> None:
        self.query: EventQuery | None = None
        self.events: list[EventView] = []
        self.next: int | None = None  # the `before` of the next older page; None: the oldest is read
        self.generation = 0
        self.loading = False
        self.failed = ""
        self._ids: set[int] = set()
        self._head = 0  # the newest event id the rows account for (the snapshot's, when the query went)

    def reset(self, query: EventQuery, head: int) -> int:
        self.query, self.events, self.next, self._ids, self._head = query, [], None, set(), head
        self.generation += 1
        self.loading, self.failed = True, ""
        return self.generation

    def more(self) -> int | None:
        """The generation of the next older page to ask for, or None (none, or one asked already)."""
        if self.loading or self.next is None or self.query is None:
            return None
        self.loading = True
        return self.generation

    def take(self, generation: int, events: list[EventView], nxt: int | None, failed: str = "") -> bool:
        if generation != self.generation:
            return False  # asked for a query since replaced
        self.loading, self.failed = False, failed
        fresh = [e for e in events if e.id not in self._ids]
        self._ids.update(e.id for e in fresh)
        self.events.extend(fresh)
        self.next = nxt if not failed else self.next
        return True

    def merge(self, recent: list[EventView]) -> bool | None:
        """A snapshot's newest events (newest first): those newer than the rows, on top. True if any
        were added; None if the snapshot skipped past some (more than its 50 at once): read again."""
        if self.query is None or not recent or recent[0].id <= self._head:
            return False
        if recent[-1].id > self._head + 1 and self._head:
            return None
        new = [e for e in recent if e.id > self._head and e.id not in self._ids and self.query.admits(e)]
        self._head = recent[0].id
        self._ids.update(e.id for e in new)
        self.events[:0] = new
        return bool(new)

    def status(self) -> str:
        said = self.query.said() if self.query is not None else ""
        head = f"{len(self.events)} event{'s' if len(self.events) != 1 else ''}" + (f" ({said})" if said else "")
        if self.query is not None and self.query.error:
            return f"not understood: {self.query.error}"
        if self.failed:
            return f"{head} · older events could not be read: {self.failed}"
        if self.loading:
            return f"{head} · reading…"
        if self.next is None:
            return f"{head}, back to the oldest recorded · / kind:K KIND:NAME since:30m until:2h"
        return f"{head}, newest first · End reads older · / kind:K KIND:NAME since:30m until:2h"


def history_rows(events: list[EventView], now: float) -> list[tuple[str, tuple[str | Text | Ticking, ...]]]:
    """A run is named by its short id, as the Runs tab names it (and `/` finds it by): its 26
    characters left the reason column 7 at 80 columns (`heartbe`)."""
    return [(f"event:{e.id}", (str(e.id), Ticking("ago", e.at),
                               f"{e.kind}:{short_id(e.name) if e.kind == 'run' else e.name}",
                               f"{e.previous or '(new)'} → {e.new}", e.reason))
            for e in events]


def grown_histories(before: list[EventView] | None, recent: list[EventView]) -> set[str] | None:
    """The things (`kind:name`) with transitions in `recent` (a snapshot's newest events, newest
    first) that `before` (the last snapshot's) had not; None when any may have (no snapshot before,
    or more new events than a snapshot carries). A thing's own last transitions, read for the detail
    pane, are read again only then: re-reading them on every push was a socket round trip and a
    second detail render per push, eight a second on a 1,000-loop host."""
    if before is None:
        return None
    head = max((e.id for e in before), default=0)
    fresh = [e for e in recent if e.id > head]
    if fresh and fresh[-1].id > head + 1 and len(fresh) == len(recent):
        return None  # the snapshot's oldest event is new too: some in between were never seen
    return {f"{e.kind}:{e.name}" for e in fresh}
