"""The last step before the terminal: no character the console draws is a control character.

Every widget's lines pass through the app's line filters on their way to the screen, so this is
the one place that covers every path host text takes into view (table cells, the detail pane, a
handoff's markdown, toasts, the palette), whichever widget or library drew it (see
core/printable.py for why).
"""

from __future__ import annotations

from rich.segment import Segment
from textual.color import Color
from textual.filter import LineFilter

from console.core.printable import printable


class ControlPictures(LineFilter):
    def apply(self, segments: list[Segment], background: Color) -> list[Segment]:
        return [segment if segment.control else Segment(printable(segment.text, lines=False), segment.style)
                for segment in segments]
