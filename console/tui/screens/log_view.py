"""`l`: a sidecar's log or a run's output, full screen, from the source's `tail` (the owner's socket
in an observing console, never its files). Follows by default; `f` toggles, `/` searches with `n`/`N`,
`g`/`G` go to the top and bottom, `w` wraps, `esc` goes back."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Input, Static

from console.core.actions import ActionError
from console.core.errors import OwnerUnavailable
from console.core.logtail import LogChunk
from console.tui.log_lines import chunk_lines, shown
from console.tui.widgets.key_bar import key_line
from console.tui.widgets.log_view import LogView

HISTORY_LINES = 1000
Tail = Callable[[str, int, bool], AsyncIterator[LogChunk]]
KEYS = [("esc", "back"), ("f", "follow"), ("/", "search"), ("n N", "next/prev"), ("g G", "top/end"),
        ("w", "wrap")]


def header_line(target: str, *, follow: bool, wrap: bool, query: str, current: int | None, matches: list[int],
                ended: str) -> Text:
    """What the log view shows and how: the thing, follow, wrap and the search, in one row."""
    text = Text(" ")
    text.append(shown(target), style="bold")
    text.append(f"  {ended}" if ended else ("  following" if follow else "  paused (f follows)"),
                style="" if follow and not ended else "yellow")
    text.append("  wrap" if wrap else "  no wrap", style="dim")
    if query:
        where = f"{matches.index(current) + 1} of {len(matches)}" if current in matches else \
            f"{len(matches)} matches" if matches else "no match"
        text.append(f"  /{shown(query)}: {where}", style="cyan")
    return text


class LogScreen(Screen[None]):
    OWN_KEYS = True  # the app's action keys (r, t, c, l, 1-6, /) do nothing here
    DEFAULT_CSS = """
    LogScreen #log-header { height: 1; background: $panel; }
    LogScreen #log-search { display: none; height: 1; border: none; padding: 0 1; }
    LogScreen #log-keys { dock: bottom; height: 1; background: $panel; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("f", "follow", "Follow"),
        # Priority: the app runs it before it routes the next key, so a query typed right after `/`
        # (a fast typist, a paste, tmux send-keys) lands in the box, not in the log's keys.
        Binding("slash", "search", "Search", priority=True),
        Binding("n", "step(True)", "Next match"),
        Binding("N", "step(False)", "Previous match"),
        Binding("w", "wrap", "Wrap"),
    ]

    def __init__(self, target: str, tail: Tail) -> None:
        super().__init__()
        self.target = target
        self.tail = tail
        self.ended = ""
        self._file: str | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="log-header")
        yield LogView(id="log")
        yield Input(placeholder="search (enter finds, esc cancels)", id="log-search")
        yield Static(key_line([(key, label, True) for key, label in KEYS], palette=""), id="log-keys")

    @property
    def view(self) -> LogView:
        return self.query_one(LogView)

    def on_mount(self) -> None:
        self._header()
        self.view.focus()
        self.run_worker(self._read(), name="log", exclusive=True, group="log")

    async def _read(self) -> None:
        try:
            async for chunk in self.tail(self.target, HISTORY_LINES, True):
                lines = chunk_lines(chunk, self._file)
                self._file = chunk.file
                if lines:
                    self.view.append(lines)
            self.ended = "ended: the run has finished"
        except ActionError as exc:
            self.ended = f"refused ({exc.code})"
            self.app.notify(f"logs {self.target} refused ({exc.code}): {exc.message}", severity="error",
                            timeout=10)
        except (OwnerUnavailable, OSError) as exc:
            self.ended = "lost the engine"
            self.app.notify(f"logs {self.target}: {exc}", severity="error", timeout=10)
        self._header()

    def _header(self) -> None:
        view = self.view
        self.query_one("#log-header", Static).update(header_line(
            self.target, follow=view.follow, wrap=view.wrap, query=view.query_text, current=view.current,
            matches=view.matches, ended=self.ended))

    def on_log_view_changed(self, _event: LogView.Changed) -> None:
        self._header()

    def action_back(self) -> None:
        box = self.query_one("#log-search", Input)
        if box.display:
            box.display = False
            self.view.focus()
            return
        self.dismiss(None)

    def action_follow(self) -> None:
        self.view.set_follow(not self.view.follow)

    def action_wrap(self) -> None:
        self.view.set_wrap(not self.view.wrap)

    def action_search(self) -> None:
        box = self.query_one("#log-search", Input)
        if self.focused is box:  # a `/` in the query itself
            box.insert_text_at_cursor("/")
            return
        box.value = self.view.query_text
        box.display = True  # at once (a class would apply later), so it can take the focus at once
        self.set_focus(box)  # now, not after the queue: what is typed right after `/` is the query

    def action_step(self, forward: bool) -> None:
        if not self.view.query_text:
            self.app.notify("no search yet: / searches", severity="warning", timeout=4)
            return
        self.view.step(forward=forward)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        event.input.display = False
        self.view.focus()
        self.view.search(event.value)
        if event.value and not self.view.matches:
            self.app.notify(f"/{event.value}: not in the {len(self.view.lines)} lines held", severity="warning",
                            timeout=4)

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()  # the app filters its tables on its own input's changes, not on this one's
