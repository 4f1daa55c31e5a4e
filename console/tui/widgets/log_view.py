"""The log's lines on screen (Textual's line API): only the rows in view are drawn, so a long log
costs its visible rows per frame. Following keeps the newest line in view; moving up stops that."""

from __future__ import annotations

from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from console.tui.log_lines import LogLine, Row, matching, next_match, rows_of, spans, trimmed

HEADER = Style(dim=True, italic=True)
MATCH = Style(reverse=True)
CURRENT = Style(bgcolor="yellow", color="black", bold=True)


class LogView(ScrollView, can_focus=True):
    DEFAULT_CSS = """
    LogView { height: 1fr; overflow-x: auto; overflow-y: auto; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "scroll_down", "Down", show=False),
        Binding("k,up", "up", "Up", show=False),
        Binding("g,home", "top", "Top", show=False),
        Binding("G,end", "bottom", "Bottom", show=False),
        Binding("pageup", "page_up_stop", "Page up", show=False),
    ]

    class Changed(Message):
        """Follow, wrap or the search moved: the screen's header says so."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.lines: list[LogLine] = []
        self.rows: list[Row] = []
        self.follow = True
        self.wrap = False
        self.query_text = ""
        self.matches: list[int] = []
        self.current: int | None = None  # the line of the current match
        self._laid_width = -1
        self._widest = 0

    # -- content ------------------------------------------------------------------------------------

    def append(self, lines: list[LogLine]) -> None:
        first = len(self.lines)
        self.lines.extend(lines)
        drop = trimmed(self.lines)
        if drop:
            del self.lines[:drop]
            self.current = None if self.current is None or self.current < drop else self.current - drop
            self._relayout()
        else:
            new = rows_of(self.lines, first, self._width(), wrap=self.wrap)
            self.rows.extend(new)
            self._widest = max([self._widest, *(len(row.text) for row in new)])
            if self.query_text:
                self.matches.extend(first + i for i in matching(self.lines[first:], self.query_text))
            self._resize()
        if self.follow:
            self._to_end()
        self.refresh()

    def _to_end(self) -> None:
        """The newest line in view, once the new virtual size is laid out (not before: the scroll
        would stop at the old end)."""
        self.call_after_refresh(self.scroll_end, animate=False, immediate=True, x_axis=False)

    def _width(self) -> int:
        return max(1, self.scrollable_content_region.width)

    def _relayout(self) -> None:
        self._laid_width = self._width()
        self.rows = rows_of(self.lines, 0, self._laid_width, wrap=self.wrap)
        self._widest = max((len(row.text) for row in self.rows), default=0)
        if self.query_text:
            self.matches = matching(self.lines, self.query_text)
        self._resize()

    def _resize(self) -> None:
        width = self._width() if self.wrap else max(self._widest, self._width())
        self.virtual_size = Size(width, len(self.rows))

    def on_resize(self) -> None:
        if self.wrap and self._width() != self._laid_width:
            self._relayout()
            if self.follow:
                self._to_end()

    # -- drawing ------------------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y
        width = self.scrollable_content_region.width
        if index >= len(self.rows):
            return Strip.blank(width, self.rich_style)
        row = self.rows[index]
        line = self.lines[row.line]
        text = Text(row.text, style=HEADER if line.header else "", no_wrap=True, end="")
        if self.query_text and not line.header:
            style = CURRENT if row.line == self.current else MATCH
            for start, end in spans(line.text, self.query_text):
                text.stylize(style, max(0, start - row.start), max(0, end - row.start))
        segments = list(text.render(self.app.console))
        strip = Strip(segments).apply_style(self.rich_style)
        if not self.wrap:
            strip = strip.crop(scroll_x, scroll_x + width)
        return strip.extend_cell_length(width, self.rich_style).crop(0, width)

    # -- follow, wrap, search -------------------------------------------------------------------------

    def set_follow(self, on: bool) -> None:
        self.follow = on
        if on:
            self._to_end()
        self.post_message(self.Changed())

    def set_wrap(self, on: bool) -> None:
        self.wrap = on
        self.scroll_x = 0
        self._relayout()
        if self.current is not None:
            self._show_current()
        elif self.follow:
            self._to_end()
        self.refresh()
        self.post_message(self.Changed())

    def search(self, query: str) -> None:
        """Highlight `query` and go to a match: following, the newest; else the first from the top of
        the view on (wrapping around), as `less` searches."""
        self.query_text = query
        self.matches = matching(self.lines, query)
        top = self.rows[int(self.scroll_y)].line if self.rows and int(self.scroll_y) < len(self.rows) else None
        if self.follow or top is None:
            self.current = next_match(self.matches, None, forward=False)
        else:
            self.current = next_match(self.matches, top - 1, forward=True)
        if self.current is not None:
            self.follow = False
            self._show_current()
        self.refresh()
        self.post_message(self.Changed())

    def step(self, *, forward: bool) -> None:
        self.current = next_match(self.matches, self.current, forward=forward)
        if self.current is not None:
            self.follow = False
            self._show_current()
        self.refresh()
        self.post_message(self.Changed())

    def _show_current(self) -> None:
        row = next((i for i, r in enumerate(self.rows) if r.line == self.current), None)
        if row is None:
            return
        height = self.scrollable_content_region.height
        if not self.scroll_y <= row < self.scroll_y + height:
            self.scroll_to(y=max(0, row - height // 3), animate=False, immediate=True)
        if not self.wrap and self.current is not None:
            hit = spans(self.lines[self.current].text, self.query_text)
            width = self.scrollable_content_region.width
            if hit and not self.scroll_x <= hit[0][0] < self.scroll_x + width - len(self.query_text):
                self.scroll_to(x=max(0, hit[0][0] - width // 3), animate=False, immediate=True)

    # -- keys -----------------------------------------------------------------------------------------

    def _stop_following(self) -> None:
        if self.follow:
            self.follow = False
            self.post_message(self.Changed())

    def action_up(self) -> None:
        self._stop_following()
        self.scroll_up(animate=False)

    def action_page_up_stop(self) -> None:
        self._stop_following()
        self.scroll_page_up(animate=False)

    def action_top(self) -> None:
        self._stop_following()
        self.scroll_home(animate=False, immediate=True)

    def action_bottom(self) -> None:
        self.scroll_end(animate=False, immediate=True, x_axis=False)
