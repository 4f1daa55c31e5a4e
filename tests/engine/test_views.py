"""View: the equality, hash and repr the snapshot's dataclasses share instead of generating."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from console.engine import remote_records, snapshot, tray
from console.engine.views import View


@dataclasses.dataclass(frozen=True)
class Generated:
    name: str
    ports: tuple[int, ...] = ()
    note: str | None = None


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Shared(View):
    name: str
    ports: tuple[int, ...] = ()
    note: str | None = None


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Other(View):
    name: str
    ports: tuple[int, ...] = ()
    note: str | None = None


def test_equality_hash_and_repr_are_what_dataclass_would_generate():
    args = [("a",), ("a", (1, 2)), ("a", (1, 2), "x"), ("b", (), "x")]
    for one in args:
        for two in args:
            assert (Shared(*one) == Shared(*two)) == (Generated(*one) == Generated(*two))
        assert hash(Shared(*one)) == hash(Generated(*one))
        assert repr(Shared(*one)) == repr(Generated(*one)).replace("Generated(", "Shared(", 1)
    assert Shared("a") != Other("a") and Shared("a") != ("a", (), None)  # another class is never equal


def test_a_view_stays_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Shared("a").name = "b"  # type: ignore[misc]


@pytest.mark.parametrize("module", [snapshot, tray, remote_records], ids=lambda m: m.__name__)
def test_every_snapshot_dataclass_is_a_view_that_generates_none_of_the_three(module):
    classes = [c for _, c in inspect.getmembers(module, dataclasses.is_dataclass)
               if isinstance(c, type) and c.__module__ == module.__name__]
    assert classes
    for cls in classes:
        assert issubclass(cls, View), cls
        assert not {"__eq__", "__repr__", "__hash__"} & set(vars(cls)), f"{cls.__name__} generates its own"
        assert cls.__dataclass_params__.frozen, cls
