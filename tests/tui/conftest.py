from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console, RenderableType

from console.core.config import HostConfig, LoadedConfig
from console.core.fake_clock import FakeClock
from console.core.paths import resolve_paths
from console.tui.app import LoopctlApp
from console.tui.scenario import NOW, scenario_snapshot
from console.tui.source import FixedSource
from console.tui.widgets.keyed_table import KeyedTable


def scenario_app(tmp: Path, *, read_only: bool = False, handler=None,
                 state_dir: str | None = None) -> tuple[LoopctlApp, FixedSource]:
    paths = resolve_paths(state_dir or str(tmp / "state"), None, {}, tmp)
    source = FixedSource(scenario_snapshot(state_dir=str(paths.state_dir)), handler)
    clock = FakeClock(start=NOW)
    app = LoopctlApp(source, paths=paths, loaded=LoadedConfig(HostConfig(), paths.config_path, True),
                     read_only=read_only, clock=clock)
    return app, source


@pytest.fixture
def fixed_app(tmp_path):
    calls: list[tuple[str, str]] = []

    async def handler(verb: str, target: str) -> dict:
        calls.append((verb, target))
        return {"message": f"{verb} {target}: done"}

    app, _source = scenario_app(tmp_path, handler=handler)
    return app, calls


def screen_text(app) -> str:
    """The screen as text, read back from Textual's own screenshot export: what a person sees."""
    import html
    import re

    svg = app.export_screenshot()
    rows: dict[float, list[str]] = {}
    for y, body in re.findall(r'<text[^>]* y="([0-9.]+)"[^>]*>(.*?)</text>', svg):
        rows.setdefault(float(y), []).append(html.unescape(body).replace("\xa0", " "))
    return "\n".join("".join(parts) for _, parts in sorted(rows.items()))


async def wait_snapshot(pilot, app, predicate=lambda s: True, turns: int = 300):
    """Until the console shows a snapshot satisfying `predicate`, painted once; fail loudly if never."""
    for _ in range(turns):
        if app.snapshot is not None and predicate(app.snapshot):
            await pilot.pause()
            return app.snapshot
        await pilot.pause(0.02)
    raise AssertionError("the console never showed the expected snapshot")


async def select(pilot, app, tab_key: str, row_key: str) -> None:
    """Open a tab and put its cursor on `row_key`; fail loudly if the row is not there."""
    await pilot.press(tab_key)
    table = app.query_one(f"#table-{app.active_tab()}", KeyedTable)
    for _ in range(table.row_count):
        await pilot.press("up")
    for _ in range(table.row_count):
        if table.selected_key == row_key:
            return
        await pilot.press("down")
    assert table.selected_key == row_key, f"could not select {row_key}"


def write_handoff(state_dir: Path, run_id: str, text: str) -> None:
    """The continuation handoff the engine leaves for a run, as the detail pane reads it."""
    handoff = state_dir / "runs" / run_id / "continuation.md"
    handoff.parent.mkdir(parents=True)
    handoff.write_text(text)


def rendered(renderable: RenderableType, width: int = 200) -> list[str]:
    """A detail or tab body as the lines of plain text it prints at `width` columns."""
    console = Console(width=width, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text().splitlines()


def field(renderable: RenderableType, label: str) -> str:
    """The value beside `label` in a detail's fields (its first line, unwrapped at 200 columns)."""
    [line] = [line for line in rendered(renderable) if line.startswith(f"{label} ")]
    return line.removeprefix(label).strip()
