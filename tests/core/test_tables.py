"""Records as tables: round trips whatever the values, defaults compared by value, columns by name."""

import json

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from console.core.decode import DecodeError, convert
from console.core.tables import records_of, table_of
from console.runs.view import LoopView
from console.sidecars.view import PortHolderView, SidecarView

texts = st.text(max_size=6)
times = st.none() | st.floats(min_value=0, max_value=4e9, allow_nan=False)
loops = st.builds(LoopView, id=st.text(min_size=1, max_size=6), state=st.sampled_from(["active", "escalated"]),
                  reason=texts, enabled=st.booleans(), interval_seconds=st.sampled_from([0.0, 60.0, 0.5]),
                  current_run=st.none() | texts, next_run_at=times, held_by=texts, last_run_id=st.none() | texts,
                  last_finished_at=times)
sidecars = st.builds(SidecarView, name=st.text(min_size=1, max_size=6), state=st.sampled_from(["ready", "stopped"]),
                     pid=st.none() | st.integers(2, 99999), command=st.lists(texts, max_size=3),
                     holder=st.none() | st.builds(PortHolderView, pid=st.integers(2, 9999), program=texts),
                     output_tail=st.lists(texts, max_size=2))


def _through_json(cls, records):
    """What a reader gets: the table encoded, parsed as plain data, mapped to records."""
    data = msgspec.json.decode(msgspec.json.encode(table_of(cls, records)))
    return convert(list[cls], records_of(data, path="x"))


@given(st.lists(loops, max_size=6))
def test_loops_round_trip(records):
    assert _through_json(LoopView, records) == records


@given(st.lists(sidecars, max_size=6))
def test_sidecars_round_trip_with_nested_records(records):
    assert _through_json(SidecarView, records) == records


def test_a_column_at_its_default_is_left_out_when_the_values_are_equal_but_not_the_same_object():
    """msgspec's omit_defaults compares by identity: an "active" or a 0.0 read from the database was
    written a thousand times. The table compares by value."""
    decoded = json.loads('[{"id": "a", "state": "active", "run_timeout_seconds": 0.0, "enabled": true},'
                         ' {"id": "b", "state": "active", "run_timeout_seconds": 0.0, "enabled": true}]')
    records = convert(list[LoopView], decoded)
    assert b'"state"' in msgspec.json.encode(records[0])  # the per-object encoding keeps it
    table = table_of(LoopView, records)
    assert table.columns == ["id"] and table.rows == [("a",), ("b",)]


def test_a_column_one_record_sets_is_kept_for_all():
    table = table_of(LoopView, [LoopView(id="a"), LoopView(id="b", held_by="loopctl stop b")])
    assert table.columns == ["id", "held_by"] and table.rows == [("a", ""), ("b", "loopctl stop b")]


def test_no_records_no_columns():
    assert table_of(LoopView, []).columns == [] and records_of({"columns": [], "rows": []}, path="x") == []


def test_a_newer_writers_column_is_ignored_and_a_missing_one_takes_its_default():
    data = {"columns": ["id", "added_later", "next_run_at"], "rows": [["a", 1, 5.0]]}
    assert convert(list[LoopView], records_of(data, path="loops")) == [LoopView(id="a", next_run_at=5.0)]


def test_an_older_writers_list_of_objects_is_read_as_it_is():
    assert convert(list[LoopView], records_of([{"id": "a"}], path="loops")) == [LoopView(id="a")]


@pytest.mark.parametrize(("data", "words"), [
    ({"columns": ["id"], "rows": [["a"], ["b", "c"]]}, "loops.rows[1]: expected a list of 1 values (one per column)"),
    ({"columns": ["id"], "rows": [["a"], "b"]}, "loops.rows[1]: expected a list of 1 values"),
    ({"columns": "id", "rows": []}, "loops.columns: expected a list of strings, got 'id'"),
    ({"columns": ["id", 3], "rows": []}, "loops.columns: expected a list of strings"),
    ({"columns": ["id"]}, "loops.rows: missing, expected a list of rows"),
    ("loops", "loops: expected a table (columns and rows), got 'loops'"),
])
def test_a_table_of_the_wrong_shape_is_one_error_naming_where(data, words):
    with pytest.raises(DecodeError) as caught:
        records_of(data, path="loops")
    assert str(caught.value).startswith(words)


def test_a_wrong_value_in_a_row_names_the_row():
    data = {"columns": ["id", "next_run_at"], "rows": [["a", 1.0], ["b", "soon"]]}
    with pytest.raises(DecodeError) as caught:
        convert(list[LoopView], records_of(data, path="loops"), path="loops")
    assert str(caught.value).startswith("loops[1].next_run_at: expected")


def test_records_whose_every_value_is_a_default_keep_their_count():
    from console.core.records import View

    class Flags(View, frozen=True):
        on: bool = False
        note: str = ""

    table = table_of(Flags, [Flags(), Flags()])
    assert table.columns == [] and len(table.rows) == 2
    assert convert(list[Flags], records_of(msgspec.json.decode(msgspec.json.encode(table)), path="x")) == [Flags()] * 2
