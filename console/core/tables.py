"""Many records of one kind as a table: the column names once, then a row of values per record.

A snapshot carries a thousand loops; as JSON objects each repeats every key, and msgspec's
`omit_defaults` leaves a default out only when it is the very same object (an "active" read from
the database is equal to the default, not identical, so it was written a thousand times). A table
names each column once and leaves out a column whose every value equals its default, compared by
`==`. Decoding maps columns by name, so a reader of another loopctl version still reads it: a column
it does not know is ignored, one it expects and does not find takes its default.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from itertools import repeat
from typing import Any, TypeVar

import msgspec
import msgspec.structs

from console.core.decode import DecodeError
from console.core.records import View

R = TypeVar("R", bound=View)

# Per record class, for each field: (whether it has a default, the default). A column is left out
# only when the field has one and every value equals it; a required field's column never is.
_LEFT_OUT: dict[type[View], list[tuple[bool, Any]]] = {}


class Table(View, frozen=True):
    columns: list[str]
    rows: list[tuple[Any, ...]]


def _defaults(cls: type[View]) -> list[tuple[bool, Any]]:
    found = _LEFT_OUT.get(cls)
    if found is None:
        fields = cls.__struct_fields__
        given = cls.__struct_defaults__
        required = len(fields) - len(given)
        found = [(False, None)] * required
        for default in given:
            factory = getattr(default, "factory", None)  # msgspec's _Factory: a fresh empty list or dict
            found.append((True, factory() if callable(factory) else default))
        _LEFT_OUT[cls] = found
    return found


def table_of(cls: type[R], records: Sequence[R]) -> Table:
    """`records` (all of class `cls`) as a table: every column some record holds a non-default value in."""
    fields = cls.__struct_fields__
    rows = [msgspec.structs.astuple(record) for record in records]
    if not rows:
        return Table(columns=[], rows=[])
    columns = list(zip(*rows, strict=True))
    keep = [i for i, (optional, default) in enumerate(_defaults(cls))
            if not optional or columns[i].count(default) != len(rows)]
    if not keep:  # every field has a default and every value is its default
        return Table(columns=[], rows=[() for _ in rows])
    pick: Callable[[tuple[Any, ...]], Any] = operator.itemgetter(*keep)
    picked = list(map(pick, rows)) if len(keep) > 1 else [(pick(row),) for row in rows]
    return Table(columns=[fields[i] for i in keep], rows=picked)


def records_of(data: object, *, path: str) -> list[dict[str, Any]]:
    """A table's plain data (a parsed JSON object) as one dict per row, for typed conversion after.

    A list is taken as it is (records written one object each: a snapshot of an older owner)."""
    if isinstance(data, list):
        return data
    if not isinstance(data, dict):
        raise DecodeError(path, "a table (columns and rows)", data)
    columns, rows = data.get("columns"), data.get("rows")
    if not isinstance(columns, list) or not all(isinstance(name, str) for name in columns):
        raise DecodeError(f"{path}.columns", "a list of strings", columns if "columns" in data else msgspec.UNSET)
    if not isinstance(rows, list):
        raise DecodeError(f"{path}.rows", "a list of rows", rows if "rows" in data else msgspec.UNSET)
    width = len(columns)
    if set(map(type, rows)) <= {list} and set(map(len, rows)) <= {width}:  # checked in C: the common case
        return list(map(dict, map(zip, repeat(columns), rows)))
    for n, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != width:
            raise DecodeError(f"{path}.rows[{n}]", f"a list of {width} values (one per column)", row)
    raise AssertionError("unreachable: some row was not a list of `width` values")  # pragma: no cover
