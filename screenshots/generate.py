"""Regenerate the committed console screenshots (SVG) from the fixed scenario, one per tab, the
empty host a new user first sees, and `loopctl fleet` over six hosts, one of them unreachable.

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
from console.fleet.table import Counts, HostStatus, lost, watched
from console.host.lease import Lease
from console.host.owner import Owner
from console.core.paths import resolve_paths
from console.readmodel.tray import Level
from console.tui.app import LoopctlApp
from console.tui.fleet_app import FleetApp
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


class FixedFleet:
    """A fleet as its watches would have it: edge-1 is the scenario's host, edge-4 stopped answering."""

    notify = None
    problem = ""

    def statuses(self) -> list[HostStatus]:
        def ok(name: str, counts: Counts, quiet: float) -> HostStatus:
            return HostStatus(name=name, url=f"ssh://ops@{name}/var/lib/loopctl", level=Level.OK, counts=counts,
                              pushed_at=NOW - quiet)

        gone = ok("edge-4", Counts(sidecars_ready=2, sidecars_total=2, loops_active=3, runs_running=1), 9 * 60)
        return [
            watched("edge-1", "ssh://ops@edge-1/var/lib/loopctl", scenario_snapshot(), NOW - 40),
            ok("edge-2", Counts(sidecars_ready=3, sidecars_total=3, loops_active=5, runs_running=2), 3 * 60),
            ok("edge-3", Counts(sidecars_ready=2, sidecars_total=2, loops_active=1), 12 * 60),
            lost(gone, "ssh edge-4: ssh: connect to host edge-4 port 22: No route to host", NOW + 20),
            HostStatus(name="gpu-1", url="ssh://ops@gpu-1/var/lib/loopctl", level=Level.PAUSED,
                       reason="loop finetune paused here by `loopctl pause`: it starts no runs",
                       counts=Counts(sidecars_ready=1, sidecars_total=1, loops_active=1), pushed_at=NOW - 25 * 60),
            ok("gpu-2", Counts(sidecars_ready=1, sidecars_total=1, loops_active=2, runs_running=2), 2 * 60),
        ]


async def shoot_fleet(out: Path, size: tuple[int, int] = SIZE) -> None:
    app = FleetApp(FixedFleet(), title="fleet · 6 hosts", clock=FakeClock(start=NOW))
    async with app.run_test(size=size) as pilot:
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
    await shoot_fleet(HERE / "fleet.svg", size=(120, 13))


if __name__ == "__main__":
    os.environ["TZ"] = "UTC"
    time.tzset()
    asyncio.run(main())
