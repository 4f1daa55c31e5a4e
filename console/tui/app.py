"""The loopctl console: tray header, six tabs, a detail pane, and the actions.

It owns the host in-process when no engine runs, else observes the owner through its socket (and
offers to take over if that owner goes away). It only ever renders snapshots.
"""

from __future__ import annotations

import asyncio
import gc
import signal
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, ClassVar

from rich.console import Group
from rich.text import Text
from textual import events
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.css.query import NoMatches
from textual.lazy import Lazy
from textual.screen import ModalScreen, Screen
from textual.widgets import ContentSwitcher, DataTable, Input, Static
from textual.widgets._toast import ToastRack

from console.core.actions import ActionError
from console.core.clock import Clock, SystemClock
from console.core.decode import DecodeError
from console.core.errors import LoopctlError, OwnerUnavailable
from console.core.paths import Paths
from console.core.printable import printable
from console.core.time_text import duration
from console.readmodel.snapshot import EventView, Snapshot
from console.tui.alerts import new_failures
from console.tui.config_tab import config_body
from console.tui.detail import ticks
from console.tui.event_history import PAGE, History, grown_histories, history_rows, parse_query
from console.tui.feed import Push, snapshot_of_push
from console.tui.pacing import Pacer
from console.tui.rows import SELECT_HINT, TABLES, RowMemo, counts, matches, placeholder, subject_of
from console.tui.screen_filter import ControlPictures
from console.tui.selection import DESTRUCTIVE, applicable, logs_refusal
from console.tui.source import ObservedSource, OwnedSource, RemoteSource, Source
from console.tui.widgets.detail_pane import DetailPane
from console.tui.widgets.key_bar import KeyBar
from console.tui.widgets.keyed_table import KeyedTable
from console.tui.widgets.tab_bar import TabBar
from console.tui.widgets.tab_pages import TabPages
from console.tui.widgets.tray_bar import TrayBar

if TYPE_CHECKING:  # what only some paths need is imported there: the first frame pays for none of it
    from textual.command import Provider
    from textual.driver import Driver
    from textual.filter import LineFilter
    from textual.notifications import SeverityLevel

    from console.core.config import LoadedConfig

CONTROL_PICTURES = ControlPictures()
TABS = [("overview", "Overview"), ("sidecars", "Sidecars"), ("loops", "Loops"), ("runs", "Runs"),
        ("config", "Config"), ("events", "Events")]
TABS_BY_NAME = dict(TABS)
NEXT_OWNER_LOOK = 0.5  # seconds between looks for the next owner, after a declined takeover
HISTORY_AGAIN = 2.0  # seconds between reads of the selected thing's transitions while pushes skip events
ACTION_KEYS = {"r": "reclaim", "t": "retry", "c": "cancel", "R": "restart", "x": "stop", "u": "start", "T": "trigger",
               "p": "pause", "P": "resume"}
ACTION_VERBS = sorted(set(ACTION_KEYS.values()))
KEY_NAMES = {"slash": "/", "question_mark": "?"}
HISTORY_KINDS = ("sidecar", "loop", "run")  # things whose detail ends with their own last transitions
MAIN_ONLY = ("act", "logs", "filter", "tab", "demo", "dismiss", "copy")  # not while a screen with its own keys is up
CONFIRM_TEXT = {
    "reclaim": "Ends what an earlier engine left running for this sidecar, if it is provably ours, then "
               "relaunches it. A foreign process is never signalled.",
    "cancel": "Ends the run's whole process group (SIGTERM, then SIGKILL after 2 s). Its stop reason "
              "becomes `cancelled`.",
    "stop": "Ends the sidecar's process group (SIGTERM, then SIGKILL after its grace). It stays stopped, "
            "across reloads and restarts, until it is started (u, or `loopctl start`).",
    "restart": "Ends the sidecar's process group (SIGTERM, then SIGKILL after its grace) and launches it anew.",
    "pause": "No run of this loop starts, across restarts, until it is resumed (P, or `loopctl resume`). A run "
             "that is running now ends (SIGTERM, then SIGKILL after 2 s), with stop reason `paused`.",
}


def _commands() -> type[Provider]:
    from console.tui.commands import LoopctlCommands  # noqa: PLC0415

    return LoopctlCommands


def _hangup_safe_driver() -> type[Driver]:
    from console.tui.terminal import HangupSafeDriver  # noqa: PLC0415

    return HangupSafeDriver


def _confirm(question: str, detail: str) -> ModalScreen[bool]:
    from console.tui.screens.confirm import ConfirmScreen  # noqa: PLC0415

    return ConfirmScreen(question, detail)


class LoopctlApp(App[int]):
    TITLE = "loopctl"
    COMMANDS = {_commands}  # loopctl's own, in its order; Textual's theme and quit are among them
    CSS = """
    #counts { padding: 0 1; height: auto; }
    #config-body { padding: 1 2; }
    #filter { display: none; height: 1; border: none; padding: 0 1; background: $panel; }
    #filter.shown { display: block; }
    DetailPane.enlarged { height: 1fr; }
    #tabs { height: 1fr; }
    Toast { padding: 0 1; max-width: 75%; }  /* at 80x24: fewer lines, and three padded toasts hid the screen */
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        # As q, not Textual's toast telling to press ctrl+q: what hands expect of a terminal program.
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
        Binding("y", "copy", "Copy id", show=False),
        Binding("r", "act('reclaim')", "Reclaim"),
        Binding("t", "act('retry')", "Retry"),
        Binding("c", "act('cancel')", "Cancel"),
        Binding("R", "act('restart')", "Restart"),
        Binding("x", "act('stop')", "Stop"),
        Binding("u", "act('start')", "Start"),
        Binding("T", "act('trigger')", "Trigger"),
        Binding("p", "act('pause')", "Pause"),
        Binding("P", "act('resume')", "Resume"),
        Binding("l", "logs", "Logs"),
        Binding("slash", "filter", "Filter"),
        Binding("question_mark", "help", "Help"),
        Binding("escape", "dismiss", "Dismiss toasts, else clear the filter", show=False),
        Binding("d", "demo", "Demo", show=False),  # on the key bar only while the host is empty
        *[Binding(str(i), f"tab('{tab}')", label, show=False) for i, (tab, label) in enumerate(TABS, 1)],
    ]

    def __init__(self, source: Source, *, paths: Paths | None, loaded: LoadedConfig | None = None,
                 read_only: bool = False, clock: Clock | None = None, quit_on_hangup: bool = False,
                 back: bool = False) -> None:
        """`quit_on_hangup`: SIGHUP (the terminal or SSH session went away) and SIGTERM quit as `q` does,
        so an engine this console owns stops cleanly with its sidecars instead of dying under them.
        `paths`: None for a console on another host (nothing here to read or take over). `back`: opened
        from the fleet, to which esc returns once no toast and no filter is left to clear."""
        super().__init__(driver_class=_hangup_safe_driver() if quit_on_hangup else None)
        self.quit_on_hangup = quit_on_hangup
        self.source = source
        self.paths = paths
        self.loaded = loaded
        self.read_only = read_only
        self.clock = clock or SystemClock()
        self.role = source.role
        self.snapshot: Snapshot | None = None
        self.filter_text = ""
        self._shown_counts: list[Text] = []
        self._stale: set[str] = set()  # tabs behind the latest snapshot: synced when shown
        self._offered: tuple[bool, ...] | None = None
        self.next_step: str | None = None  # "demo": open the demo host once this console has closed
        self.back = back  # "fleet" is the next step on esc
        self._lost = 0  # reconnects in a row to a far engine, for the backoff
        self._unreadable = ""  # the last push's decode error, said once however many pushes repeat it
        self._history: dict[str, list[EventView]] = {}  # a thing's own last transitions, read on selection
        self._history_pending: str | None = None  # the subject being read now: asked once, not once a tick
        # When a history read is due again (the clock's time): at once when a push brought new events about
        # the thing, HISTORY_AGAIN after the last read when pushes skipped events (any may be about it).
        # The history read before stays on screen meanwhile.
        self._history_due: dict[str, float] = {}
        self._history_read_at: dict[str, float] = {}
        self._events_behind = False  # the Events tab's pages are to be read afresh when it is next shown
        self._event_log = History()  # the Events tab: pages of the whole event log, read as it asks
        self._memos: dict[str, RowMemo] = {}  # each tab's rows of its last sync, by the facts built from
        self._pacer: Pacer[Push] = Pacer(self._show_pushed)  # the feed's pushes, one a second at most in a burst

    # -- layout ---------------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield TrayBar(id="tray")
        yield TabBar([(tab, f"{i} {label}") for i, (tab, label) in enumerate(TABS, 1)], active="overview",
                     id="tab-bar")
        with TabPages(initial="overview", id="tabs"):
            for tab, _label in TABS:
                if tab == "config":  # no table: the body itself scrolls, by keys, past the fold at 80x24
                    with VerticalScroll(id=tab):
                        yield Static(id="config-body")
                    continue
                with Vertical(id=tab):
                    if tab == "overview":
                        yield Static(id="counts")
                    if tab == "events":  # what is read of the log, for which query, and how to read more
                        yield Static(id="events-status")
                    spec = TABLES[tab]
                    table = KeyedTable(spec.columns, newest_first=spec.newest_first, id=f"table-{tab}")
                    yield table if tab == "overview" else Lazy(table)  # mounted after the first frame
        yield DetailPane(id="detail")
        yield KeyBar(id="keys")

    def on_mount(self) -> None:
        if self.quit_on_hangup:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGHUP, signal.SIGTERM):
                loop.add_signal_handler(sig, self.exit, 128 + sig)
        first = self.source.ready()
        if first is not None:  # rendered before the first paint: the first frame has the data
            self.show_snapshot(first)
        self._focus_table()
        self.call_after_refresh(_collect_again)
        self.set_interval(1.0, self._tick)
        self.run_worker(self._follow(), name="feed", exclusive=True, group="feed")

    async def _follow(self) -> None:
        try:
            await self.source.follow(self._pacer)
        except (OSError, OwnerUnavailable) as exc:
            self.notify(f"lost the engine: {exc}", severity="error", timeout=15)
        except DecodeError as exc:  # its first snapshot (or a push) of a shape this loopctl cannot read
            self.notify(f"a snapshot from the engine could not be read: {exc}", severity="error", timeout=15)
        except LoopctlError as exc:
            self.notify(exc.message, severity="error", timeout=30)
            if not isinstance(self.source, RemoteSource):
                return
        if isinstance(self.source, RemoteSource):  # nothing to take over there: reconnect, backing off
            delay, self._lost = self.source.reconnect_delay(self._lost), self._lost + 1
            self.set_timer(delay, lambda: self.run_worker(self._follow(), name="feed", exclusive=True, group="feed"))
            return
        if isinstance(self.source, ObservedSource):
            await self._owner_gone()

    async def _owner_gone(self) -> None:
        from console.host.observe import offline_snapshot, wait_until_released  # noqa: PLC0415

        assert self.paths is not None  # an ObservedSource is this host's

        await asyncio.to_thread(wait_until_released, self.paths.lock)
        self._pacer.cancel()  # a push the pacer still holds is older than the offline view shown next
        self.role = "observer (owner gone)"
        loaded = self._local_config()
        if loaded is None:  # said why; the host is still shown as it was left, and no take-over is offered
            from console.core.config import HostConfig, LoadedConfig  # noqa: PLC0415

            blank = LoadedConfig(HostConfig(), self.paths.config_path, present=False)
            self.show_snapshot(offline_snapshot(self.paths, blank, SystemClock()))
            return
        self.show_snapshot(offline_snapshot(self.paths, loaded, SystemClock()))
        self.push_screen(_confirm("The engine that owned this host has stopped.",
                                  "Take over, and run the engine in this console? (It stops when you quit.)"),
                         callback=self._take_over)

    def _local_config(self) -> LoadedConfig | None:
        """The config to take over with, read when first needed (an observer needs it only to take over):
        the one the owner ran, as its lease holder record names it, never this console's own default."""
        if self.loaded is None or isinstance(self.source, ObservedSource):
            from console.host.takeover import takeover_config  # noqa: PLC0415

            assert self.paths is not None

            try:
                self.paths, self.loaded = takeover_config(self.paths)
            except LoopctlError as exc:
                self.loaded = None
                self.notify(f"The engine that owned this host has stopped, and this console cannot take over: "
                            f"{exc.message}", severity="error", timeout=60)
        return self.loaded

    def _take_over(self, yes: bool | None) -> None:
        if not yes:
            self.notify("Showing the last recorded state until another engine owns the host. Start `loopctl run` "
                        "or this console to take over.", severity="warning", timeout=15)
            self.run_worker(self._await_next_owner(), name="feed", exclusive=True, group="feed")
            return
        from console.host.lease import Lease  # noqa: PLC0415
        from console.host.owner import Owner  # noqa: PLC0415

        assert self.paths is not None
        lease = Lease.try_acquire(self.paths.lock)
        if lease is None:
            self.notify("Another engine took the host first: observing it.", timeout=10)
            self.source = ObservedSource(self.paths.socket)
        else:
            loaded = self._local_config()
            if loaded is None:
                lease.release()
                return
            owner = Owner(self.paths, loaded, SystemClock(), lease, read_only=self.read_only)
            try:
                owner.prepare()
            except LoopctlError as exc:
                lease.release()
                self.notify(exc.message, severity="error", timeout=30)
                return
            self.source = OwnedSource(owner)
            self.notify("This console now owns the host.", timeout=10)
        self.role = self.source.role
        self.run_worker(self._follow(), name="feed", exclusive=True, group="feed")

    async def _await_next_owner(self) -> None:
        """After a declined takeover: observe whichever engine owns the host next, by itself."""
        from console.host.observe import owner_serving  # noqa: PLC0415

        assert self.paths is not None  # an ObservedSource is this host's
        # No event exists for "another process took a flock and bound a socket": look, at an operator's pace.
        while not await asyncio.to_thread(owner_serving, self.paths.lock, self.paths.socket):
            await asyncio.sleep(NEXT_OWNER_LOOK)
        self.source = ObservedSource(self.paths.socket)
        self.role = self.source.role
        self.notify("Another engine owns the host now: observing it.", timeout=10)
        await self._follow()

    def get_line_filters(self) -> Sequence[LineFilter]:
        return [*super().get_line_filters(), CONTROL_PICTURES]

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = False) -> None:
        """A toast as written: its text comes from the host (errors, paths, commands), and read as
        markup `[/var/lib/x]` would raise and stop the console, and `[@click=...]` would be an action.
        Its control characters are pictures before the toast wraps it: Rich measured an ESC as no cell
        and dropped a BEL, the screen drew each as one, and a full line lost its last word."""
        super().notify(printable(message), title=printable(title), severity=severity, timeout=timeout,
                       markup=markup)

    def on_tab_pages_resized(self, _event: TabPages.Resized) -> None:
        self._place_toasts()

    def _place_toasts(self) -> None:
        """Toasts stack up from the bottom of the tabs' pages, over the table, never over the detail
        pane or the footer below it (at 80x24 they covered the detail). Too many for the room: the
        newest stay in view (the rack scrolls to its end)."""
        try:
            rack = self._main.get_child_by_type(ToastRack)
        except NoMatches:
            return
        pages = self._main.query_one(TabPages).region
        rack.styles.margin = (0, 0, max(1, self._main.size.height - pages.bottom), 0)
        rack.styles.max_height = max(1, pages.height)

    async def on_unmount(self) -> None:
        self._pacer.cancel()
        await self.source.close()

    # -- rendering ------------------------------------------------------------------------------------

    @property
    def _main(self) -> Screen[object]:
        """The screen with the tabs. `App.query_one` searches the active screen, which is a modal
        (confirm, help, palette) while one is open; the 1 Hz tick must still find its widgets."""
        if not self.screen_stack:
            raise NoMatches("the console's screen is gone (shutting down)")
        return self.screen_stack[0]

    def _up(self) -> bool:
        """False while the app is starting or being torn down: late events must not touch widgets."""
        return bool(self.screen_stack) and self.screen_stack[0].is_attached and self.is_running

    def _show_pushed(self, push: Push) -> None:
        """A push the pacer lets through, decoded now (the ones it dropped never are: feed.py)."""
        if not self._up():  # a render the pacer held until after teardown began
            return
        try:
            snap = snapshot_of_push(push)
        except DecodeError as exc:  # an engine of another version: say so (once), keep the last good view
            if str(exc) != self._unreadable:
                self._unreadable = str(exc)
                self.notify(f"a snapshot from the engine could not be read: {exc}", severity="error", timeout=15)
            return
        self._unreadable = ""
        self.show_snapshot(snap)

    def show_snapshot(self, snap: Snapshot) -> None:
        self._pacer.cancel()  # a push it still holds is older than this one (the owner gone: its last state)
        if snap is self.snapshot:  # the feed delivers again what `ready()` gave the first frame
            return
        self._lost = 0
        before, self.snapshot = self.snapshot, snap
        grown = grown_histories(before.events if before is not None else None, snap.events)
        if grown is None:  # the log may have grown about anything: read again, but not on every push of a
            for subject in self._history:  # burst (each read was a round trip and a detail drawn twice)
                due = self._history_read_at.get(subject, 0.0) + HISTORY_AGAIN
                self._history_due[subject] = min(due, self._history_due.get(subject, due))
        for subject in grown or ():
            if subject in self._history:
                self._history_due[subject] = 0.0
        merged = self._event_log.merge(snap.events)
        if merged is None:  # more new events than the snapshot carries: the Events tab reads afresh
            if self._up() and self.active_tab() == "events":
                self._query_events()
            else:  # when it is next shown: a page of 200 read per push of a burst, out of sight, was waste
                self._events_behind = True
        self._render(self.clock.time(), full=True)
        self._refresh_keys()
        for alert in new_failures(before, snap):
            self.notify(alert.text, severity=alert.severity, timeout=10)

    def _tick(self) -> None:
        """Countdowns and durations move every second. Only what time can change is touched: the
        visible table's cells, the counts line, and the detail pane when it shows a countdown."""
        if self.snapshot is None or not self._up():  # the timer can fire once more during teardown
            return
        shown = self.snapshot
        if self._pacer.flush() and self.snapshot is not shown:
            return  # a held push, drawn now with this second's countdowns: one frame, not two
        self._render(self.clock.time(), full=False)

    def _render(self, now: float, *, full: bool = True) -> None:
        snap = self.snapshot
        if snap is None:
            return
        tab = self.active_tab()
        if full:
            role = self.role if self.role != "observer" else f"observer of pid {snap.engine.pid}"
            self._main.query_one(TrayBar).show(snap, f"{role} · read-only" if self.read_only else role)
            # What is out of sight (or not mounted yet) costs nothing until its tab is shown: a hidden
            # Static's update still laid the whole screen out, once per push (issue 19).
            self._stale = set(TABS_BY_NAME)
            self._sync(tab, now)
        elif tab == "config":  # the probation countdown moves each second
            rc = snap.remote_config
            if rc is not None and rc.probation_deadline is not None:
                self._main.query_one("#config-body", Static).update(config_body(snap, now))
        elif tab == "overview":  # the engine's uptime
            self._show_counts(snap, now)
        if not full:  # the tick: only the cells that move with the clock, in the rows in view (issue 19)
            table = self._table(tab)
            if table is not None and tab not in self._stale:
                table.tick(now)
        selected = self.selected_key()
        if full or ticks(snap, selected) or (selected is not None and self._history_due.get(selected, now + 1) <= now):
            self._show_detail(now, layout=full)  # (a history due is read by it: a quiet host pushes no more)

    def _show_counts(self, snap: Snapshot, now: float) -> None:
        counts = self._counts(snap, now)
        if counts != self._shown_counts:
            self._shown_counts = counts
            self._main.query_one("#counts", Static).update(Group(*counts))

    def _sync(self, tab: str, now: float) -> None:
        """The tab's content from the snapshot (the tab in view, or about to be)."""
        snap = self.snapshot
        if snap is None:
            return
        if tab == "config":
            self._stale.discard(tab)
            self._main.query_one("#config-body", Static).update(config_body(snap, now))
            return
        table = self._table(tab)
        if table is None:  # not mounted yet: synced by on_keyed_table_mounted
            return
        self._stale.discard(tab)
        if tab == "overview":
            self._show_counts(snap, now)
        if tab == "events" and self._event_log.query is not None:  # the pages read of the whole log
            text = self._event_log.query.text
            table.sync([row for row in history_rows(self._event_log.events, now) if matches(row, text)], now)
            self._main.query_one("#events-status", Static).update(Text(self._event_log.status(), style="dim"))
            return
        memo = self._memos.setdefault(tab, RowMemo())
        table.sync([row for row in TABLES[tab].rows(snap, now, memo) if matches(row, self.filter_text)], now)

    def _table(self, tab: str) -> KeyedTable | None:
        """The tab's table; None for Config, and for a table not mounted yet (see compose)."""
        if tab not in TABLES:
            return None
        try:
            return self._main.query_one(f"#table-{tab}", KeyedTable)
        except NoMatches:
            return None

    def on_keyed_table_mounted(self, event: KeyedTable.Mounted) -> None:
        """A table mounted after the first frame whose tab is already open (a quick key) gets its rows."""
        if event.table.id == f"table-{self.active_tab()}" and self._up():
            self._tab_shown()

    def _tab_shown(self) -> None:
        """The tab in view (just opened, or its table just mounted): its rows, focus, detail and keys."""
        now = self.clock.time()
        if self.active_tab() == "events" and (self._event_log.query is None or self._events_behind):
            self._events_behind = False
            self._query_events()  # the first look at the tab (or pushes skipped events): its first page
        if self.active_tab() in self._stale:
            self._sync(self.active_tab(), now)
        elif self.active_tab() == "overview" and self.snapshot is not None:  # its uptime, not ticked while away
            self._show_counts(self.snapshot, now)
        self._focus_table()
        self._show_detail(now)
        self._refresh_keys()

    def _show_detail(self, now: float, *, layout: bool = True) -> None:
        """The selected row in full; with no row, why the tab's table is empty. The Config tab has no
        rows, and its body takes the pane's room. `layout=False` (the tick): the same detail with its
        clock's digits moved, the same shape; laying the screen out again for it was most of a tick."""
        tab = self.active_tab()
        pane = self._main.query_one(DetailPane)
        pane.display = tab in TABLES
        table = self._table(tab)
        if table is None:
            pane.show(self.snapshot, None, now, SELECT_HINT)
            return
        subject = self.selected_key()
        kind = subject.partition(":")[0] if subject else ""
        events = self._history.get(subject) if subject else None
        due = events is None or (subject is not None and self._history_due.get(subject, now + 1) <= now)
        if subject and kind in HISTORY_KINDS and due and self._history_pending != subject:
            self._history_pending = subject
            # Not exclusive: a read cancelled before it started left its coroutine unawaited. Each is a
            # few ms (an indexed query, or one socket round trip) and fills the cache for its subject.
            self.run_worker(self._read_history(subject), group="history")
        record = next((e for e in self._event_log.events if f"event:{e.id}" == subject), None) \
            if kind == "event" else None  # an event read from the log, maybe long gone from the snapshot
        pane.show(self.snapshot, table.selected_key, now, placeholder(tab, table.row_count, self.filter_text),
                  events=events if kind in HISTORY_KINDS else None, event=record, layout=layout)

    async def _read_history(self, subject: str) -> None:
        from console.tui.detail import HISTORY  # noqa: PLC0415

        kind, _, name = subject.partition(":")
        try:
            events = (await self.source.events(kind, name, limit=HISTORY)).events
        finally:
            if self._history_pending == subject:
                self._history_pending = None
        self._history[subject] = events
        self._history_due.pop(subject, None)
        self._history_read_at[subject] = self.clock.time()
        if self._up() and self.selected_key() == subject:
            self._show_detail(self.clock.time())

    # -- the Events tab: the whole log, a page at a time ------------------------------------------------

    def _query_events(self) -> None:
        """The filter box's words as the log's query (on the Events tab), its first page read anew."""
        snap = self.snapshot
        query = parse_query(self.filter_text, self.clock.time(), [r.id for r in snap.runs] if snap else [])
        head = max((e.id for e in snap.events), default=0) if snap else 0
        generation = self._event_log.reset(query, head)
        if not query.error:
            self.run_worker(self._read_events(generation, None), group="events")
        else:
            self._event_log.take(generation, [], None)
        self._stale.add("events")
        if self._up() and self.active_tab() == "events":
            self._sync("events", self.clock.time())

    def _older_events(self) -> None:
        """The cursor reached the last row read: the next older page, if the log has one."""
        generation = self._event_log.more()
        if generation is not None:
            self.run_worker(self._read_events(generation, self._event_log.next), group="events")
            self._sync("events", self.clock.time())

    async def _read_events(self, generation: int, before: int | None) -> None:
        q = self._event_log.query
        assert q is not None
        page = await self.source.events(q.kind, q.name, since=q.since, until=q.until, before=before, limit=PAGE)
        if self._event_log.take(generation, page.events, page.next, page.failed) and self._up():
            self._stale.add("events")
            if self.active_tab() == "events":
                self._sync("events", self.clock.time())
                self._show_detail(self.clock.time())

    def _counts(self, snap: Snapshot, now: float) -> list[Text]:
        engine = (f"engine pid {snap.engine.pid}, up {duration(now - snap.engine.started_at)}"
                  if snap.engine.running and snap.engine.started_at else "engine not running: last recorded state")
        if snap.engine.read_only or self.read_only:
            engine += " · read-only"
        lines = [Text(engine, style="dim"), *(Text(line) for line in counts(snap))]
        if self._empty_host():
            lines.append(Text(f"Nothing configured yet: describe this host in {snap.host.config_path} "
                              f"(README: 'Host config').", style="bold"))
            lines.append(Text("Or press d for a demo host that shows every state loopctl knows (its own "
                              "files, processes and control plane; this host is left as it is)."))
        return lines

    # -- selection and actions --------------------------------------------------------------------------

    def active_tab(self) -> str:
        return self._main.query_one("#tabs", ContentSwitcher).current or "overview"

    def selected_key(self) -> str | None:
        """What the selected row is about (`sidecar:web`): the target of the actions and the ticks."""
        table = self._table(self.active_tab())
        key = table.selected_key if table is not None else None
        return subject_of(key) or None if key is not None else None

    def refusal(self, verb: str) -> str | None:
        return applicable(self.snapshot, self.selected_key(), read_only=self.read_only)[verb]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in MAIN_ONLY and getattr(self.screen, "OWN_KEYS", False):
            return False  # the log view's letters are its own: `c` there must not cancel the selected run
        if action == "act" and parameters:
            return True if self.refusal(str(parameters[0])) is None else None  # None: shown, dimmed
        if action == "logs":
            return True if logs_refusal(self.snapshot, self.selected_key()) is None else None
        if action == "demo":  # the demo runs here: not offered on a console of another host
            return self._empty_host() and self.paths is not None
        return True

    def _empty_host(self) -> bool:
        return self.snapshot is not None and not self.snapshot.host.configured_count

    def on_key(self, event: events.Key) -> None:
        """A disabled binding swallows its key; an operator who presses it anyway is told why."""
        verb = ACTION_KEYS.get(event.key) or ("logs" if event.key == "l" else None)
        if verb is None or isinstance(self.focused, Input) or getattr(self.screen, "OWN_KEYS", False):
            return
        why = logs_refusal(self.snapshot, self.selected_key()) if verb == "logs" else self.refusal(verb)
        if why is not None:  # enabled keys reach their binding instead
            event.stop()
            self.notify(f"{verb} refused: {why}", severity="warning", timeout=6)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if not self._up():
            return
        table = event.data_table
        if table.id == "table-events" and event.cursor_row >= table.row_count - 1:
            self._older_events()
        self._show_detail(self.clock.time())
        self._refresh_keys()

    def on_data_table_row_selected(self, _event: DataTable.RowSelected) -> None:
        self._main.query_one(DetailPane).toggle_class("enlarged")

    def on_tab_bar_chosen(self, event: TabBar.Chosen) -> None:
        self.action_tab(event.tab)

    def _refresh_keys(self) -> None:
        """The footer is rebuilt (every key a widget) on refresh_bindings: only when what the action keys
        offer actually changed, not on every snapshot or cursor move."""
        filterable = self.active_tab() in TABLES
        logs = logs_refusal(self.snapshot, self.selected_key()) is None
        *actions, demo = offered = (*(self.refusal(verb) is None for verb in ACTION_VERBS), logs, filterable,
                                    self._empty_host() and self.paths is not None)
        if offered != self._offered:
            self._offered = offered
            self.refresh_bindings()
            enabled = dict(zip([*ACTION_VERBS, "logs", "filter"], actions, strict=True))
            # Action keys that do not apply are left out (pressed anyway, they say why): at 80 columns
            # there is room for what applies to one selection, not for every verb. The filter dims.
            shown = []
            for b in self.BINDINGS:
                if not isinstance(b, Binding) or not (b.show or (b.action == "demo" and demo)):
                    continue
                applies = enabled.get(ACTION_KEYS.get(b.key, b.action), True)
                if applies or b.action == "filter":
                    shown.append((b.key_display or KEY_NAMES.get(b.key, b.key), b.description, applies))
            self._main.query_one(KeyBar).show(shown)

    def _focus_table(self) -> None:
        """Arrows move the selection of the tab in view, whichever tab that is (on Config, which has
        no rows, they scroll its body)."""
        tab = self.active_tab()
        table = self._table(tab)
        if table is not None:
            table.focus()
        elif tab == "config":
            self._main.query_one("#config", VerticalScroll).focus()

    def action_act(self, verb: str) -> None:
        key = self.selected_key()
        why = self.refusal(verb)
        if why is not None:
            self.notify(f"{verb} refused: {why}", severity="warning", timeout=6)
            return
        assert key is not None
        if verb in DESTRUCTIVE:
            self.push_screen(_confirm(f"{verb.capitalize()} {key}?", CONFIRM_TEXT[verb]),
                             callback=lambda yes: self._perform_later(verb, key) if yes else None)
        else:
            self._perform_later(verb, key)

    def action_copy(self) -> None:
        """`y`: the selected thing's id to the clipboard, by OSC 52 (through SSH and tmux alike)."""
        key = self.selected_key()
        if not key or ":" not in key:
            self.notify("copy refused: select a row about a sidecar, loop or run first", severity="warning",
                        timeout=6)
            return
        kind, name = key.split(":", 1)
        self.copy_to_clipboard(name)
        self.notify(f"copied {kind} id {name} (OSC 52: the terminal must allow clipboard writes)", timeout=6)

    def action_logs(self) -> None:
        key = self.selected_key()
        why = logs_refusal(self.snapshot, key)
        if why is not None:
            self.notify(f"logs refused: {why}", severity="warning", timeout=6)
            return
        assert key is not None
        from console.tui.screens.log_view import LogScreen  # noqa: PLC0415

        self.push_screen(LogScreen(key, self.source.tail))

    def _perform_later(self, verb: str, key: str) -> None:
        self.run_worker(self._perform(verb, key), group="actions")

    async def _perform(self, verb: str, key: str) -> None:
        try:
            result = await self.source.act(verb, key)
        except ActionError as exc:
            self.notify(f"{verb} {key} refused ({exc.code}): {exc.message}", severity="error", timeout=10)
            return
        self._pacer.expedite()  # its outcome shows as it comes, not after the pacing of a burst
        self.notify(str(result.get("message") or f"{verb} {key}: done"), timeout=6)

    def make_action_runner(self, verb: str) -> Callable[[], None]:
        return lambda: self.action_act(verb)

    def make_tab_switcher(self, tab: str) -> Callable[[], None]:
        return lambda: self.action_tab(tab)

    def action_tab(self, tab: str) -> None:
        self._main.query_one("#tabs", ContentSwitcher).current = tab
        self._main.query_one(TabBar).active = tab
        if self._up():
            self._tab_shown()

    def action_demo(self) -> None:
        self.next_step = "demo"
        self.exit(0)

    def action_help(self) -> None:
        from console.tui.screens.help import HelpScreen  # noqa: PLC0415

        self.push_screen(HelpScreen())

    async def action_filter(self) -> None:
        if self.active_tab() not in TABLES:
            self.notify("filter refused: the Config tab has no rows to filter", severity="warning", timeout=6)
            return
        try:
            box = self._main.query_one("#filter", Input)
        except NoMatches:  # mounted on first use: the first frame has no need of it
            box = Input(placeholder="/ filter the rows: enter keeps it, esc clears it", id="filter")
            await self._main.mount(box, before=self._main.query_one(DetailPane))
        box.add_class("shown")
        box.focus()

    def action_dismiss(self) -> None:
        """esc: toasts go first (without a mouse nothing else dismisses them before their timeout),
        then, with none showing, the filter."""
        if self.screen.query("Toast"):
            self.clear_notifications()
        elif self.back and not self.filter_text and not self._main.query("#filter.shown"):
            self.next_step = "fleet"
            self.exit(0)
        else:
            self.action_clear_filter()

    def action_clear_filter(self) -> None:
        try:
            box = self._main.query_one("#filter", Input)
        except NoMatches:
            pass
        else:
            box.value = ""
            box.remove_class("shown")
        self.filter_text = ""
        if self._event_log.query is not None:
            self._query_events()
        self._render(self.clock.time())
        self._focus_table()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value.strip()
        if self.active_tab() == "events" or self._event_log.query is not None:
            self._query_events()  # on the Events tab the words are the log's query (event_history.py)
        self._render(self.clock.time())

    def on_input_submitted(self, _event: Input.Submitted) -> None:
        self._focus_table()


def _collect_again() -> None:
    """`loopctl` holds the garbage collector through start-up (cli.py); on screen now, let it run,
    without ever walking what start-up built again."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


def run_remote_console(source: RemoteSource, *, read_only: bool = False) -> int:
    """The console on another host's engine (its header names the host)."""
    app = LoopctlApp(source, paths=None, read_only=read_only, quit_on_hangup=True)
    app.run()
    return app.return_code or 0


def run_console(source: Source, paths: Paths, *, read_only: bool = False,
                open_demo: Callable[[], int] | None = None) -> int:
    """`open_demo` is the face's: the console asks for the demo, the CLI (which knows it) runs it."""
    app = LoopctlApp(source, paths=paths, read_only=read_only, quit_on_hangup=True)
    app.run()
    if app.next_step == "demo" and open_demo is not None:  # this console's engine has stopped: the demo runs its own
        return open_demo()
    return app.return_code or 0

