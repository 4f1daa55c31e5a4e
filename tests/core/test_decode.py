"""Outside data into records (msgspec), with errors that name the key path, what was expected and what was there."""

from enum import StrEnum
from typing import Any, Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from console.core.decode import DecodeError, convert, decode_json, encode_json
from console.core.records import StrictView, field, to_builtins


class Colour(StrEnum):
    RED = "red"
    BLUE = "blue"


class Port(StrictView, frozen=True):
    checks = {"number": lambda v: None if 1 <= v <= 65535 else "a port from 1 to 65535"}
    number: int = 80


class Item(StrictView, frozen=True):
    name: str
    ports: list[Port] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    colour: Colour = Colour.RED
    mode: Literal["a", "b"] = "a"
    ratio: float = 1.0
    note: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    words: list[str] = field(default_factory=list)


def test_nested_values_decode_and_round_trip():
    data = {"name": "x", "ports": [{"number": 8080}], "env": {"A": "1"}, "colour": "blue", "mode": "b",
            "ratio": 2, "note": None, "extra": {"k": [1, {"z": None}]}}
    item = convert(Item, data)
    assert item.ports == [Port(8080)] and item.colour is Colour.BLUE and item.ratio == 2.0
    assert convert(Item, to_builtins(item)) == item
    assert decode_json(Item, encode_json(item)) == item


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "name: missing, expected a string"),
        ({"name": "x", "ports": [{"number": 0}]}, "ports[0].number: expected a port from 1 to 65535, got 0"),
        ({"name": "x", "ports": [{"number": True}]}, "ports[0].number: expected an integer, got True"),
        ({"name": "x", "ports": [{"number": "80"}]}, "ports[0].number: expected an integer, got '80'"),
        ({"name": "x", "env": {"A": 1}}, "env.A: expected a string, got 1"),
        ({"name": "x", "colour": "green"}, "colour: expected one of 'red', 'blue', got 'green'"),
        ({"name": "x", "mode": "c"}, "mode: expected one of 'a', 'b', got 'c'"),
        ({"name": "x", "ports": {}}, "ports: expected a list of tables, got {}"),
        ({"name": "x", "words": "w"}, "words: expected a list of strings, got 'w'"),
        ({"name": "x", "bogus": 1}, "bogus: unknown key (known keys: colour, env, extra, mode, name, note, ports"),
        ({"name": "x", "ports": [{"number": 1}, {"nmbr": 2}]}, "ports[1].nmbr: unknown key (known keys: number)"),
        ([], "(top level): expected a table, got []"),
    ],
)
def test_errors_name_the_key_path(data, message):
    with pytest.raises(DecodeError) as info:
        convert(Item, data)
    assert str(info.value).startswith(message)


def test_a_caller_given_path_prefixes_every_error():
    with pytest.raises(DecodeError) as info:
        convert(Item, {"name": 1}, path="remote.document")
    assert str(info.value) == "remote.document.name: expected a string, got 1"


def test_json_errors_are_worded_the_same_and_malformed_json_says_so():
    with pytest.raises(DecodeError, match=r"^ports\[0\].number: expected a port from 1 to 65535, got 0$"):
        decode_json(Item, b'{"name": "x", "ports": [{"number": 0}]}')
    with pytest.raises(DecodeError) as info:
        decode_json(Item, b'{"name": ')
    assert info.value.expected == "JSON"


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(
                        ["name", "ports", "env", "number", "colour", "bogus"]), inner, max_size=4), max_leaves=12))
def test_any_plain_data_decodes_or_is_one_decode_error(data):
    """Whatever an outside party sends, the boundary answers a record or a DecodeError: nothing else escapes."""
    try:
        item = convert(Item, data)
    except DecodeError as exc:
        assert str(exc)  # always words itself
    else:
        assert isinstance(item, Item)


DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize("raw", [b"[" * 100_000, b'{"name": "x", "extra": {"k": ' + DEEP + b"}}"])
def test_json_nested_thousands_deep_is_one_decode_error(raw):
    """A hostile document nested 100,000 deep ends as one DecodeError, never a RecursionError in a task."""
    with pytest.raises(DecodeError) as info:
        decode_json(Item, raw)
    assert info.value.expected in ("JSON", "a table")


def test_hostile_values_still_word_one_error():
    """A number too big for a float, a value nested past repr's depth, a lone surrogate: each is one
    DecodeError that words itself (a RecursionError or UnicodeEncodeError escaped before)."""
    with pytest.raises(DecodeError) as info:
        convert(Item, {"name": "x", "ratio": 10**400})
    assert str(info.value).startswith("ratio: expected a number, got 1000")
    deep: object = "x"
    for _ in range(3000):
        deep = [deep]
    with pytest.raises(DecodeError) as info:
        convert(Item, {"name": deep})
    assert str(info.value).startswith("name: expected a string, got [[[")
    with pytest.raises(DecodeError) as info:
        decode_json(Item, '{"name": "\ud800"}')
    assert info.value.expected == "JSON"
