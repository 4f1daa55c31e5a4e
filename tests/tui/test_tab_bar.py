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
