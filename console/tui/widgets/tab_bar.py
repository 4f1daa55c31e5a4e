"""The tab bar: every tab on one line, the one in view highlighted; a click opens a tab.

One widget instead of Textual's TabbedContent tabs (a scroller, two containers, a widget per tab and an
animated underline, about 45 ms of CPU on the first frame; tests/bench/bench_tui.py). It also takes
one row instead of two, which an 80x24 terminal gives to the tables.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.style import Style
from rich.text import Text
from textual import events
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget

GAP = 1  # columns between two tabs


def tab_spans(labels: Sequence[str]) -> list[tuple[int, int]]:
    """[start, end) column of each tab, as `tab_line` lays them out (a space either side of the label)."""
    spans, x = [], 0
    for label in labels:
        spans.append((x, x + len(label) + 2))
        x += len(label) + 2 + GAP
    return spans


def tab_at(labels: Sequence[str], x: int) -> int | None:
    """Which tab column `x` falls on, or None for the gaps and the empty rest of the line."""
    return next((i for i, (start, end) in enumerate(tab_spans(labels)) if start <= x < end), None)


def tab_line(labels: Sequence[str], active: int, active_style: Style, other_style: Style) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    pad = Style(bgcolor=active_style.bgcolor)  # the active tab's block, without its underline
    for i, label in enumerate(labels):
        if i:
            text.append(" " * GAP)
        if i == active:
            text.append(" ", pad).append(label, active_style).append(" ", pad)
        else:
            text.append(f" {label} ", other_style)
    return text


class TabBar(Widget):
    """`tabs`: (id, label) pairs. Keys and the palette set `active`; a click posts `Chosen`."""

    COMPONENT_CLASSES = {"tab-bar--active", "tab-bar--other"}
    # Bold and underline carry the active tab where colours do not (NO_COLOR, poor terminals).
    DEFAULT_CSS = """
    TabBar { height: 1; background: $panel; }
    TabBar > .tab-bar--active { background: $primary; color: $foreground; text-style: bold underline; }
    TabBar > .tab-bar--other { color: $text-muted; }
    """
    active: reactive[str] = reactive("")

    class Chosen(Message):
        """A tab was clicked."""

        def __init__(self, tab: str) -> None:
            super().__init__()
            self.tab = tab

    def __init__(self, tabs: Sequence[tuple[str, str]], *, active: str, id: str | None = None) -> None:
        super().__init__(id=id)
        self.tabs = list(tabs)
        self.set_reactive(TabBar.active, active)

    def render(self) -> Text:
        ids = [tab for tab, _ in self.tabs]
        return tab_line([label for _, label in self.tabs], ids.index(self.active) if self.active in ids else -1,
                        self.get_component_rich_style("tab-bar--active"),
                        self.get_component_rich_style("tab-bar--other"))

    def on_click(self, event: events.Click) -> None:
        index = tab_at([label for _, label in self.tabs], event.x)
        if index is not None:
            self.post_message(self.Chosen(self.tabs[index][0]))
