"""Toasts show their whole text, and at 80x24 they leave the detail pane readable."""

from __future__ import annotations

import pytest
from textual.geometry import Region
from textual.widgets._toast import Toast

from console.tui.widgets.detail_pane import DetailPane
from console.tui.widgets.key_bar import KeyBar
from console.tui.widgets.tab_pages import TabPages
from tests.tui.conftest import scenario_app, screen_text, select, wait_snapshot

MESSAGES = [
    # ESC and BEL from a sidecar's last line: Rich measured ESC as no cell and dropped BEL, the screen
    # drew each as one cell, and a full line lost its last word.
    "vector-cache: exited with code 3: \x1b[31mcache dir not writable\x1b[0m \x07bell, and this line "
    "runs on until its very last word LASTWORD",
    "retry refused: sidecar:agent-monitor is not failed (it is ready): retry applies to a failed sidecar "
    "only, so nothing was done ENDING",
    "copied sidecar id agent-monitor (OSC 52: the terminal must allow clipboard writes) FINAL",
]
SHOWN = [m.replace("\x1b", "␛").replace("\x07", "␇") for m in MESSAGES]


def toast_lines(toast: Toast) -> list[str]:
    """The toast's lines as the screen draws them (control pictures and all), its border left off."""
    from console.core.printable import printable

    strips = toast.render_lines(Region(0, 0, toast.region.width, toast.region.height))
    return [printable(strip.text, lines=False).lstrip("▌").strip() for strip in strips]


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_every_toast_shows_its_whole_text_and_none_covers_the_detail_pane(tmp_path, size):
    app, _source = scenario_app(tmp_path)
    async with app.run_test(size=size, notifications=True) as pilot:
        await wait_snapshot(pilot, app)
        await select(pilot, app, "2", "sidecar:agent-monitor")
        detail_before = app.query_one(DetailPane).region
        for message in MESSAGES:
            app.notify(message, severity="warning", timeout=60)
        await pilot.pause(0.3)
        toasts = list(app.screen.query(Toast))
        screen = screen_text(app)
        pane, keys, pages = app.query_one(DetailPane).region, app.query_one(KeyBar).region, \
            app.query_one(TabPages).region
        assert pane == detail_before  # the toasts took no room from it
        assert len(toasts) == 3
        for toast, shown in zip(toasts, SHOWN, strict=True):
            lines = [line for line in toast_lines(toast) if line]
            assert " ".join(lines) == shown, size  # every word, the last one too
            assert all(line in screen for line in lines), size  # drawn, not cut by the screen's edge
            assert toast.region.right <= size[0], size
            # over the tables' room: never over the detail pane or the footer
            assert pages.y <= toast.region.y and toast.region.bottom <= pages.bottom, size
            assert not toast.region.overlaps(pane) and not toast.region.overlaps(keys), size
        assert "port 4820 is held by nginx pid 733" in screen  # the detail pane's text, readable


async def test_toasts_keep_off_the_detail_pane_when_it_is_enlarged_and_come_down_on_config(tmp_path):
    app, _source = scenario_app(tmp_path)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await wait_snapshot(pilot, app)
        await select(pilot, app, "2", "sidecar:agent-monitor")
        await pilot.press("enter")  # the detail pane takes half the room
        app.notify(MESSAGES[1], timeout=60)
        await pilot.pause(0.3)
        [toast] = app.screen.query(Toast)
        assert not toast.region.overlaps(app.query_one(DetailPane).region)
        await pilot.press("5")  # Config has no detail pane: the toasts sit just over the footer
        await pilot.pause(0.3)
        [toast] = app.screen.query(Toast)
        assert toast.region.bottom == app.query_one(KeyBar).region.y
