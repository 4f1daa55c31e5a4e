"""View: the equality, hash and repr the snapshot's dataclasses share instead of generating."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil

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


def _own_dataclasses(module):
    return [c for _, c in inspect.getmembers(module, dataclasses.is_dataclass)
            if isinstance(c, type) and c.__module__ == module.__name__]


@pytest.mark.parametrize("module", [snapshot, tray, remote_records], ids=lambda m: m.__name__)
def test_every_snapshot_dataclass_is_a_frozen_view(module):
    classes = _own_dataclasses(module)
    assert classes and all(issubclass(cls, View) and cls.__dataclass_params__.frozen for cls in classes)


def test_no_frozen_dataclass_anywhere_in_loopctl_generates_equality_hash_or_repr():
    """Each one generated costs its module's import (the console's first frame, `--once`, the engine's
    start): a frozen dataclass is a View instead."""
    import console

    found = []
    for info in pkgutil.walk_packages(console.__path__, "console."):
        if info.name.endswith("__main__"):  # importing it runs loopctl
            continue
        module = importlib.import_module(info.name)
        for cls in _own_dataclasses(module):
            if cls.__dataclass_params__.frozen:
                found.append(cls)
                assert issubclass(cls, View), f"{cls.__module__}.{cls.__name__} is not a View"
                assert not {"__eq__", "__repr__", "__hash__"} & set(vars(cls)), \
                    f"{cls.__module__}.{cls.__name__} generates its own (declare eq=False, repr=False)"
    assert len(found) > 40
