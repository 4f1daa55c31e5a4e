"""The console against real engines: owning an empty host, pushed updates, observing and taking over."""

from __future__ import annotations

import asyncio
import gc
import signal

from console.core.config import HostConfig, LoadedConfig
from console.core.fake_clock import FakeClock
from console.core.paths import resolve_paths
from console.core.records import replace
from console.host.lease import Lease, lease_is_held
from console.host.owner import Owner
from console.readmodel.snapshot import EngineView, HostView, compose
from console.tui.app import LoopctlApp
from console.tui.scenario import NOW, run_id, scenario_snapshot
from console.tui.screens.confirm import ConfirmScreen
from console.tui.source import ObservedSource, OwnedSource
from console.tui.widgets.key_bar import KeyBar
from console.tui.widgets.keyed_table import KeyedTable
from console.tui.widgets.tray_bar import TrayBar, tray_line
from tests.conftest import Host, wait_for
from tests.tui.conftest import screen_text, wait_snapshot


def owned(tmp_path):
    paths = resolve_paths(str(tmp_path / "state"), None, {}, tmp_path)
    paths.state_dir.mkdir(mode=0o700)
    loaded = LoadedConfig(HostConfig(), paths.config_path, False)
    owner = Owner(paths, loaded, FakeClock(), Lease.try_acquire(paths.lock))
    return LoopctlApp(OwnedSource(owner), paths=paths, loaded=loaded), paths, owner


async def test_an_empty_host_says_what_to_do_next_and_q_hands_the_host_back(tmp_path):
    app, paths, _owner = owned(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_snapshot(pilot, app)
        tray = app.query_one(TrayBar).render().plain
        assert tray.startswith(" ● OK") and "owner" in tray
        text = screen_text(app)
        assert "Nothing configured yet: describe this host in" in text
        assert "sidecars  none configured" in text
        assert paths.socket.exists() and lease_is_held(paths.lock)
        await pilot.press("q")
    assert not paths.socket.exists() and not lease_is_held(paths.lock)


async def test_changes_are_pushed_and_the_selection_stays_on_its_row(tmp_path):
    app, _paths, owner = owned(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_snapshot(pilot, app)
        await pilot.press("6")
        owner.store.transition("sidecar", "web", "starting", "launch")
        await wait_snapshot(pilot, app, lambda s: len(s.events) == 2)
        table = app.query_one("#table-events", KeyedTable)
        await pilot.press("down")  # onto the older event: engine started
        selected = table.selected_key
        owner.store.transition("sidecar", "web", "ready", "health check passed")
        owner.store.transition("sidecar", "db", "starting", "launch")
        await wait_snapshot(pilot, app, lambda s: len(s.events) == 4)
        assert table.row_count == 4 and table.selected_key == selected
        assert table.get_row_at(0)[2].plain == "sidecar:db"  # newest first


async def test_an_observer_sees_the_owner_go_and_can_take_over(host: Host):
    engine = host.spawn("run")
    host.wait_owner(engine)
    paths = resolve_paths(str(host.state), None, {}, host.root)
    loaded = LoadedConfig(HostConfig(), paths.config_path, False)
    app = LoopctlApp(ObservedSource(paths.socket), paths=paths, loaded=loaded)
    async with app.run_test(size=(80, 24)) as pilot:
        snap = await wait_snapshot(pilot, app)
        assert snap.engine.pid == engine.pid
        assert f"observer of pid {engine.pid}" in app.query_one(TrayBar).render().plain
        engine.send_signal(signal.SIGTERM)
        await wait_snapshot(pilot, app, lambda s: not s.engine.running, turns=500)
        for _ in range(100):
            if isinstance(app.screen, ConfirmScreen):
                break
            await pilot.pause(0.02)
        assert isinstance(app.screen, ConfirmScreen) and "has stopped" in app.screen.question
        for _ in range(100):  # a burst's pushes are drawn one a second at most (tui/pacing.py): the last within 1 s
            if "✖ DOWN" in app.query_one(TrayBar).render().plain:
                break
            await pilot.pause(0.02)
        assert "✖ DOWN" in app.query_one(TrayBar).render().plain
        await pilot.press("y")
        await wait_snapshot(pilot, app, lambda s: s.engine.running, turns=500)
        assert app.role == "owner" and lease_is_held(paths.lock) and paths.socket.exists()
    assert engine.wait(timeout=10) == 0
    assert not lease_is_held(paths.lock)  # quitting the console stopped the engine it took over


def test_the_tray_line_keeps_host_and_role_visible_at_80_columns():
    snap = compose(now=1.0, host=HostView("edge-1", "/a/very/long/state/directory/path/that/goes/on/and/on", "/c",
                                         False, 0),
                   engine=EngineView(False, "offline"), things=[], events=[])
    line = tray_line(snap, "observer", width=80).plain
    assert len(line) == 80
    assert line.startswith(" ✖ DOWN  no engine owns")
    assert line.endswith("edge-1 · observer · cp: none ") and "…" in line


async def test_an_observer_sends_actions_to_the_owner_over_the_socket(host: Host):
    import sys

    host.write_config(f'[[sidecar]]\nname = "broken"\ncommand = ["{sys.executable}", "-c", "raise SystemExit(2)"]\n'
                      f"max_restarts = 0\n")
    engine = host.spawn("run")
    host.wait_owner(engine)
    paths = resolve_paths(str(host.state), None, {}, host.root)
    loaded = LoadedConfig(HostConfig(), paths.config_path, True)
    app = LoopctlApp(ObservedSource(paths.socket), paths=paths, loaded=loaded)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_snapshot(pilot, app, lambda s: bool(s.sidecars) and s.sidecars[0].state == "failed", turns=500)
        await pilot.press("2")
        assert app.selected_key() == "sidecar:broken"
        await pilot.press("t")
        for _ in range(200):
            if any("broken: failed cleared, relaunching" in n.message for n in app._notifications):
                break
            await pilot.pause(0.02)
        assert any("broken: failed cleared, relaunching" in n.message for n in app._notifications)

    def launches() -> int:
        events = host.once_json()[1]["snapshot"]["events"]
        return len([e for e in events if e["name"] == "broken" and e["new"] == "starting"])

    wait_for(lambda: launches() >= 2, what="the relaunch the observer asked for")


class InHand:
    """A source with a snapshot already in hand (as an observer's early watch has) and a feed that
    never delivers: whatever the console shows came from `ready()`."""

    role = "observer"

    def __init__(self, snapshot):
        self.snapshot = snapshot

    def ready(self):
        return self.snapshot

    async def follow(self, sink) -> None:
        await asyncio.Event().wait()

    async def act(self, verb, target):
        raise AssertionError("no action in this test")

    async def events(self, kind=None, name=None, **_filters):
        from console.tui.source import EventPage

        return EventPage([])  # the feed never delivers; nor does the log

    async def close(self) -> None:
        return None


async def test_the_first_frame_draws_the_snapshot_already_in_hand(tmp_path):
    paths = resolve_paths(str(tmp_path / "state"), None, {}, tmp_path)
    snap = scenario_snapshot(state_dir=str(paths.state_dir))
    app = LoopctlApp(InHand(snap), paths=paths, loaded=LoadedConfig(HostConfig(), paths.config_path, True),
                     clock=FakeClock(start=NOW))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.snapshot is snap
        assert f"observer of pid {snap.engine.pid}" in app.query_one(TrayBar).render().plain
        assert app.query_one("#table-overview", KeyedTable).row_count == len(snap.tray.reasons)


async def test_tables_out_of_sight_are_filled_when_their_tab_opens(fixed_app):
    app, _ = fixed_app
    async with app.run_test(size=(80, 24)) as pilot:
        snap = await wait_snapshot(pilot, app)
        runs = app.query_one("#table-runs", KeyedTable)  # mounted after the first frame
        assert runs.row_count == 0  # nothing spent on a table nobody sees
        fewer = replace(snap, runs=snap.runs[:2])
        app.show_snapshot(fewer)  # a change while the Runs tab is closed
        await pilot.pause()
        assert runs.row_count == 0
        await pilot.press("4")
        assert runs.row_count == 2 and app.selected_key() == f"run:{fewer.runs[0].id}"
        app.show_snapshot(snap)  # the tab in view follows every snapshot
        await pilot.pause()
        assert runs.row_count == len(snap.runs)


async def test_a_console_started_with_the_collector_held_lets_it_run_after_its_first_frame(fixed_app):
    app, _ = fixed_app
    gc.disable()  # what `loopctl` does before loading the UI (cli.py)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_snapshot(pilot, app)
            await pilot.pause()
            assert gc.isenabled()
    finally:
        gc.enable()
        gc.unfreeze()


async def test_an_empty_host_offers_the_demo_and_d_closes_the_console_for_it(tmp_path):
    app, paths, _owner = owned(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_snapshot(pilot, app)
        assert "Or press d for a demo host" in screen_text(app)
        assert " d Demo " in app.query_one(KeyBar).render().plain
        await pilot.press("d")
        await pilot.pause()
    assert app.next_step == "demo"
    assert not lease_is_held(paths.lock)  # this host's engine stopped first: the demo runs its own


async def test_a_host_with_work_does_not_offer_the_demo(fixed_app):
    app, _ = fixed_app
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_snapshot(pilot, app)
        assert "press d" not in screen_text(app) and " d Demo " not in app.query_one(KeyBar).render().plain
        await pilot.press("d")
        await pilot.pause()
        assert app.is_running and app.next_step is None


async def test_a_table_mounted_after_its_tab_opened_is_filled_when_it_arrives(fixed_app):
    """A key pressed before a lazily mounted table exists: the tab opens empty, the rows follow the mount."""
    from console.tui.rows import TABLES

    app, _ = fixed_app
    async with app.run_test(size=(80, 24)) as pilot:
        snap = await wait_snapshot(pilot, app)
        await app.query_one("#table-runs", KeyedTable).remove()  # as before the lazy mount
        app.action_tab("runs")
        await pilot.pause()
        assert app.selected_key() is None and "runs" in app._stale
        spec = TABLES["runs"]
        await app.query_one("#runs").mount(KeyedTable(spec.columns, newest_first=spec.newest_first, id="table-runs"))
        await pilot.pause()
        table = app.query_one("#table-runs", KeyedTable)
        assert table.row_count == len(snap.runs) and app.focused is table
        assert app.selected_key() == f"run:{snap.runs[0].id}"


async def test_an_observer_reads_no_config_until_it_could_take_over_and_says_why_it_cannot(host: Host):
    engine = host.spawn("run")
    host.wait_owner(engine)
    host.write_config("[host\n")  # broken after the engine started: the engine runs the config it read
    paths = resolve_paths(str(host.state), None, {}, host.root)
    paths = replace(paths, config_path=host.config_file)
    app = LoopctlApp(ObservedSource(paths.socket), paths=paths)  # no config given: it is read only if needed
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_snapshot(pilot, app, lambda s: s.engine.pid == engine.pid)
        engine.send_signal(signal.SIGTERM)
        for _ in range(300):
            if any("cannot take over" in n.message for n in app._notifications):
                break
            await pilot.pause(0.02)
        note = next(n.message for n in app._notifications if "cannot take over" in n.message)
        assert "invalid TOML" in note and not isinstance(app.screen, ConfirmScreen)
        await wait_snapshot(pilot, app, lambda s: not s.engine.running)
        assert "✖ DOWN" in app.query_one(TrayBar).render().plain  # the host as it was left, not the live view
    assert engine.wait(timeout=10) == 0 and not lease_is_held(paths.lock)


async def test_a_run_that_fails_while_an_operator_watches_raises_a_toast(host: Host):
    """A real engine, a real run: it fails only after the console shows its first snapshot (it waits for
    the go file), so the toast is for a failure that is new to this operator."""
    import textwrap

    go = host.root / "go"
    host.write_config(textwrap.dedent(f"""
        [[loop]]
        id = "flaky"
        command = ["sh", "-c", "while [ ! -e {go} ]; do sleep 0.05; done; echo boom >&2; exit 3"]
        interval_seconds = 3600
    """))
    engine = host.spawn("run")
    host.wait_owner(engine)
    paths = resolve_paths(str(host.state), None, {}, host.root)
    app = LoopctlApp(ObservedSource(paths.socket), paths=paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_snapshot(pilot, app, lambda s: any(r.status == "running" for r in s.runs), turns=500)
        assert list(app._notifications) == []
        go.touch()
        snap = await wait_snapshot(pilot, app, lambda s: any(r.status == "failed" for r in s.runs), turns=500)
        run = next(r for r in snap.runs if r.status == "failed")
        toasts = [(n.message, n.severity) for n in app._notifications]
        assert any(message.startswith(f"run {run.id[-8:]} of loop flaky failed") and severity == "error"
                   for message, severity in toasts), toasts
    engine.send_signal(signal.SIGTERM)
    assert engine.wait(timeout=10) == 0


async def test_a_things_detail_shows_its_own_last_transitions_from_the_whole_log(tmp_path):
    """The snapshot carries the newest 50 events; a thing's own history must not vanish behind them."""
    app, _paths, owner = owned(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_snapshot(pilot, app)
        owner.store.transition("sidecar", "db", "failed", "crash_loop, long ago")
        for i in range(120):
            owner.store.transition("sidecar", "web", "ready" if i % 2 else "starting", f"step {i}")
        await wait_snapshot(pilot, app, lambda s: len(s.events) == 50 and all(e.name != "db" for e in s.events))
        events = (await app.source.events("sidecar", "db", limit=5)).events
        assert [(e.new, e.reason) for e in events] == [("failed", "crash_loop, long ago")]


async def test_the_selected_things_detail_ends_with_its_last_transitions(fixed_app):
    from tests.tui.conftest import select

    app, _calls = fixed_app
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_snapshot(pilot, app)
        await select(pilot, app, "4", f"run:{run_id(7)}")
        for _ in range(50):
            if "last transitions" in screen_text(app):
                break
            await pilot.pause(0.02)
        text = screen_text(app)
        assert "last transitions" in text and "running → running: activity: handoff updated" in text
