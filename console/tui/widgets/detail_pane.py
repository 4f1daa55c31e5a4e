"""The detail pane under the tables: what the selected row is, in full."""

from __future__ import annotations

from collections.abc import Hashable

from rich.console import Group, RenderableType
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
        self._shown_at = 0.0  # the time it was drawn at
        self.draws = 0  # bodies handed to the Static: what pushes and ticks cost here (tests count them)
        self.layouts = 0  # of them, those that laid the screen out again

    def compose(self) -> ComposeResult:
        yield Static(id="detail-body")

    def show(self, snap: Snapshot | None, key: str | None, now: float, empty: str = SELECT_HINT, *,
             events: list[EventView] | None = None, event: EventView | None = None, layout: bool = True) -> None:
        """`events`: the selected thing's own last transitions, when they have been read; `event`:
        the selected event's record, read from the log (it may be long gone from the snapshot).
        `layout=False`: the caller knows only the clock moved (the tick). A push whose facts drew the
        same body at the time last drawn moved only the clock too, and is drawn without a layout:
        a screen's layout per push measured this body again for its height (issue 19)."""
        body = self._body(snap, key, now, empty, events=events, event=event)
        drawn = render_key(body)
        if drawn is not None and drawn == self._shown:  # the same picture: drawing it again is all cost
            return
        if layout and drawn is not None and self._shown is not None and self._shown_at != now:
            layout = render_key(self._body(snap, key, self._shown_at, empty, events=events, event=event)) != self._shown
        self._shown, self._shown_at = drawn, now
        self.draws += 1
        self.layouts += layout
        self.query_one("#detail-body", Static).update(body, layout=layout)

    @staticmethod
    def _body(snap: Snapshot | None, key: str | None, now: float, empty: str, *, events: list[EventView] | None,
              event: EventView | None) -> RenderableType:
        body = detail_for(snap, key, now, empty, event)
        if events is not None:
            body = Group(body, Text(""), Text("last transitions", style="bold"), history(events, now))
        return body
