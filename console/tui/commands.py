"""The command palette (ctrl+p): the same actions as the keys, then the tabs by name, in that order
(the only provider: Textual's system commands would come first, sorted in among them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from textual.command import DiscoveryHit, Hit, Hits, Provider


class PaletteHost(Protocol):
    """What the palette needs of the app (the app imports the palette, not the other way round)."""

    def selected_key(self) -> str | None: ...
    def refusal(self, verb: str) -> str | None: ...
    def make_action_runner(self, verb: str) -> Callable[[], object]: ...
    def make_tab_switcher(self, tab: str) -> Callable[[], object]: ...
    def action_filter(self) -> object: ...
    def action_help(self) -> object: ...
    def action_change_theme(self) -> object: ...
    async def action_quit(self) -> None: ...

TAB_COMMANDS = [("overview", "Show Overview"), ("sidecars", "Show Sidecars"), ("loops", "Show Loops"),
                ("runs", "Show Runs"), ("config", "Show Config"), ("events", "Show Events")]


class LoopctlCommands(Provider):
    def _commands(self) -> list[tuple[str, str, object]]:
        app: PaletteHost = self.app  # type: ignore[assignment]
        key = app.selected_key() or "the selection"
        commands: list[tuple[str, str, object]] = []
        for verb in ("retry", "reclaim", "cancel", "restart", "stop", "start", "trigger", "pause", "resume"):
            why = app.refusal(verb)
            help_text = "applies to the selection" if why is None else f"refused: {why}"
            commands.append((f"{verb.capitalize()} {key}", help_text, app.make_action_runner(verb)))
        for tab, label in TAB_COMMANDS:
            commands.append((label, f"switch to the {tab} tab", app.make_tab_switcher(tab)))
        commands.append(("Filter rows", "type to filter the rows of this tab", app.action_filter))
        commands.append(("Help", "every key and what it does", app.action_help))
        # Of Textual's own commands, these two: a screenshot file or a maximized widget is not an
        # operator's need, and Textual's key panel would sit beside `?`.
        commands.append(("Theme", "change the colours (for a light terminal, say)", app.action_change_theme))
        commands.append(("Quit", "as q: an engine this console owns stops with it", app.action_quit))
        return commands

    async def discover(self) -> Hits:
        for name, help_text, callback in self._commands():
            yield DiscoveryHit(name, callback, help=help_text)  # type: ignore[arg-type]

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, callback in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)  # type: ignore[arg-type]
