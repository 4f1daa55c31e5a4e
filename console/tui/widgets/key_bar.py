"""The footer: every shown key with its label, the action keys dimmed when they do not apply.

One Static instead of Textual's Footer: the Footer is a widget per key and rebuilds them all on every
binding refresh, which was a measurable share of the console's first frame (tests/bench/bench_tui.py).
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text
from textual.widgets import Static

KEY_STYLE = "bold dark_orange"


def key_line(keys: Iterable[tuple[str, str, bool]], palette: str = "^p palette") -> Text:
    """`keys`: (key as shown, label, enabled). Disabled keys stay visible, dimmed."""
    text = Text(" ")
    for shown, label, enabled in keys:
        text.append(f"{shown} ", style=KEY_STYLE if enabled else "dim")
        text.append(f"{label}  ", style="" if enabled else "dim")
    text.append(f"  {palette}", style="dim")
    return text


class KeyBar(Static):
    DEFAULT_CSS = """
    KeyBar { dock: bottom; height: 1; background: $panel; }
    """

    def show(self, keys: Iterable[tuple[str, str, bool]]) -> None:
        self.update(key_line(keys))
