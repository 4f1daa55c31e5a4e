"""Tables fit the width they have: no horizontal scrollbar across the middle of the screen at 80,
100 or 120 columns; the widest columns are cut with an ellipsis, the narrow ones kept whole."""

from __future__ import annotations

import pytest

from console.tui.column_fit import FLOOR, fit, share
from console.tui.widgets.keyed_table import KeyedTable
from tests.tui.conftest import scenario_app, screen_text, wait_snapshot


def test_columns_that_fit_are_left_alone():
    assert fit([4, 10, 20], [2, 12, 5], 40) == [4, 12, 20]


def test_the_widest_columns_share_what_the_narrow_ones_leave():
    assert share([10, 20, 90, 120], 80) == [10, 20, 25, 25]
    assert sum(share([10, 20, 91, 120], 80)) == 80  # the remainder goes to a cut column, not lost
    assert share([8, 200], 50) == [8, 42]


def test_a_column_is_never_cut_below_the_floor():
    assert share([3, 50, 50], 10) == [3, FLOOR, FLOOR]


def test_headers_are_cut_before_cells_unless_a_long_cut_column_can_spare_their_room():
    assert fit([8, 10], [3, 18], 20) == [8, 12]  # `last useful action` over `20s ago`: the header is cut
    assert fit([8, 10], [3, 18], 40) == [8, 18]
    assert fit([3, 11, 16], [5, 8, 11], 28) == [3, 11, 14]  # `cont.` cut (`2/2` fits), the cells kept
    assert fit([8, 60], [11, 6], 40) == [11, 29]  # `current run` whole: the long reason gives it room


@pytest.mark.parametrize("size", [(80, 24), (100, 30), (120, 40)])
async def test_no_tab_scrolls_sideways_and_cut_cells_end_in_an_ellipsis(tmp_path, size):
    app, _source = scenario_app(tmp_path)
    async with app.run_test(size=size) as pilot:
        await wait_snapshot(pilot, app)
        for key, tab in (("1", "overview"), ("2", "sidecars"), ("3", "loops"), ("4", "runs"), ("6", "events")):
            await pilot.press(key)
            await pilot.pause()
            await pilot.pause()
            table = app.query_one(f"#table-{tab}", KeyedTable)
            assert table.row_count, tab
            assert not table.show_horizontal_scrollbar, (tab, size)
            assert table.virtual_size.width <= table.scrollable_content_region.width, (tab, size)
            rows = screen_text(app).splitlines()
            assert all(len(row) <= size[0] for row in rows), (tab, size)
        await pilot.press("1")
        await pilot.pause()
        overview = screen_text(app)
    # The Overview's reason texts are longer than any of these widths: cut, and said to be cut.
    row = next(line for line in overview.splitlines() if "port_conflict" in line)  # a narrow column: whole
    assert "agent-monitor: port" in row and "…" in row
