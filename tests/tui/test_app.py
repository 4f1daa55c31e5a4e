"""The console, driven with Textual's Pilot at 80x24 over real state directories."""

from __future__ import annotations

import html
import re
import signal

from console.engine.config import HostConfig, LoadedConfig
from console.engine.fake_clock import FakeClock
from console.engine.lease import Lease, lease_is_held
from console.engine.owner import Owner
from console.engine.paths import resolve_paths
from console.engine.snapshot import EngineView, HostView, compose
from console.tui.app import LoopctlApp
from console.tui.widgets.events import EventsTable
from console.tui.widgets.tray_bar import tray_line
from tests.conftest import Host


def plain(app: LoopctlApp) -> str:
    """The screen as text, read back from Textual's own screenshot export: what a person would see."""
    svg = app.export_screenshot()
    rows: dict[float, list[str]] = {}
    for y, body in re.findall(r'<text[^>]* y="([0-9.]+)"[^>]*>(.*?)</text>', svg):
        rows.setdefault(float(y), []).append(html.unescape(body).replace("\xa0", " "))
    return "\n".join("".join(parts) for _, parts in sorted(rows.items()))


async def wait_snapshot(pilot, app: LoopctlApp, predicate=lambda s: True, turns: int = 200):
    for _ in range(turns):
        if app.snapshot is not None and predicate(app.snapshot):
            await pilot.pause()  # let the new content lay out and paint before anyone looks
            await pilot.pause()
            return app.snapshot
        await pilot.pause(0.02)
    raise AssertionError("the console never showed the expected snapshot")


def owned_app(tmp_path, clock=None):
    paths = resolve_paths(str(tmp_path / "state"), None, {}, tmp_path)
    paths.state_dir.mkdir(mode=0o700)
    loaded = LoadedConfig(HostConfig(), paths.config_path, False)
    lease = Lease.try_acquire(paths.lock)
    assert lease is not None
    owner = Owner(paths, loaded, clock or FakeClock(), lease)
    return LoopctlApp(paths, loaded, owner=owner), paths, owner


async def test_an_empty_host_shows_ok_and_what_to_do_next_then_q_hands_the_host_back(tmp_path):
    app, paths, _owner = owned_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_snapshot(pilot, app)
        text = plain(app)
        assert "● OK" in text and "owner" in text
        assert "Nothing configured yet" in text and "What to do next" in text
        assert "loopctl --once" in text
        assert app.query_one(EventsTable).row_count == 1
        assert paths.socket.exists() and lease_is_held(paths.lock)
        await pilot.press("q")
    assert not paths.socket.exists()
    assert not lease_is_held(paths.lock)


async def test_changes_are_pushed_and_the_selection_stays_on_its_event(tmp_path):
    app, _paths, owner = owned_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_snapshot(pilot, app)
        store = owner.store
        store.transition("sidecar", "web", "starting", "launch")
        await wait_snapshot(pilot, app, lambda s: len(s.events) == 2)
        table = app.query_one(EventsTable)
        table.move_cursor(row=1)  # the oldest event: engine started
        selected = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        store.transition("sidecar", "web", "ready", "health check passed")
        store.transition("sidecar", "db", "starting", "launch")
        await wait_snapshot(pilot, app, lambda s: len(s.events) == 4)
        await pilot.pause()
        assert table.row_count == 4
        assert table.coordinate_to_cell_key(table.cursor_coordinate).row_key == selected
        assert table.get_row_at(0)[4] == "launch" and table.get_row_at(0)[2] == "sidecar:db"


async def test_observer_attaches_to_a_running_engine_and_says_when_it_goes(host: Host):
    owner_proc = host.spawn("run")
    host.wait_owner(owner_proc)
    paths = resolve_paths(str(host.state), None, {}, host.root)
    loaded = LoadedConfig(HostConfig(), paths.config_path, False)
    app = LoopctlApp(paths, loaded, owner=None)
    async with app.run_test(size=(80, 24)) as pilot:
        snap = await wait_snapshot(pilot, app)
        assert snap.engine.pid == owner_proc.pid
        assert "observer" in plain(app) and "● OK" in plain(app)
        owner_proc.send_signal(signal.SIGTERM)
        gone = await wait_snapshot(pilot, app, lambda s: not s.engine.running, turns=500)
        assert f"last engine pid {owner_proc.pid} stopped cleanly" in gone.tray.reasons[0].text
        text = plain(app)
        assert "✖ DOWN" in text and "observer (owner gone)" in text
        assert "engine not running: showing the last recorded state" in text
        assert f"engine stopped (pid {owner_proc.pid})" in text
        assert any("has stopped" in n.message for n in app._notifications)
    assert owner_proc.wait(timeout=10) == 0


def test_the_tray_line_keeps_host_and_role_visible_at_80_columns():
    snap = compose(now=1.0, host=HostView("edge-1", "/a/very/long/state/directory/path/that/goes/on/and/on", "/c",
                                         False, 0),
                   engine=EngineView(False, "offline"), things=[], events=[])
    line = tray_line(snap, "observer", width=80).plain
    assert len(line) == 80
    assert line.startswith(" ✖ DOWN  no engine owns")
    assert line.endswith("edge-1 · observer ") and "…" in line


async def test_sidecars_show_in_the_overview_with_state_and_pid(tmp_path):
    from console.engine.config import SidecarConfig
    from tests.conftest import free_port, http_server

    port = free_port()
    paths = resolve_paths(str(tmp_path / "state"), None, {}, tmp_path)
    paths.state_dir.mkdir(mode=0o700)
    loaded = LoadedConfig(HostConfig(sidecar=[SidecarConfig(name="web", command=http_server(port), port=port)]),
                          paths.config_path, True)
    from console.engine.clock import SystemClock

    owner = Owner(paths, loaded, SystemClock(), Lease.try_acquire(paths.lock))
    app = LoopctlApp(paths, loaded, owner=owner)
    async with app.run_test(size=(80, 24)) as pilot:
        snap = await wait_snapshot(pilot, app, lambda s: bool(s.sidecars) and s.sidecars[0].state == "ready",
                                   turns=500)
        text = plain(app)
        assert "Sidecars" in text and "Nothing configured" not in text
        assert f"web              ready     pid {snap.sidecars[0].pid}" in text and f":{port}" in text
