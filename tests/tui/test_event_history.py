"""The Events tab pages through the whole event log and filters it by kind, thing and time, in a
console that owns the engine and in one that observes a real `loopctl run` through its socket."""

from __future__ import annotations

import signal
import time

from console.core.clock import SystemClock
from console.core.config import HostConfig, LoadedConfig
from console.core.paths import resolve_paths
from console.core.store import Store
from console.host.lease import Lease
from console.host.owner import Owner
from console.readmodel.snapshot import EventView
from console.tui.app import LoopctlApp
from console.tui.event_history import PAGE, EventQuery, History, parse_query
from console.tui.source import ObservedSource, OwnedSource
from console.tui.widgets.keyed_table import KeyedTable
from tests.conftest import Host
from tests.tui.conftest import screen_text, wait_snapshot

NOW = 1_767_225_600.0


def test_the_filter_words_are_the_logs_query():
    q = parse_query("kind:sidecar since:30m until:2026-01-01T00:00:00+00:00 crash", NOW)
    assert (q.kind, q.name, q.since, q.until, q.text, q.error) == ("sidecar", None, NOW - 1800, NOW, "crash", "")
    assert (parse_query("sidecar:web", NOW).kind, parse_query("sidecar:web", NOW).name) == ("sidecar", "web")
    whole = "01KDVNG5B043A0Y9F9B4Q3QE2T"
    assert parse_query("run:b4q3qe2t", NOW, [whole]).name == whole  # the short id the tables show
    assert "since:soon" in parse_query("since:soon", NOW).error


def test_a_page_for_a_replaced_query_never_lands_and_new_events_go_on_top():
    h = History()
    old = h.reset(EventQuery(kind="sidecar"), head=10)
    new = h.reset(EventQuery(kind="loop"), head=10)
    assert not h.take(old, [EventView(9, NOW, "sidecar", "web", None, "ready", "")], 8)
    assert h.take(new, [EventView(9, NOW, "loop", "docs", None, "active", "")], 8) and h.next == 8
    recent = [EventView(12, NOW, "loop", "docs", "active", "paused", ""),
              EventView(11, NOW, "sidecar", "web", "a", "b", ""),
              EventView(10, NOW, "loop", "docs", None, "active", "")]
    assert h.merge(recent) is True and [e.id for e in h.events] == [12, 9]
    assert h.merge([EventView(80, NOW, "loop", "docs", "a", "b", "")]) is None  # a gap: read again


def fill(store: Store) -> dict[str, int]:
    """450 events, older than anything the engine records: p0 has 250 of them (two pages)."""
    counts: dict[str, int] = {}
    for i in range(450):
        name = "p0" if i % 9 < 5 else ("p1" if i % 9 < 8 else "d")
        kind = "drill" if name == "d" else "probe"
        store.transition(kind, name, f"s{i % 2}", f"step {i}")
        counts[f"{kind}:{name}"] = counts.get(f"{kind}:{name}", 0) + 1
    return counts


async def page_to_the_oldest(pilot, app) -> KeyedTable:
    table = app.query_one("#table-events", KeyedTable)
    for _ in range(200):
        log = app._event_log
        if log.next is None and not log.loading and table.row_count == len(log.events):
            return table
        await pilot.press("end")
        await pilot.pause(0.05)
    raise AssertionError(f"never reached the oldest event: {app._event_log.status()}")


async def filter_to(pilot, app, words: str) -> None:
    await pilot.press("slash", "ctrl+u", *words, "enter")
    await pilot.pause(0.1)


async def test_an_owning_console_pages_to_the_oldest_event_and_filters_by_kind_and_thing(tmp_path):
    paths = resolve_paths(str(tmp_path / "state"), None, {}, tmp_path)
    paths.state_dir.mkdir(mode=0o700)
    loaded = LoadedConfig(HostConfig(), paths.config_path, False)
    owner = Owner(paths, loaded, SystemClock(), Lease.try_acquire(paths.lock))
    owner.prepare()
    app = LoopctlApp(OwnedSource(owner), paths=paths, loaded=loaded)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_snapshot(pilot, app)
        counts = fill(owner.store)
        total = owner.store.rows("SELECT count(*) FROM events")[0][0]
        await wait_snapshot(pilot, app, lambda s: s.events[0].reason == "step 449")
        await pilot.press("6")
        await pilot.pause(0.2)
        assert len(app._event_log.events) == PAGE and "End reads older" in screen_text(app)
        table = await page_to_the_oldest(pilot, app)
        assert table.row_count == total > 2 * PAGE  # the whole log, not the snapshot's newest 50
        assert table.ordered_row_keys()[-1].value == "event:1"
        assert "back to the oldest recorded" in screen_text(app)
        await filter_to(pilot, app, "probe:p0")
        table = await page_to_the_oldest(pilot, app)
        assert table.row_count == counts["probe:p0"] == 250
        assert {e.name for e in app._event_log.events} == {"p0"}
        await pilot.press("escape", "slash", *"kind:drill", "enter")
        await pilot.pause(0.1)
        table = await page_to_the_oldest(pilot, app)
        assert table.row_count == counts["drill:d"] and "drill:d" in screen_text(app)
        await pilot.press("home")
        await pilot.pause()
        assert "transition" in screen_text(app) and "(kind drill)" in screen_text(app)


async def test_an_observing_console_pages_the_engines_log_and_filters_by_time(host: Host):
    host.state.mkdir(mode=0o700)
    store = Store.open(host.state / "loopctl.db", _Ago(hours=8))
    counts = fill(store)  # from eight hours ago to half an hour ago, a minute apart
    store.close()
    engine = host.spawn("run")
    host.wait_owner(engine)
    paths = resolve_paths(str(host.state), None, {}, host.root / "home")
    app = LoopctlApp(ObservedSource(paths.socket), paths=paths)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_snapshot(pilot, app)
        await pilot.press("6")
        await pilot.pause(0.3)
        table = await page_to_the_oldest(pilot, app)
        total = _count(host, "SELECT count(*) FROM events")
        assert table.row_count == total > 2 * PAGE
        await filter_to(pilot, app, "kind:probe")
        table = await page_to_the_oldest(pilot, app)
        assert table.row_count == counts["probe:p0"] + counts["probe:p1"]
        await filter_to(pilot, app, "since:2h")  # the minute-apart events end half an hour ago: 90 of them
        table = await page_to_the_oldest(pilot, app)
        since = app._event_log.query.since
        assert table.row_count == _count(host, f"SELECT count(*) FROM events WHERE at >= {since}")
        assert 90 < table.row_count < total  # and the engine's own
        await filter_to(pilot, app, "probe:p1 until:4h")
        table = await page_to_the_oldest(pilot, app)
        until = app._event_log.query.until
        assert table.row_count == _count(host, f"SELECT count(*) FROM events WHERE name = 'p1' AND at < {until}")
    engine.send_signal(signal.SIGTERM)
    assert engine.wait(timeout=15) == 0


class _Ago:
    """A clock that starts `hours` ago and moves a minute per reading: the events of a long day."""

    def __init__(self, hours: float) -> None:
        self.at = time.time() - hours * 3600

    def time(self) -> float:
        self.at += 60
        return self.at


def _count(host: Host, sql: str) -> int:
    import sqlite3

    with sqlite3.connect(f"file:{host.state / 'loopctl.db'}?mode=ro", uri=True) as db:
        return int(db.execute(sql).fetchone()[0])
