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
from textual.geometry import Size
from textual.message import Message
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowKey

from console.core.printable import printable
from console.tui.column_fit import fit
from console.tui.rows import Cell, Row


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
            natural = [max(cell_len(printable(_plain(cells[i]), lines=False)) for cells in self._cells.values())
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

    def _refresh_header(self) -> None:
        self._require_update_dimensions = True
        self.refresh()


    @property
    def selected_key(self) -> str | None:
        if not self.row_count or not self.is_valid_row_index(self.cursor_row):
            return None
        return str(self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value)

    def sync(self, rows: list[Row]) -> None:
        selected = self.selected_key
        previous = dict(self._cells)
        wanted = dict(rows)
        narrower: set[int] = set()
        changed_membership = False
        for key in [k for k in self._cells if k not in wanted]:
            self.remove_row(key)
            del self._cells[key]
            changed_membership = True
        for key, cells in rows:
            old = self._cells.get(key)
            if old is None:
                self.add_row(*_row(key, cells), key=key)
                changed_membership = True
            elif old != cells:
                for i, ((column, _label), before, after) in enumerate(zip(self._columns, old, cells, strict=True)):
                    if before != after:
                        shown = _first(key, after) if i == 0 else _shown(after)
                        # Textual re-measures the whole column for each narrower value (1,000 loops whose
                        # countdowns tick: quadratic); a wider one only widens it, so ask for that alone
                        # and narrow each column at most once per sync, below.
                        wider = shown.cell_len > self.columns[ColumnKey(column)].content_width
                        self.update_cell(key, column, shown, update_width=wider)
                        if not wider:
                            narrower.add(i)
            self._cells[key] = cells
        self._narrow(narrower)
        self._canonical = [key for key, _ in rows]
        sorted_changed = self.sort_column is not None and any(
            old != self._cells.get(key) for key, old in previous.items())
        if changed_membership or sorted_changed:  # a sorted table re-sorts when a value in it changes
            self._order(rows)
        self._keep_cursor(selected)

    def _narrow(self, columns: set[int]) -> None:
        """Each column that got a narrower value: its width from one pass over its cells."""
        changed = False
        for i in columns:
            column = self.columns[ColumnKey(self._columns[i][0])]
            widest = max((_shown(cells[i]).cell_len for cells in self._cells.values()), default=0)
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
            self.sort(column, self._columns[0][0], reverse=reverse, key=lambda cells: (
                sort_key(_plain(cells[0])), -rank[cells[1].row_key] if reverse else rank[cells[1].row_key]))
            return
        if self._newest_first is not None:
            newest_first = self._newest_first
            self.sort(self._columns[0][0], key=lambda cell: newest_first(cell.row_key), reverse=True)
            return
        current = [str(k.value) for k in self.ordered_row_keys()]
        if current != [key for key, _ in rows]:  # small caller-ordered tables (ranked reasons): rebuild
            self.clear()
            for key, cells in rows:
                self.add_row(*_row(key, cells), key=key)

    def ordered_row_keys(self) -> list[RowKey]:
        return [self.coordinate_to_cell_key(Coordinate(i, 0)).row_key for i in range(self.row_count)]


_NUMBER = re.compile(r"(\d+(?:\.\d+)?)")


def sort_key(text: str) -> tuple[tuple[int, float, str], ...]:
    """Text as people sort it: numbers by value (`10` after `9`), words without regard to case."""
    parts = _NUMBER.split(text.casefold())
    return tuple((1, float(part), "") if i % 2 else (0, 0.0, part) for i, part in enumerate(parts) if part)


def _plain(cell: object) -> str:
    return cell.plain if isinstance(cell, Text) else str(cell)


def _label(label: str) -> Text:
    return Text(label, no_wrap=True, overflow="ellipsis")


def _shown(cell: Cell) -> Text:
    """Control characters as their pictures before Rich measures the cell: Rich counts an ESC as no
    cell and drops a BEL, while the screen filter draws each as one cell, so a row with escapes ran
    past its column (`…bell (gave ut`). One line, ending in `…` where its column is cut to fit."""
    if isinstance(cell, Text):
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


def _first(key: str, cell: Cell) -> _FirstCell:
    first = _FirstCell(no_wrap=True, overflow="ellipsis")
    first.append(_shown(cell))
    first.row_key = key
    return first


def _row(key: str, cells: tuple[Cell, ...]) -> list[Text]:
    return [_first(key, cells[0]), *map(_shown, cells[1:])]
