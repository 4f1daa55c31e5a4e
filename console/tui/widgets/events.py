"""The transition log, newest first. Rows are keyed by event id; only unseen events are added and
the cursor stays on the event it was on, so a snapshot never makes the selection jump."""

from __future__ import annotations

import time

from textual.widgets import DataTable

from console.engine.snapshot import EventView


def event_cells(e: EventView) -> tuple[int, str, str, str, str]:
    return (e.id, time.strftime("%H:%M:%S", time.localtime(e.at)), f"{e.kind}:{e.name}",
            f"{e.previous or '(new)'} → {e.new}", e.reason)


class EventsTable(DataTable[object]):
    DEFAULT_CSS = """
    EventsTable { height: 1fr; }
    """

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.add_column("#", key="id")
        for name in ("time", "thing", "transition", "reason"):
            self.add_column(name, key=name)

    def show(self, events: list[EventView]) -> None:
        fresh = [e for e in events if str(e.id) not in self.rows]
        if not fresh:
            return
        selected = None
        if self.row_count and self.is_valid_row_index(self.cursor_row):
            selected = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        for e in fresh:
            self.add_row(*event_cells(e), key=str(e.id))
        self.sort("id", reverse=True)
        if selected is not None:
            self.move_cursor(row=self.get_row_index(selected), animate=False)
