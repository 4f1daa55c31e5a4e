"""`s` / `S`: column sort on a table, stable, kept across updates, shown in the column header."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from textual.app import App, ComposeResult

from console.tui.widgets.keyed_table import KeyedTable, sort_key

COLUMNS = (("name", "name"), ("state", "state"), ("restarts", "restarts"))


class TableApp(App[None]):
    def compose(self) -> ComposeResult:
        yield KeyedTable(COLUMNS, id="t")


def rows(spec: list[tuple[str, str, int]]) -> list[tuple[str, tuple[str, ...]]]:
    return [(f"sidecar:{name}", (name, state, str(restarts))) for name, state, restarts in spec]


def order(table: KeyedTable) -> list[str]:
    return [str(k.value) for k in table.ordered_row_keys()]


def header(table: KeyedTable) -> list[str]:
    return [column.label.plain for column in table.columns.values()]


async def test_s_cycles_the_column_S_reverses_and_the_header_shows_it():
    app = TableApp()
    async with app.run_test() as pilot:
        table = app.query_one(KeyedTable)
        table.sync(rows([("web", "ready", 10), ("db", "failed", 9), ("cache", "ready", 2)]))
        table.focus()
        await pilot.press("s")
        assert order(table) == ["sidecar:cache", "sidecar:db", "sidecar:web"]
        assert header(table)[0] == "name ↑" and table.sort_text == "sorted by name ↑"
        await pilot.press("s")  # by state: the two ready ones keep the table's own order
        assert order(table) == ["sidecar:db", "sidecar:web", "sidecar:cache"] and header(table)[1] == "state ↑"
        await pilot.press("S")  # reversed, still stable among equals
        assert order(table) == ["sidecar:web", "sidecar:cache", "sidecar:db"] and header(table)[1] == "state ↓"
        await pilot.press("s")  # by restarts, as numbers: 2 < 9 < 10
        assert order(table) == ["sidecar:cache", "sidecar:db", "sidecar:web"]
        await pilot.press("s")  # back to the table's own order
        assert order(table) == ["sidecar:web", "sidecar:db", "sidecar:cache"] and "↑" not in "".join(header(table))


async def test_the_sort_and_the_selection_survive_updates():
    app = TableApp()
    async with app.run_test() as pilot:
        table = app.query_one(KeyedTable)
        table.sync(rows([("web", "ready", 0), ("db", "failed", 0), ("cache", "ready", 0)]))
        table.focus()
        await pilot.press("s", "s")  # by state
        table.move_cursor(row=order(table).index("sidecar:web"))
        table.sync(rows([("api", "ready", 0), ("web", "backoff", 1), ("db", "failed", 0), ("cache", "ready", 0)]))
        # api is new (added at the end of the rows shown), but first in the table's own order: among the
        # ready ones it comes first, as the table's own order has it, not where it happened to be added
        assert order(table) == ["sidecar:web", "sidecar:db", "sidecar:api", "sidecar:cache"]
        assert table.selected_key == "sidecar:web" and header(table)[1] == "state ↑"


@settings(max_examples=15, deadline=None)
@given(spec=st.lists(st.tuples(st.sampled_from(["ready", "failed", "backoff"]), st.integers(0, 12)), min_size=1,
                     max_size=12),
       column=st.integers(1, 2), reverse=st.booleans())
def test_sorting_is_stable_in_either_direction(spec, column, reverse):
    import asyncio

    named = [(f"s{i:02d}", state, restarts) for i, (state, restarts) in enumerate(spec)]

    async def run() -> list[str]:
        app = TableApp()
        async with app.run_test():
            table = app.query_one(KeyedTable)
            table.sync(rows(named))
            table.sort_column, table.sort_reverse = column, reverse
            table._resort()
            return order(table)

    got = asyncio.run(run())
    canonical = [f"sidecar:{n}" for n, _, _ in named]
    value = {f"sidecar:{n}": sort_key((state, str(restarts))[column - 1]) for n, state, restarts in named}
    groups: dict[tuple, list[str]] = {}
    for key in canonical:
        groups.setdefault(value[key], []).append(key)
    assert got == [key for v in sorted(groups, reverse=reverse) for key in groups[v]]  # equals: the table's order
