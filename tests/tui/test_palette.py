"""State colours: one palette for every widget, legible when NO_COLOR turns it grey."""

from __future__ import annotations

import re
from collections import Counter

from console.readmodel.tray import Level
from console.tui.palette import GLYPHS, LEVEL_STYLES, STATE_STYLES, TRAY_STYLES
from tests.tui.conftest import scenario_app, wait_snapshot


def _luminance(grey: int) -> float:
    c = grey / 255
    return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4


def contrast(a: int, b: int) -> float:
    """WCAG contrast ratio of two greys (0-255)."""
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def test_every_level_has_a_glyph_and_a_style_and_the_tray_is_bold():
    assert set(GLYPHS) == set(LEVEL_STYLES) == set(TRAY_STYLES) == set(Level)
    assert all(style.startswith("bold ") for style in TRAY_STYLES.values())
    assert STATE_STYLES["failed"] == LEVEL_STYLES[Level.DOWN]


async def test_with_no_color_every_word_on_screen_can_be_read(tmp_path, monkeypatch):
    """Textual shows each colour as the grey of its luminance: ANSI red came out near-black on the
    near-black background (the detail pane's `failed` at a contrast of 1.7). Every word must reach 4.5:1."""
    monkeypatch.setenv("NO_COLOR", "1")
    app, _ = scenario_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_snapshot(pilot, app)
        svg = app.export_screenshot()
    fills = {cls: int(grey, 16) for cls, grey in re.findall(r"\.(terminal-\d+-r\d+) \{ fill: #([0-9a-f]{2})", svg)}
    background = int(Counter(re.findall(r'<rect fill="#([0-9a-f]{2})', svg)).most_common(1)[0][0], 16)
    words = [(cls, body.replace("&#160;", " ").strip())
             for cls, body in re.findall(r'<text class="([^"]+)"[^>]*>([^<]*)</text>', svg) if cls in fills]
    words = [(cls, text) for cls, text in words if re.search(r"\w", text)]  # not rules or scrollbars
    assert any(text == "failed" for _, text in words)
    weak = {text: round(contrast(fills[cls], background), 2) for cls, text in words
            if contrast(fills[cls], background) < 4.5}
    assert not weak, weak
