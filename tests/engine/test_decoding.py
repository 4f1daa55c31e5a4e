from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

import pytest

from console.engine.decoding import DecodeError, check, decode, encode, in_range


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
