"""The header: tray glyph and state word, the top reason, host name and whether we own or observe."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from console.readmodel.snapshot import Snapshot
from console.readmodel.tray import Level
from console.tui.palette import GLYPHS, TRAY_STYLES


def tray_line(snap: Snapshot, role: str, width: int) -> Text:
    """State and top reason on the left (the reason shortened to fit), host and role on the right."""
    tray = snap.tray
    state = f" {GLYPHS[tray.state]} {tray.state.value.upper()} "
    cp = snap.control_plane.status if snap.control_plane else "none"
    suffix = f"  {snap.host.name} · {role} · cp: {cp} "
    top = next((r for r in tray.reasons if r.level is not Level.OK), None)
    reason = f" {top.text}" if top is not None else ""
    room = max(0, width - len(state) - len(suffix))
    if len(reason) > room:
        reason = reason[: max(0, room - 1)] + "…" if room > 0 else ""
    text = Text()
    text.append(state, style=TRAY_STYLES[tray.state])
    text.append(reason.ljust(room))
    text.append(suffix, style="dim")
    return text


class TrayBar(Static):
    DEFAULT_CSS = """
    TrayBar { height: 1; background: $panel; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._shown: tuple[Snapshot, str] | None = None
        self._facts: tuple[object, ...] | None = None  # what tray_line reads of the snapshot shown
        self.draws = 0  # refreshes asked for (tests count them)

    def show(self, snap: Snapshot, role: str) -> None:
        """Redrawn only when what the line says changed: a push that moved a loop's countdown leaves
        the tray as it was, and each redraw cost a render of the line and a pass of the compositor."""
        self._shown = (snap, role)
        facts = (snap.tray, snap.control_plane.status if snap.control_plane else None, snap.host.name, role)
        if facts == self._facts:
            return
        self._facts = facts
        self.draws += 1
        self.refresh()

    def render(self) -> Text:
        if self._shown is None:
            return Text(" loopctl: connecting…")
        return tray_line(*self._shown, width=self.size.width)
