"""The tabs' pages: one shown at a time, above the detail pane. It says when its size changes,
so the toasts can be kept over it (app.py `_place_toasts`): at 80x24 they covered the detail pane,
which is what an operator reads while they show."""

from __future__ import annotations

from textual import events
from textual.message import Message
from textual.widgets import ContentSwitcher


class TabPages(ContentSwitcher):
    class Resized(Message):
        """The pages' room changed: the terminal, the detail pane's height or the filter box."""

    def on_resize(self, _event: events.Resize) -> None:
        self.post_message(self.Resized())
