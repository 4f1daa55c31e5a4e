from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

import pytest

from console.core.decoding import DecodeError, check, decode, encode, in_range


class Colour(StrEnum):
    RED = "red"
    BLUE = "blue"


@dataclass(frozen=True)
class Port:
    number: int = check(in_range(1, 65535, "a port"), default=80)


@dataclass(frozen=True)
class Item:
    name: str
    ports: list[Port] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    colour: Colour = Colour.RED
    mode: Literal["a", "b"] = "a"
    ratio: float = 1.0
    note: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def test_nested_values_decode_and_round_trip():
    data = {"name": "x", "ports": [{"number": 8080}], "env": {"A": "1"}, "colour": "blue", "mode": "b",
            "ratio": 2, "note": None, "extra": {"k": [1, {"z": None}]}}
    item = decode(Item, data)
    assert item.ports == [Port(8080)] and item.colour is Colour.BLUE and item.ratio == 2.0
    assert decode(Item, encode(item)) == item


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "name: missing, expected a string"),
        ({"name": "x", "ports": [{"number": 0}]}, "ports[0].number: expected a port from 1 to 65535, got 0"),
        ({"name": "x", "ports": [{"number": True}]}, "ports[0].number: expected an integer, got True"),
        ({"name": "x", "env": {"A": 1}}, "env.A: expected a string, got 1"),
        ({"name": "x", "colour": "green"}, "colour: expected one of 'red', 'blue', got 'green'"),
        ({"name": "x", "mode": "c"}, "mode: expected one of 'a', 'b', got 'c'"),
        ({"name": "x", "ports": {}}, "ports: expected a list of a table, got {}"),
        ({"name": "x", "bogus": 1}, "bogus: unknown key (known keys: colour, env, extra, mode, name, note, ports"),
    ],
)
def test_errors_name_the_key_path(data, message):
    with pytest.raises(DecodeError) as info:
        decode(Item, data)
    assert str(info.value).startswith(message)


def test_lenient_mode_ignores_unknown_keys_for_wire_compatibility():
    assert decode(Item, {"name": "x", "from_the_future": 1}, strict=False) == Item(name="x")


@dataclass(frozen=True)
class Shelf:
    items: list[Item] = field(default_factory=list)
    by_name: dict[str, Port] = field(default_factory=dict)
    pair: tuple[int, ...] = ()
    either: int | str = 0
    maybe: Port | None = None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"items": [{"name": "a"}, {"name": "b", "ports": [{}, {"number": 70000}]}]},
         "items[1].ports[1].number: expected a port from 1 to 65535, got 70000"),
        ({"items": [{"name": "a", "env": {"K": None}}]}, "items[0].env.K: expected a string, got None"),
        ({"by_name": {"web": {"number": "80"}}}, "by_name.web.number: expected an integer, got '80'"),
        ({"by_name": []}, "by_name: expected a table, got []"),
        ({"pair": [1, "2"]}, "pair[1]: expected an integer, got '2'"),
        ({"either": 1.5}, "either: expected an integer or a string, got 1.5"),
        ({"maybe": {"number": -1}}, "maybe.number: expected a port from 1 to 65535, got -1"),
        ({"maybe": 3}, "maybe: expected a table, got 3"),
        ({"items": [{"name": "a", "bogus": 1}]}, "items[0].bogus: unknown key"),
        ({"items": [{}]}, "items[0].name: missing, expected a string"),
        ([], "(top level): expected a table, got []"),
    ],
)
def test_errors_deep_in_nested_values_name_the_whole_path(data, message):
    with pytest.raises(DecodeError) as info:
        decode(Shelf, data)
    assert str(info.value).startswith(message)


def test_a_caller_given_path_prefixes_every_error():
    with pytest.raises(DecodeError) as info:
        decode(Shelf, {"items": [{"name": 1}]}, path="remote.document")
    assert str(info.value) == "remote.document.items[0].name: expected a string, got 1"


def test_every_kind_of_value_decodes_and_round_trips():
    data = {"items": [{"name": "a", "ports": [{"number": 1}]}], "by_name": {"w": {"number": 2}},
            "pair": [3, 4], "either": "x", "maybe": {"number": 5}}
    shelf = decode(Shelf, data)
    assert shelf == Shelf(items=[Item("a", [Port(1)])], by_name={"w": Port(2)}, pair=(3, 4), either="x",
                          maybe=Port(5))
    assert decode(Shelf, encode(shelf)) == shelf
    assert decode(Shelf, {"either": 7, "maybe": None}) == Shelf(either=7)
