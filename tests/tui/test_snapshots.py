"""Each tab of the fixed scenario as a committed SVG (pytest-textual-snapshot), at 100x30 and 80x24.

Regenerate after a deliberate change: `.venv/bin/python -m pytest tests/tui/test_snapshots.py --snapshot-update`
"""

from __future__ import annotations

import pytest

from tests.tui.conftest import scenario_app, wait_snapshot

TABS = [("1", "overview"), ("2", "sidecars"), ("3", "loops"), ("4", "runs"), ("5", "config"), ("6", "events")]


async def settled(pilot) -> None:
    await wait_snapshot(pilot, pilot.app)


@pytest.mark.parametrize(("key", "tab"), TABS)
def test_tab(snap_compare, tmp_path, key, tab):
    app, _ = scenario_app(tmp_path, state_dir="/var/lib/loopctl")

    async def before(pilot) -> None:
        await settled(pilot)
        await pilot.press(key, "down")  # a row selected, so the detail pane has something to show
        await pilot.pause()

    assert snap_compare(app, terminal_size=(100, 30), run_before=before)


def test_overview_at_80x24(snap_compare, tmp_path):
    app, _ = scenario_app(tmp_path, state_dir="/var/lib/loopctl")
    assert snap_compare(app, terminal_size=(80, 24), run_before=settled)
