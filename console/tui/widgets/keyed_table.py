"""A DataTable that takes the whole row set each time and changes only what changed, by row key:
new rows are added, gone rows removed, changed cells updated in place. The cursor stays on the
same row key, so a refresh never makes the selection jump (dolphie's approach).

Cells and labels are shown as written. DataTable reads a `str` cell as Rich markup, and cells carry
the host's own text (commands, paths, errors): `[/var/lib/x]` would raise and stop the console, and
`[pid 733]` would vanish as an unknown style."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual.coordinate import Coordinate
from textual.message import Message
from textual.widgets import DataTable
from textual.widgets.data_table import RowKey

from console.tui.rows import Cell, Row


class KeyedTable(DataTable[Cell]):
    DEFAULT_CSS = """
    KeyedTable { height: 1fr; }
    """

    def __init__(self, columns: tuple[tuple[str, str], ...], *,
                 newest_first: Callable[[Any], Any] | None = None, id: str | None = None) -> None:
        """`newest_first`: for tables listed newest first, the sort key of a row's key."""
        super().__init__(id=id, cursor_type="row")
        self._columns = columns
        self._newest_first = newest_first
        self._cells: dict[str, tuple[Cell, ...]] = {}

    class Mounted(Message):
        """Posted once the columns exist: a table mounted late (lazily) can be filled now."""

        def __init__(self, table: KeyedTable) -> None:
            super().__init__()
            self.table = table

    def on_mount(self) -> None:
        for key, label in self._columns:
            self.add_column(Text(label), key=key)
        self.post_message(self.Mounted(self))

    @property
    def selected_key(self) -> str | None:
        if not self.row_count or not self.is_valid_row_index(self.cursor_row):
            return None
        return str(self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value)

    def sync(self, rows: list[Row]) -> None:
        selected = self.selected_key
        wanted = dict(rows)
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
                        self.update_cell(key, column, _first(key, after) if i == 0 else _shown(after),
                                         update_width=True)
            self._cells[key] = cells
        if changed_membership:
            self._order(rows)
        if selected is not None and selected in self._cells:
            index = self.get_row_index(RowKey(selected))
            if index != self.cursor_row:  # moving the cursor repaints: only when the row really moved
                self.move_cursor(row=index, animate=False, scroll=False)

    def _order(self, rows: list[Row]) -> None:
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


def _shown(cell: Cell) -> Text:
    return cell if isinstance(cell, Text) else Text(cell)


class _FirstCell(Text):
    """The first column's cell, carrying its row's key: DataTable sorts on cells, and a newest-first
    table sorts on the key (a run's whole id, where the cell shows its short form)."""

    row_key: str = ""


def _first(key: str, cell: Cell) -> _FirstCell:
    first = _FirstCell()
    first.append(_shown(cell))
    first.row_key = key
    return first


def _row(key: str, cells: tuple[Cell, ...]) -> list[Text]:
    return [_first(key, cells[0]), *map(_shown, cells[1:])]
