"""KeyedTable: rows by key, and cells shown exactly as the engine wrote them."""

from __future__ import annotations

from rich.text import Text
from textual.app import App, ComposeResult

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
