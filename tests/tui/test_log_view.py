"""The log view (`l`): its keys over a fixed log, then live logs from real engines, owned and observed."""

from __future__ import annotations

import json
import sys

from console.core.config import HostConfig, LoadedConfig, SidecarConfig
from console.core.fake_clock import FakeClock
from console.core.logtail import LogChunk
from console.core.paths import resolve_paths
from console.host.lease import Lease
from console.host.owner import Owner
from console.tui.app import LoopctlApp
from console.tui.log_lines import LogLine, chunk_lines, matching, next_match, rows_of
from console.tui.scenario import scenario_snapshot
from console.tui.screens.log_view import LogScreen
from console.tui.source import FixedSource, ObservedSource, OwnedSource
from console.tui.widgets.log_view import LogView
from tests.conftest import Host
from tests.tui.conftest import scenario_app, screen_text, select, wait_snapshot

SIZE = (80, 24)
# One line a second, as a sidecar that logs its heartbeats does.
TICKER = "import itertools, time\nfor i in itertools.count():\n    print(f'tick {i}', flush=True)\n    time.sleep(1)\n"


def fixed_logs(tmp_path, lines: list[str]) -> LoopctlApp:
    app, source = scenario_app(tmp_path)
    source.logs = {"sidecar:embeddings": [LogChunk("embeddings.log.1 (older)", ["from before"]),
                                          LogChunk("embeddings.log", lines)]}
    return app


async def until(pilot, predicate, what: str, turns: int = 400) -> None:
    for _ in range(turns):
        if predicate():
            await pilot.pause()
            return
        await pilot.pause(0.02)
    raise AssertionError(f"the console never showed {what}")


def header(app) -> str:
    return str(app.screen.query_one("#log-header").render())


async def test_l_opens_the_log_full_screen_following_and_esc_goes_back(tmp_path):
    app = fixed_logs(tmp_path, [f"line {i}" for i in range(100)])
    async with app.run_test(size=SIZE) as pilot:
        await wait_snapshot(pilot, app)
        await select(pilot, app, "2", "sidecar:embeddings")
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, LogScreen) and app.screen.view.lines, "the log")
        text = screen_text(app)
        assert "line 99" in text and "line 70" not in text  # following: the newest lines are in view
        assert "sidecar:embeddings  following" in header(app)
        view = app.screen.query_one(LogView)
        assert view.lines[0] == LogLine("── embeddings.log.1 (older) ──", header=True)
        await pilot.press("g")
        assert "line 0" in screen_text(app) and "paused (f follows)" in header(app)
        await pilot.press("f")
        assert "line 99" in screen_text(app) and "following" in header(app)
        await pilot.press("c", "1")  # the app's keys are not the log view's: nothing is cancelled, no tab moves
        assert isinstance(app.screen, LogScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, LogScreen) and app.active_tab() == "sidecars"


async def test_search_highlights_and_n_and_N_walk_the_matches(tmp_path):
    app = fixed_logs(tmp_path, [f"line {i}" + (" ERROR disk full" if i % 30 == 5 else "") for i in range(100)])
    async with app.run_test(size=SIZE) as pilot:
        await wait_snapshot(pilot, app)
        await select(pilot, app, "2", "sidecar:embeddings")
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, LogScreen) and app.screen.view.lines, "the log")
        await pilot.press("g", "slash", *"error", "enter")
        view = app.screen.view
        assert [view.lines[i].text for i in view.matches] == [f"line {i} ERROR disk full" for i in (5, 35, 65, 95)]
        assert "/error: 1 of 4" in header(app) and "line 5 ERROR" in screen_text(app)
        await pilot.press("n", "n")
        assert "/error: 3 of 4" in header(app) and "line 65 ERROR" in screen_text(app)
        await pilot.press("N", "N", "N")
        assert "/error: 4 of 4" in header(app)  # back past the first wraps around to the last
        await pilot.press("slash", *"nowhere", "enter")
        assert "no match" in header(app)
        await pilot.press("f", "slash", *"error", "enter")  # while following: the newest match first
        assert "/error: 4 of 4" in header(app) and "line 95 ERROR" in screen_text(app)


async def test_wrap_shows_a_long_line_whole_and_escapes_are_shown_not_obeyed(tmp_path):
    long = "start " + "x" * 150 + " finish \x1b[2J\x07bell"
    app = fixed_logs(tmp_path, [long])
    async with app.run_test(size=SIZE) as pilot:
        await wait_snapshot(pilot, app)
        await select(pilot, app, "2", "sidecar:embeddings")
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, LogScreen) and app.screen.view.lines, "the log")
        assert "finish" not in screen_text(app)
        await pilot.press("w")
        text = screen_text(app)
        assert "finish ␛[2J␇bell" in text.replace("\n", "") and "wrap" in header(app) and "no wrap" not in header(app)
        assert all(len(row) <= 80 for row in text.splitlines())


async def test_l_on_a_thing_without_a_log_is_refused_with_the_reason(tmp_path):
    app, _source = scenario_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_snapshot(pilot, app)
        await pilot.press("3", "l")  # a loop: its runs have the logs
        assert not isinstance(app.screen, LogScreen)
        assert any("logs refused: select a sidecar or a run" in n.message for n in app._notifications)


def test_rows_wrap_at_the_width_and_search_wraps_around():
    lines = chunk_lines(LogChunk("a.log", ["ab\tc", "x" * 25]), None)
    assert lines[1].text == "ab      c"
    assert [(r.line, r.start, r.text) for r in rows_of(lines, 1, 10, wrap=True)] == [
        (1, 0, "ab      c"), (2, 0, "x" * 10), (2, 10, "x" * 10), (2, 20, "x" * 5)]
    assert len(rows_of(lines, 0, 10, wrap=False)) == 3
    found = matching(lines, "X")
    assert found == [2] and next_match(found, 2, forward=True) == 2 and next_match([], None, forward=True) is None
    assert chunk_lines(LogChunk("a.log", [], "rotated"), "a.log")[0].text == \
        "── a.log: a new file: the sidecar launched again ──"


def ticker_config(tmp_path) -> HostConfig:
    return HostConfig(sidecar=[SidecarConfig(name="ticker", command=[sys.executable, "-c", TICKER])])


async def test_the_owning_console_follows_a_sidecar_that_prints_a_line_a_second(tmp_path):
    paths = resolve_paths(str(tmp_path / "state"), None, {}, tmp_path)
    paths.state_dir.mkdir(mode=0o700)
    loaded = LoadedConfig(ticker_config(tmp_path), paths.config_path, True)
    owner = Owner(paths, loaded, FakeClock(), Lease.try_acquire(paths.lock))
    app = LoopctlApp(OwnedSource(owner), paths=paths, loaded=loaded)
    async with app.run_test(size=SIZE) as pilot:
        await wait_snapshot(pilot, app, lambda s: bool(s.sidecars))
        await select(pilot, app, "2", "sidecar:ticker")
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, LogScreen) and "tick 0" in screen_text(app), "tick 0")
        await until(pilot, lambda: "tick 2" in screen_text(app), "tick 2, two seconds on", turns=400)
        assert "following" in header(app)


async def test_an_observing_console_reads_the_log_through_the_owners_socket(host: Host):
    host.write_config(f"[[sidecar]]\nname = \"ticker\"\ncommand = {json.dumps([sys.executable, '-c', TICKER])}\n")
    engine = host.spawn("run")
    host.wait_owner(engine)
    paths = resolve_paths(str(host.state), None, {}, host.root)
    app = LoopctlApp(ObservedSource(paths.socket), paths=paths)
    async with app.run_test(size=SIZE) as pilot:
        await wait_snapshot(pilot, app, lambda s: bool(s.sidecars))
        await select(pilot, app, "2", "sidecar:ticker")
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, LogScreen) and "tick 1" in screen_text(app), "tick 1")
        assert "── ticker.log ──" in screen_text(app)


def test_the_scenario_has_the_sidecar_the_fixed_logs_name():
    assert any(s.name == "embeddings" for s in scenario_snapshot().sidecars)
    assert FixedSource(scenario_snapshot()).logs == {}
