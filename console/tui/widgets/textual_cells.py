"""Forgetting what Textual's DataTable cached of a few cells, so that writing them redraws only them.

DataTable keys each of its render caches by an update count that `update_cell` bumps, so one cell
written makes the whole table render again, every cell of every line on screen. KeyedTable writes
the cells itself and drops, here, only the entries of the cells it wrote (Textual 8.2's caches; a
Textual that renames them fails tests/tui/test_ticking.py, which checks what is on screen after a
write). Everything else stays cached.
"""

from __future__ import annotations

from typing import Any

from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowKey


def forget_rendered(table: DataTable[Any], cells: set[tuple[RowKey, ColumnKey]],
                    rows: dict[int, RowKey]) -> None:
    """`cells`: (row, column) written; `rows`: their rows, by index."""
    indexes = set(rows)
    keys = set(rows.values())
    header = table.header_height if table.show_header else 0
    count = table._update_count
    for index in indexes:
        table._row_renderable_cache.discard((count, index))  # (update count, row index)
    _drop(table._cell_render_cache, lambda key: (key[0], key[1]) in cells)  # (row key, column key, ...)
    _drop(table._row_render_cache, lambda key: key[0] in keys)  # (row key, line in row, ...)
    _drop(table._line_cache, lambda key: key[0] - header in indexes)  # (line y, ...): one line a row


def _drop(cache: Any, hit: Any) -> None:
    for key in [key for key in cache.keys() if hit(key)]:  # noqa: SIM118 (an LRUCache: no __iter__)
        cache.discard(key)
