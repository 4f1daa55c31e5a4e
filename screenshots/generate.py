"""Regenerate the committed console screenshots (SVG) from the fixed scenario, one per tab, and the
empty host a new user first sees.

    .venv/bin/python screenshots/generate.py

The scenario (console/tui/scenario.py) is the same one the snapshot tests render, at a fixed time.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from pathlib import Path

from console.core.config import HostConfig, HostSection, LoadedConfig
from console.core.fake_clock import FakeClock
from console.host.lease import Lease
from console.host.owner import Owner
from console.core.paths import resolve_paths
from console.tui.app import LoopctlApp
from console.tui.scenario import NOW, scenario_snapshot
from console.tui.source import FixedSource, OwnedSource

HERE = Path(__file__).resolve().parent
TABS = [("1", "overview"), ("2", "sidecars"), ("3", "loops"), ("4", "runs"), ("5", "config"), ("6", "events")]
SIZE = (100, 30)


async def shoot(app: LoopctlApp, keys: list[str], out: Path, size: tuple[int, int] = SIZE) -> None:
    async with app.run_test(size=size) as pilot:
        while app.snapshot is None:
            await pilot.pause(0.02)
        await pilot.press(*keys)
        await pilot.pause()
        await pilot.pause()
        app.save_screenshot(filename=out.name, path=str(out.parent))
    print(f"wrote {out.relative_to(HERE.parent)}")


async def main() -> None:
    paths = resolve_paths("/var/lib/loopctl", None, {}, Path("/home/operator"))
    loaded = LoadedConfig(HostConfig(), paths.config_path, True)
    for key, tab in TABS:
        app = LoopctlApp(FixedSource(scenario_snapshot(state_dir=str(paths.state_dir))), paths=paths, loaded=loaded,
                         clock=FakeClock(start=NOW))
        await shoot(app, [key, "down"], HERE / f"{key}-{tab}.svg")
    with tempfile.TemporaryDirectory(prefix="loopctl-shot-") as tmp:
        empty = resolve_paths(str(Path(tmp) / "state"), None, {}, Path("/home/operator"))
        empty.state_dir.mkdir()
        cfg = LoadedConfig(HostConfig(host=HostSection(name="edge-1")), empty.config_path, present=False)
        lease = Lease.try_acquire(empty.lock)
        assert lease is not None
        owner = Owner(empty, cfg, FakeClock(start=NOW), lease)
        await shoot(LoopctlApp(OwnedSource(owner), paths=empty, loaded=cfg, clock=FakeClock(start=NOW)), [],
                    HERE / "empty-host.svg", size=(80, 24))


if __name__ == "__main__":
    os.environ["TZ"] = "UTC"
    time.tzset()
    asyncio.run(main())
