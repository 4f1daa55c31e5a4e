from __future__ import annotations

from pathlib import Path

import pytest

from console.engine.config import HostConfig, LoadedConfig
from console.engine.fake_clock import FakeClock
from console.engine.paths import resolve_paths
from console.tui.app import LoopctlApp
from console.tui.scenario import NOW, scenario_snapshot
from console.tui.source import FixedSource


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
