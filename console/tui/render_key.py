"""What a renderable would draw, as a value to compare, without drawing it. Pure (rich only).

A push at 1,000 loops rebuilds the detail pane's renderable, and drawing it (Rich measures and wraps
every cell of its grid, and a layout measures it again for its height) was a fifth of the console's
CPU while what it showed had not changed (issue 19). Building the renderable is cheap; this says
whether two of them are the same picture, so the widget can skip the draw.

Only the renderables loopctl builds its panes from are known (Text, str, Group, Table, Padding);
anything else (Markdown, a Syntax) has no key, and is always drawn again.
"""

from __future__ import annotations

from collections.abc import Hashable

from rich.console import Group
from rich.padding import Padding
from rich.table import Table
from rich.text import Text


def render_key(renderable: object) -> Hashable | None:
    """Equal keys: the same picture at any width. None: not known here (compare as different)."""
    if isinstance(renderable, str):
        return renderable
    if isinstance(renderable, Text):
        return ("text", renderable.plain, tuple(renderable.spans), str(renderable.style), renderable.justify,
                renderable.overflow, renderable.no_wrap, renderable.end, renderable.tab_size)
    if isinstance(renderable, Group):
        parts = tuple(render_key(r) for r in renderable.renderables)
        return None if None in parts else ("group", renderable.fit, parts)
    if isinstance(renderable, Padding):
        inner = render_key(renderable.renderable)
        return None if inner is None else ("padding", inner, str(renderable.style), renderable.expand,
                                           renderable.top, renderable.right, renderable.bottom, renderable.left)
    if isinstance(renderable, Table):
        return _table_key(renderable)
    return None


def _table_key(table: Table) -> Hashable | None:
    columns = []
    for c in table.columns:
        cells = tuple(render_key(cell) for cell in c._cells)
        header = render_key(c.header)
        if None in cells or header is None:
            return None
        columns.append((header, str(c.style), str(c.header_style), c.justify, c.vertical, c.overflow, c.width,
                        c.min_width, c.max_width, c.ratio, c.no_wrap, cells))
    rows = tuple((str(r.style), r.end_section) for r in table.rows)
    title = render_key(table.title) if table.title is not None else ""
    caption = render_key(table.caption) if table.caption is not None else ""
    if title is None or caption is None:
        return None
    return ("table", tuple(columns), rows, table.box, table.padding, table.collapse_padding, table.pad_edge,
            table.expand, table.show_header, table.show_footer, table.show_edge, table.show_lines,
            table.leading, str(table.style), str(table.row_styles), str(table.header_style), table.width,
            table.min_width, title, caption, table.highlight)
