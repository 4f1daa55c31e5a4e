"""Regenerate the committed console screenshots (SVG) from a fixed scenario.

    .venv/bin/python screenshots/generate.py

Scenarios use a fake clock and a throwaway state directory, so the pictures show loopctl as a new
user meets it without touching the machine's real state.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from console.engine.config import HostConfig, HostSection, LoadedConfig
from console.engine.fake_clock import FakeClock
from console.engine.lease import Lease
from console.engine.owner import Owner
from console.engine.paths import resolve_paths
from console.tui.app import LoopctlApp

HERE = Path(__file__).resolve().parent


async def empty_host(out: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="loopctl-shot-") as tmp:
        base = Path(tmp)
        paths = resolve_paths(str(base / "state"), None, {}, Path("/home/operator"))
        paths.state_dir.mkdir()
        loaded = LoadedConfig(HostConfig(host=HostSection(name="edge-1")), paths.config_path, present=False)
        lease = Lease.try_acquire(paths.lock)
        assert lease is not None
        app = LoopctlApp(paths, loaded, owner=Owner(paths, loaded, FakeClock(), lease))
        async with app.run_test(size=(80, 24)) as pilot:
            while app.snapshot is None:
                await pilot.pause(0.02)
            await pilot.pause()
            await pilot.pause()
            app.save_screenshot(filename=out.name, path=str(out.parent))


def main() -> None:
    asyncio.run(empty_host(HERE / "empty-host.svg"))
    print(f"wrote {HERE / 'empty-host.svg'}")


if __name__ == "__main__":
    main()
