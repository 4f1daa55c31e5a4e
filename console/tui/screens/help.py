"""`?`: every key, what it does, and when it is refused."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS = [
    ("1-6", "tabs: Overview, Sidecars, Loops, Runs, Config, Events"),
    ("↑ ↓ j k PgUp PgDn", "move the selection (it stays put while data refreshes)"),
    ("g G Home End", "the first row, the last row"),
    ("s / S", "sort by the next column (then the table's own order again) / the other way"),
    ("y", "copy the selected thing's id to the clipboard (OSC 52: works over SSH and in tmux)"),
    ("enter", "enlarge or shrink the detail pane"),
    ("tab / shift+tab", "into the detail pane and back: its arrows then scroll a long detail"),
    ("r", "reclaim the selected sidecar: end what an earlier engine left, then relaunch (asks first)"),
    ("t", "retry: a failed sidecar, an escalated loop, or a finished run"),
    ("c", "cancel the selected queued or running run: its whole process group ends (asks first)"),
    ("R", "restart a working sidecar: stopped, then launched anew (asks first)"),
    ("x", "stop a sidecar and keep it stopped, across reloads and restarts (asks first)"),
    ("u", "start a sidecar an operator stopped"),
    ("T", "trigger the selected loop: its next run now (refused while one runs)"),
    ("p / P", "pause the selected loop here (a running run ends, asks first) / resume it"),
    ("l", "the selected sidecar's log or run's output, full screen: f follow, / search, n N, g G, w wrap, "
          "esc back"),
    ("/", "filter the rows of this tab; esc clears it. On Events it queries the whole log: kind:K, a thing "
          "(sidecar:web, run:2QVPQ06K), since:30m, until:2h (or 2026-01-01T02:00), other words match the rows"),
    ("6, End", "Events: the whole event log, newest first; End (or ↓ on the last row) reads the next older page"),
    ("esc", "dismiss the toasts, else clear the filter, else (opened from the fleet) back to it"),
    ("ctrl+p", "command palette: the same actions, and the tabs, by name"),
    ("d", "on a host with nothing configured: close, and open the demo host (`loopctl demo`)"),
    ("?", "this help"),
    ("q ctrl+c", "quit (an engine this console owns stops with it; one it observes keeps running)"),
]


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 90%; max-width: 100; height: auto; max-height: 100%;
                                  border: thick $primary; padding: 0 1; background: $surface; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,question_mark", "close", "Close")]

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold", no_wrap=True)
        table.add_column()
        for key, text in KEYS:
            table.add_row(key, text)
        # At 80x24 the keys are taller than the screen: the box scrolls (arrows, PgUp/PgDn) instead of
        # losing its last lines below the edge.
        with VerticalScroll() as box:
            # On the border, so it stays in view however far the keys scroll.
            box.border_title = "loopctl keys"
            box.border_subtitle = "esc closes · ↑ ↓ PgUp PgDn scroll"
            yield Static("[b]loopctl keys[/b]  (the footer lists the actions that apply to the selection; "
                         "the others are refused with the reason; --read-only disables every action)", markup=True)
            yield Static(table)

    def action_close(self) -> None:
        self.dismiss(None)
