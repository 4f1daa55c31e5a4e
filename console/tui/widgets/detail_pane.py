"""The detail pane under the tables: what the selected row is, in full."""

from __future__ import annotations

from collections.abc import Hashable

from rich.console import Group
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from console.readmodel.snapshot import EventView, Snapshot
from console.tui.detail import detail_for, history
from console.tui.render_key import render_key
from console.tui.rows import SELECT_HINT


class DetailPane(VerticalScroll):
    DEFAULT_CSS = """
    DetailPane { height: 40%; min-height: 6; border-top: solid $primary-darken-2; padding: 0 1; }
    DetailPane:focus { border-top: thick $accent; }  /* tab moved here: the arrows scroll this, not the table */
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._shown: Hashable | None = None  # the key of what the body draws now (render_key.py)
        self.draws = 0  # bodies handed to the Static: what pushes and ticks cost here (tests count them)

    def compose(self) -> ComposeResult:
        yield Static(id="detail-body")

    def show(self, snap: Snapshot | None, key: str | None, now: float, empty: str = SELECT_HINT, *,
             events: list[EventView] | None = None, event: EventView | None = None, layout: bool = True) -> None:
        """`events`: the selected thing's own last transitions, when they have been read; `event`:
        the selected event's record, read from the log (it may be long gone from the snapshot)."""
        body = detail_for(snap, key, now, empty, event)
        if events is not None:
            body = Group(body, Text(""), Text("last transitions", style="bold"), history(events, now))
        drawn = render_key(body)
        if drawn is not None and drawn == self._shown:  # the same picture: drawing it again is all cost
            return
        self._shown = drawn
        self.draws += 1
        self.query_one("#detail-body", Static).update(body, layout=layout)
