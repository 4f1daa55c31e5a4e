"""`loopctl fleet`: one row per host, kept current by the fleet's watches (or Prometheus), the
header the worst host's tray. `enter` hands the selected host to the CLI, which opens that host's
console in place (esc there comes back); `/` filters; `q` quits."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import ClassVar

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Input, Static

from console.core.clock import Clock, SystemClock
from console.fleet.table import COLUMNS, Feed, HostStatus, fleet_level, row_cells, summary
from console.readmodel.tray import Level
from console.tui.palette import GLYPHS, LEVEL_STYLES, RED, TRAY_STYLES
from console.tui.rows import Cell, Row, matches
from console.tui.widgets.key_bar import KeyBar
from console.tui.widgets.keyed_table import KeyedTable

PROBLEM_STYLES = {"unreachable": f"bold {RED}", "stale": "bold yellow", "connecting": "dim"}


def fleet_rows(statuses: list[HostStatus], now: float) -> list[Row]:
    rows: list[Row] = []
    for s in statuses:
        host, state, *rest = row_cells(s, now)
        style = LEVEL_STYLES[s.level] if s.level is not None else PROBLEM_STYLES.get(s.problem, "")
        glyph = GLYPHS[s.level] if s.level is not None else "?"
        cells: tuple[Cell, ...] = (host, Text(f"{glyph} {state}", style=style), *rest)
        rows.append((s.name, cells))
    return rows


def header_line(statuses: list[HostStatus], title: str, width: int, problem: str = "") -> Text:
    level = fleet_level(statuses) if not problem else Level.DOWN
    state = f" {GLYPHS[level]} {level.value.upper()} "
    bad = [s for s in statuses if s.level is not Level.OK]
    said = summary(statuses).split(" - ", 1)[-1]
    worst = next((s for s in sorted(bad, key=lambda s: -(s.level.rank if s.level else 3))), None)
    detail = f" {problem}" if problem else f" {said}" + (f" · worst: {worst.name}" if worst is not None else "")
    suffix = f"  {title} "
    room = max(0, width - len(state) - len(suffix))
    if len(detail) > room:
        detail = detail[: max(0, room - 1)] + "…" if room > 0 else ""
    text = Text()
    text.append(state, style=TRAY_STYLES[level])
    text.append(detail.ljust(room))
    text.append(suffix, style="dim")
    return text


class FleetApp(App[str | None]):
    TITLE = "loopctl fleet"
    CSS = """
    #fleet-tray { height: 1; background: $panel; }
    #fleet-filter { display: none; height: 3; }
    #fleet-filter.shown { display: block; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("enter", "open", "Open host"),
        Binding("slash", "filter", "Filter"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]

    def __init__(self, feed: Feed, *, title: str, clock: Clock | None = None, selected: str | None = None,
                 refuse: Callable[[str], str | None] | None = None) -> None:
        """`selected`: the host to put the cursor on (the one whose console the operator came back from).
        `refuse`: why a host's console cannot be opened (no ssh URL for it), None when it can."""
        super().__init__()
        self.feed = feed
        self.refuse = refuse
        self.selected = selected
        self.title_text = title
        self.clock = clock or SystemClock()
        self.filter_text = ""
        self._statuses: list[HostStatus] = []
        self._header: Text | None = None
        self._redraw_queued = False  # set on the watches' thread, cleared on this one

    def compose(self) -> ComposeResult:
        yield Static(id="fleet-tray")
        yield KeyedTable(COLUMNS, id="fleet-table")
        yield Input(placeholder="filter hosts (esc clears)", id="fleet-filter")
        yield KeyBar(id="keys")

    def on_mount(self) -> None:
        loop = asyncio.get_running_loop()

        def changed() -> None:  # from the watches' thread: hop onto ours, never block theirs
            # One redraw per burst: at launch every host answers within moments of the others (all at once
            # when their ssh masters are up), and each redraw reads every host anyway. A change that comes
            # while one is queued is in it: the redraw reads the statuses after it clears the flag.
            if self._redraw_queued:
                return
            self._redraw_queued = True
            with contextlib.suppress(RuntimeError):  # this app's loop has closed: nothing to show it on
                loop.call_soon_threadsafe(self._pushed)

        self.feed.notify = changed
        self.query_one(KeyBar).show([("q", "quit", True), ("enter", "open host", True), ("/", "filter", True)])
        self.set_interval(1.0, self._refresh)  # the ages move every second
        self.query_one(KeyedTable).focus()

    def on_keyed_table_mounted(self, _event: KeyedTable.Mounted) -> None:
        self._refresh()

    def _pushed(self) -> None:
        self._redraw_queued = False
        self._refresh()

    def _refresh(self) -> None:
        if not self.is_running:
            return
        self._statuses = self.feed.statuses()
        now = self.clock.time()
        header = self.query_one("#fleet-tray", Static)
        line = header_line(self._statuses, self.title_text, header.size.width or 80, self.feed.problem)
        if line != self._header:  # the 1 s tick redraws only what time changed
            self._header = line
            header.update(line)
        rows = [row for row in fleet_rows(self._statuses, now) if matches(row, self.filter_text)]
        table = self.query_one(KeyedTable)
        table.sync(rows, now)
        if self.selected is not None and table.row_count:  # once: back from a host, on that host's row
            keys = [key for key, _cells in rows]
            if self.selected in keys:
                table.move_cursor(row=keys.index(self.selected))
            self.selected = None

    def on_data_table_row_selected(self, _event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        key = self.query_one(KeyedTable).selected_key
        if key is None:
            return
        why = self.refuse(key) if self.refuse is not None else None
        if why is not None:
            self.notify(why, severity="warning", timeout=8, markup=False)
            return
        self.exit(key)

    def action_filter(self) -> None:
        box = self.query_one("#fleet-filter", Input)
        box.add_class("shown")
        box.focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#fleet-filter", Input)
        box.value = ""
        box.remove_class("shown")
        self.filter_text = ""
        self._refresh()
        self.query_one(KeyedTable).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value.strip()
        self._refresh()

    def on_input_submitted(self, _event: Input.Submitted) -> None:
        self.query_one(KeyedTable).focus()
