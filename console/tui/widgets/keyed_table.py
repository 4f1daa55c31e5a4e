"""A DataTable that takes the whole row set each time and changes only what changed, by row key:
new rows are added, gone rows removed, changed cells updated in place. The cursor stays on the
same row key, so a refresh never makes the selection jump (dolphie's approach).

Cells and labels are shown as written. DataTable reads a `str` cell as Rich markup, and cells carry
the host's own text (commands, paths, errors): `[/var/lib/x]` would raise and stop the console, and
`[pid 733]` would vanish as an unknown style."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, ClassVar

from rich.cells import cell_len
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.coordinate import Coordinate
from textual.geometry import Region, Size
from textual.message import Message
from textual.widgets import DataTable
from textual.widgets.data_table import CellKey, ColumnKey, RowKey

from console.core.printable import printable
from console.tui.column_fit import fit
from console.tui.rows import Cell, Row
from console.tui.ticking import Ticking
from console.tui.widgets.textual_cells import forget_rendered


class KeyedTable(DataTable[Cell]):
    DEFAULT_CSS = """
    KeyedTable { height: 1fr; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        Binding("g,home", "scroll_top", "First row", show=False),
        Binding("G,end", "scroll_bottom", "Last row", show=False),
        Binding("s", "cycle_sort", "Sort", show=False),
        Binding("S", "reverse_sort", "Reverse the sort", show=False),
    ]

    def __init__(self, columns: tuple[tuple[str, str], ...], *,
                 newest_first: Callable[[Any], Any] | None = None, id: str | None = None) -> None:
        """`newest_first`: for tables listed newest first, the sort key of a row's key."""
        super().__init__(id=id, cursor_type="row")
        self._columns = columns
        self._newest_first = newest_first
        self._cells: dict[str, tuple[Cell, ...]] = {}
        self._ticking: dict[str, tuple[int, ...]] = {}  # a row's cells that move with the clock
        self._drawn: dict[tuple[str, int], str] = {}  # what each ticking cell shows now
        self._now = 0.0  # the time the ticking cells were last read at
        self.cells_written = 0  # cells handed to DataTable: what a sync or a tick cost (tests count them)
        self._canonical: list[str] = []  # the caller's order of the row keys (newest first, ranked, ...)
        self.sort_column: int | None = None  # None: the caller's order
        self.sort_reverse = False

    class Mounted(Message):
        """Posted once the columns exist: a table mounted late (lazily) can be filled now."""

        def __init__(self, table: KeyedTable) -> None:
            super().__init__()
            self.table = table

    def on_mount(self) -> None:
        for key, label in self._columns:
            self.add_column(_label(label), key=key)
        self.post_message(self.Mounted(self))

    # -- fitting the width it has ----------------------------------------------------------------

    def on_resize(self, _event: events.Resize) -> None:
        self._refresh_header()  # the columns fit the new width (see _update_dimensions)

    def _update_dimensions(self, new_rows: Any) -> None:
        """DataTable's measure, then the columns cut to fit the table's width (column_fit.py): a
        table wider than its widget scrolled sideways, its scrollbar across the middle of the screen."""
        super()._update_dimensions(new_rows)
        # Room for the vertical scrollbar when the rows are taller than the table (it then shows).
        tall = self.virtual_size.height > self.size.height
        room = self.size.width - (self.styles.scrollbar_size_vertical if tall else 0)
        if room <= 0:  # not laid out yet: fitted on its first resize
            return
        columns = list(self.columns.values())
        padding = 2 * self.cell_padding * len(columns)
        room -= padding + self._row_label_column_width
        labels = [c.label.cell_len for c in columns]
        natural = [c.content_width for c in columns]  # DataTable's measure: the cells and the label
        if sum(natural) > room and self._cells:  # to be cut: what the cells themselves need
            natural = [max(cell_len(printable(_text(cells[i], self._now), lines=False))
                           for cells in self._cells.values())
                       for i in range(len(columns))]
        for column, width in zip(columns, fit(natural, labels, room), strict=True):
            cut = width < column.content_width
            column.auto_width, column.width = not cut, width
        width = sum(c.get_render_width(self) for c in columns) + self._row_label_column_width
        if width != self.virtual_size.width:
            self.virtual_size = Size(width, self.virtual_size.height)
            self._clear_caches()
        if self.show_horizontal_scrollbar:
            self._refresh_scrollbars()  # decided on the width before the fit: again

    # -- sorting ---------------------------------------------------------------------------------------

    def action_cycle_sort(self) -> None:
        """`s`: the next column, then back to the table's own order."""
        nxt = 0 if self.sort_column is None else self.sort_column + 1
        self.sort_column = nxt if nxt < len(self._columns) else None
        self.sort_reverse = False
        self._resort()

    def action_reverse_sort(self) -> None:
        """`S`: the other direction (sorting by the first column if nothing was sorted)."""
        if self.sort_column is None:
            self.sort_column = 0
        else:
            self.sort_reverse = not self.sort_reverse
        self._resort()

    @property
    def sort_text(self) -> str:
        if self.sort_column is None:
            return ""
        return f"sorted by {self._columns[self.sort_column][1]} {'↓' if self.sort_reverse else '↑'}"

    def _resort(self) -> None:
        selected = self.selected_key
        for index, (key, label) in enumerate(self._columns):
            mark = "" if index != self.sort_column else (" ↓" if self.sort_reverse else " ↑")
            self.columns[key].label = _label(label + mark)  # type: ignore[index]
        self._refresh_header()
        self._order([(k, self._cells[k]) for k in self._canonical if k in self._cells])
        self._keep_cursor(selected)
        self._redraw_ticking()

    def _refresh_header(self) -> None:
        self._require_update_dimensions = True
        self.refresh()


    @property
    def selected_key(self) -> str | None:
        if not self.row_count or not self.is_valid_row_index(self.cursor_row):
            return None
        return str(self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value)

    def sync(self, rows: list[Row], now: float | None = None) -> None:
        """`rows` in full, as the caller orders them; `now`: the time their ticking cells read (None:
        the time they read last, for a table without any)."""
        if now is not None:
            self._now = now
        now = self._now
        selected = self.selected_key
        previous = dict(self._cells) if self.sort_column is not None else {}  # a sorted table compares them
        wanted = dict(rows)
        narrower: set[int] = set()
        changed_membership = False
        dirty: list[tuple[str, int]] = []
        for key in [k for k in self._cells if k not in wanted]:
            self.remove_row(key)
            del self._cells[key]
            for i in self._ticking.pop(key, ()):
                self._drawn.pop((key, i), None)
            changed_membership = True
        for key, cells in rows:
            old = self._cells.get(key)
            if old is None:
                self.add_row(*_row(key, cells, now), key=key)
                self.cells_written += len(cells)
                changed_membership = True
            elif old is cells or old == cells:  # the same facts (the same tuple, from RowMemo): nothing to do
                continue
            else:
                for i, (before, after) in enumerate(zip(old, cells, strict=True)):
                    if before != after:
                        dirty.append((key, i))
                        if not self._write(key, i, after) and self._was_widest(before, i):
                            narrower.add(i)
            self._cells[key] = cells
            self._track_ticking(key, cells)
        self._narrow(narrower)
        self._canonical = [key for key, _ in rows]
        sorted_changed = self.sort_column is not None and any(
            old != self._cells.get(key) for key, old in previous.items())
        if changed_membership or sorted_changed:  # a sorted table re-sorts when a value in it changes
            self._order(rows)
        self._repaint(dirty)
        self._keep_cursor(selected)
        self._redraw_ticking()  # rows whose facts did not change still read the time of this sync

    # -- the cells that tick ---------------------------------------------------------------------

    def tick(self, now: float) -> int:
        """The ticking cells (countdowns, ages, running durations) of the rows in view, at `now`:
        nothing else is built, compared or drawn. Rows out of view catch up as they scroll in.
        Returns how many cells changed."""
        self._now = now
        return self._redraw_ticking()

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        self._redraw_ticking()  # rows scrolled into view last read the time some seconds ago

    def _track_ticking(self, key: str, cells: tuple[Cell, ...]) -> None:
        ticks = tuple(i for i, cell in enumerate(cells) if isinstance(cell, Ticking))
        for i in self._ticking.get(key, ()):
            if i not in ticks:
                self._drawn.pop((key, i), None)
        if not ticks:
            self._ticking.pop(key, None)
            return
        self._ticking[key] = ticks
        for i in ticks:  # a new row's, drawn as it was added; a written one's, as `_write` wrote it
            self._drawn.setdefault((key, i), _text(cells[i], self._now))

    def rows_in_view(self) -> range:
        """The indexes of the rows on screen (every row here is one line high: cells never wrap)."""
        height = self.size.height - (self.header_height if self.show_header else 0)
        first = int(self.scroll_y)
        return range(first, min(self.row_count, first + max(0, height)))

    def _redraw_ticking(self) -> int:
        if not self._ticking:
            return 0
        dirty: list[tuple[str, int]] = []
        for index in self.rows_in_view():
            row_key = self._row_locations.get_key(index)
            key = str(row_key.value) if row_key is not None else ""
            ticks = self._ticking.get(key)
            if ticks is None:
                continue
            cells = self._cells[key]
            for i in ticks:
                text = _text(cells[i], self._now)
                if self._drawn.get((key, i)) != text:
                    self._write(key, i, cells[i])
                    dirty.append((key, i))
        self._repaint(dirty)
        return len(dirty)

    def _write(self, key: str, i: int, cell: Cell) -> bool:
        """One cell's new value, without DataTable.update_cell's refresh of the whole table per cell
        (`_repaint` redraws the rows written, once). False when it is narrower than its column was:
        the caller narrows the column once, not once per cell (Textual re-measured the whole column
        for each narrower value: 1,000 loops whose countdowns tick, quadratic)."""
        shown = _first(key, cell, self._now) if i == 0 else _shown(cell, self._now)
        row_key, column_key = RowKey(key), ColumnKey(self._columns[i][0])
        self._data[row_key][column_key] = shown
        self.cells_written += 1
        if isinstance(cell, Ticking):
            self._drawn[(key, i)] = shown.plain
        wider = shown.cell_len > self.columns[column_key].content_width
        if wider:  # only widens it: measured on DataTable's next idle pass
            self._updated_cells.add(CellKey(row_key, column_key))
            self._require_update_dimensions = True
        return wider

    def _repaint(self, written: list[tuple[str, int]]) -> None:
        """The cells written, drawn again and nothing else. DataTable.update_cell bumps a count that is
        in every one of its render caches' keys and refreshes the whole table: a tick that changed one
        countdown in each of 37 rows rendered every cell of the screen again. Instead, what its caches
        hold of these cells and their rows' lines is dropped (textual_cells.py), and only these rows'
        lines are marked for the next frame."""
        if not written:
            return
        cells = {(RowKey(key), ColumnKey(self._columns[i][0])) for key, i in written if key in self._cells}
        rows = {row for row, _column in cells}
        indexes = {index: row for row in rows if (index := self._row_locations.get(row)) is not None}
        forget_rendered(self, cells, indexes)
        header = self.header_height if self.show_header else 0
        width = max(self.size.width, self.virtual_size.width)
        in_view = self.rows_in_view()
        for index in indexes:  # every row here is one line high: cells never wrap
            if index in in_view:  # a row out of view is drawn from its data when it scrolls in
                self._refresh_region(Region(0, index + header, width, 1))

    def _was_widest(self, before: Cell, i: int) -> bool:
        """Could the value replaced have been what made its column as wide as it is? Only then can the
        column narrow (a loop's current run cleared to "-" beside 999 others: no pass over them)."""
        return _width(before, self._now) >= self.columns[ColumnKey(self._columns[i][0])].content_width

    def _narrow(self, columns: set[int]) -> None:
        """Each column that lost its widest value: its width from one pass over its cells."""
        changed = False
        for i in columns:
            column = self.columns[ColumnKey(self._columns[i][0])]
            widest = max((_width(cells[i], self._now) for cells in self._cells.values()), default=0)
            width = max(widest, column.label.cell_len)
            if width < column.content_width:
                column.content_width = width
                changed = True
        if changed:
            self._require_update_dimensions = True  # DataTable lays its columns out again on its next refresh
            self.refresh()

    def _keep_cursor(self, selected: str | None) -> None:
        if selected is not None and selected in self._cells:
            index = self.get_row_index(RowKey(selected))
            if index != self.cursor_row:  # moving the cursor repaints: only when the row really moved
                self.move_cursor(row=index, animate=False, scroll=False)

    def _order(self, rows: list[Row]) -> None:
        if self.sort_column is not None:
            # Stable: rows that sort alike keep the table's own order, in either direction.
            rank = {key: i for i, (key, _) in enumerate(rows)}
            column, reverse = self._columns[self.sort_column][0], self.sort_reverse
            now = self._now
            self.sort(column, self._columns[0][0], reverse=reverse, key=lambda cells: (
                _sort_key(cells[0], now), -rank[cells[1].row_key] if reverse else rank[cells[1].row_key]))
            return
        if self._newest_first is not None:
            newest_first = self._newest_first
            self.sort(self._columns[0][0], key=lambda cell: newest_first(cell.row_key), reverse=True)
            return
        current = [str(k.value) for k in self.ordered_row_keys()]
        if current != [key for key, _ in rows]:  # small caller-ordered tables (ranked reasons): rebuild
            self.clear()
            for key, cells in rows:
                self.add_row(*_row(key, cells, self._now), key=key)

    def ordered_row_keys(self) -> list[RowKey]:
        return [self.coordinate_to_cell_key(Coordinate(i, 0)).row_key for i in range(self.row_count)]


_NUMBER = re.compile(r"(\d+(?:\.\d+)?)")


def sort_key(text: str) -> tuple[tuple[int, float, str], ...]:
    """Text as people sort it: numbers by value (`10` after `9`), words without regard to case."""
    parts = _NUMBER.split(text.casefold())
    return tuple((1, float(part), "") if i % 2 else (0, 0.0, part) for i, part in enumerate(parts) if part)


def _plain(cell: object) -> str:
    return cell.plain if isinstance(cell, Text) else str(cell)


def _text(cell: Cell, now: float) -> str:
    return cell.text(now) if isinstance(cell, Ticking) else _plain(cell)


def _width(cell: Cell, now: float) -> int:
    """The cells the value takes on screen, as `_shown` draws it, without building its Text."""
    return cell_len(printable(_text(cell, now), lines=False))


def _sort_key(shown: object, now: float) -> tuple[tuple[int, float, str], ...]:
    """A ticking cell sorts by what it says as a number of seconds, the others as people read them."""
    if isinstance(shown, _TickingText):
        return ((1, shown.ticking.seconds(now), ""),)
    return sort_key(_plain(shown))


def _label(label: str) -> Text:
    return Text(label, no_wrap=True, overflow="ellipsis")


class _TickingText(Text):
    """A ticking cell's text at one instant, carrying the cell (for sorting by its time)."""

    ticking: Ticking


def _shown(cell: Cell, now: float) -> Text:
    """Control characters as their pictures before Rich measures the cell: Rich counts an ESC as no
    cell and drops a BEL, while the screen filter draws each as one cell, so a row with escapes ran
    past its column (`…bell (gave ut`). One line, ending in `…` where its column is cut to fit."""
    if isinstance(cell, Ticking):
        ticking = _TickingText(cell.text(now))
        ticking.ticking = cell
        shown: Text = ticking
    elif isinstance(cell, Text):
        shown = cell.copy() if printable(cell.plain, lines=False) == cell.plain else \
            Text(printable(cell.plain, lines=False), style=cell.style)
    else:
        shown = Text(printable(cell, lines=False))
    shown.no_wrap, shown.overflow = True, "ellipsis"
    return shown


class _FirstCell(Text):
    """The first column's cell, carrying its row's key: DataTable sorts on cells, and a newest-first
    table sorts on the key (a run's whole id, where the cell shows its short form)."""

    row_key: str = ""


def _first(key: str, cell: Cell, now: float) -> _FirstCell:
    first = _FirstCell(no_wrap=True, overflow="ellipsis")
    first.append(_shown(cell, now))
    first.row_key = key
    return first


def _row(key: str, cells: tuple[Cell, ...], now: float) -> list[Text]:
    return [_first(key, cells[0], now), *(_shown(cell, now) for cell in cells[1:])]
