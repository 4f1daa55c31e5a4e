"""The tab bar: layout, clicks, and the active tab still marked where colours are gone."""

from __future__ import annotations

from rich.style import Style

from console.tui.widgets.tab_bar import TabBar, tab_at, tab_line, tab_spans
from tests.tui.conftest import wait_snapshot

LABELS = ["1 Overview", "2 Sidecars", "3 Loops"]
ACTIVE = Style(bgcolor="blue", bold=True, underline=True)
OTHER = Style(dim=True)


def test_each_tab_takes_its_label_and_a_space_either_side():
    assert tab_spans(LABELS) == [(0, 12), (13, 25), (26, 35)]
    assert tab_line(LABELS, 1, ACTIVE, OTHER).plain == " 1 Overview   2 Sidecars   3 Loops "


def test_a_column_names_its_tab_and_the_gaps_name_none():
    assert [tab_at(LABELS, x) for x in (0, 11, 12, 13, 24, 25, 26, 34, 35, 200)] == \
        [0, 0, None, 1, 1, None, 2, 2, None, None]


def test_the_active_label_is_bold_and_underlined_so_it_survives_without_colour():
    line = tab_line(LABELS, 1, ACTIVE, OTHER)
    styles = {line.plain[span.start:span.end]: span.style for span in line.spans}
    assert styles["2 Sidecars"] == ACTIVE
    assert styles[" "].underline is None and styles[" "].bgcolor == ACTIVE.bgcolor  # the block, not underlined
    assert styles[" 1 Overview "] == OTHER


async def test_a_click_on_a_tab_opens_it_and_the_bar_follows_the_number_keys(fixed_app):
    app, _ = fixed_app
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_snapshot(pilot, app)
        bar = app.query_one(TabBar)
        start, _end = tab_spans([label for _, label in bar.tabs])[3]
        await pilot.click(TabBar, offset=(start + 2, 0))
        await pilot.pause()
        assert app.active_tab() == "runs" and bar.active == "runs"
        assert app.focused is app.query_one("#table-runs")
        await pilot.click(TabBar, offset=(79, 0))  # past the last tab: nothing changes
        await pilot.pause()
        assert app.active_tab() == "runs"
        await pilot.press("2")
        assert bar.active == "sidecars"
        assert "2 Sidecars" in bar.render().plain


async def test_with_no_color_the_screen_is_grey_and_states_still_read(tmp_path, monkeypatch):
    """NO_COLOR: every colour on screen is a grey, and what colour said is still there as glyph, word,
    bold or underline (the tray's glyph and word, the level glyphs, the active tab underlined)."""
    import re

    from tests.tui.conftest import scenario_app, screen_text

    monkeypatch.setenv("NO_COLOR", "1")
    app, _ = scenario_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_snapshot(pilot, app)
        svg = app.export_screenshot()
        text = screen_text(app)
    colours = {tuple(int(c[i:i + 2], 16) for i in (1, 3, 5)) for c in re.findall(r"fill: (#[0-9a-f]{6})", svg)}
    assert colours and all(max(rgb) - min(rgb) <= 8 for rgb in colours), colours
    assert text.startswith(" ▲ DEGRADED  agent-monitor: port 4820")
    assert "▲ degraded port_conflict" in " ".join(text.split()) and "● ok" in text
    underlined = re.findall(r"\.(terminal-\d+-r\d+) \{[^}]*text-decoration: underline", svg)
    assert any(re.search(rf'class="{cls}"[^>]*>(&#160;)*1&#160;Overview<', svg) for cls in underlined)
