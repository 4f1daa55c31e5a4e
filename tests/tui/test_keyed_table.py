"""KeyedTable: rows by key, and cells shown exactly as the engine wrote them."""

from __future__ import annotations

from rich.text import Text
from textual.app import App, ComposeResult
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey

from console.tui.widgets.keyed_table import KeyedTable
from tests.tui.conftest import screen_text

COLUMNS = (("id", "id"), ("what", "what [is] it"))
# Text from the host, not from loopctl: a command line, an error, a path. Read as Rich markup,
# `[/var/lib/x]` is a closing tag that raises, and `[pid 733]` is a style that swallows its words.
HOSTILE = "held by [pid 733] in [/var/lib/x] (see [bold])"


class OneTable(App[None]):
    def compose(self) -> ComposeResult:
        yield KeyedTable(COLUMNS, newest_first=lambda key: int(key.partition(":")[2]), id="table")


async def test_cells_and_labels_are_shown_as_written_never_read_as_markup():
    app = OneTable()
    async with app.run_test(size=(100, 8)) as pilot:
        table = app.query_one(KeyedTable)
        table.sync([("event:1", ("1", HOSTILE)), ("event:2", ("2", Text("ok", style="green")))])
        await pilot.pause()
        shown = screen_text(app)
        assert HOSTILE in shown and "what [is] it" in shown
        table.sync([("event:1", ("1", f"{HOSTILE} again")), ("event:2", ("2", Text("ok", style="green")))])
        await pilot.pause()
        assert f"{HOSTILE} again" in screen_text(app)


async def test_newest_first_sorts_by_the_row_key_whatever_the_first_cell_shows():
    app = OneTable()
    async with app.run_test(size=(100, 8)) as pilot:
        table = app.query_one(KeyedTable)
        # the cells count down where the keys count up: a run's short id is no guide to its age
        table.sync([(f"event:{i}", (str(100 - i), "x")) for i in (9, 10, 2)])
        await pilot.pause()
        assert [str(key.value) for key in table.ordered_row_keys()] == ["event:10", "event:9", "event:2"]
        table.sync([(f"event:{i}", (str(100 - i), "x")) for i in (9, 10, 2, 11)])  # a newer row arrives
        await pilot.pause()
        assert [str(key.value) for key in table.ordered_row_keys()] == ["event:11", "event:10", "event:9", "event:2"]
        assert screen_text(app).index("89") < screen_text(app).index("90")  # shown as given: 100 - 11 first


async def test_a_sync_of_narrower_values_measures_each_column_once_not_once_per_cell(monkeypatch):
    """1,000 rows whose countdown cells all get shorter: Textual re-measured the whole column for each
    narrower cell (a million measurements a sync); the table narrows each column once, from its cells."""
    app = OneTable()
    async with app.run_test(size=(100, 8)) as pilot:
        table = app.query_one(KeyedTable)
        table.sync([(f"event:{i}", (str(i), "in 10m00s")) for i in range(1000)])
        await pilot.pause()
        column = table.columns[ColumnKey("what")]
        assert column.content_width == max(len("in 10m00s"), len("what [is] it"))
        scans: list[object] = []
        real = DataTable.get_column

        def counted(self, column_key):  # what Textual's re-measure walks, a whole column at a time
            scans.append(column_key)
            return real(self, column_key)

        monkeypatch.setattr(DataTable, "get_column", counted)
        table.sync([(f"event:{i}", (str(i), "in 9s")) for i in range(1000)])
        await pilot.pause()
        assert scans == []
        label = len("what [is] it")
        assert column.content_width == label  # narrowed to the widest cell (here the label), once
        table.sync([(f"event:{i}", (str(i), "in 9s" if i != 999 else "a much longer value now")) for i in range(1000)])
        await pilot.pause()
        assert column.content_width == len("a much longer value now") and scans == []
        assert "a much longer value now" in screen_text(app)
