"""The base of the snapshot's frozen dataclasses: equality, hash and repr written once, here.

`dataclass` generates these three per class, compiling their source as each class is built; for the
snapshot's 18 classes that was about 20 ms (half the snapshot module's import), paid by every console
start before its first frame. These do the same over each class's fields: equal when the class and every field
are, a hash of the field values, `Name(field=value, ...)` as the repr. A view is declared
`@dataclass(frozen=True, eq=False, repr=False)` and subclasses View (tests/engine/test_views.py checks).
"""

from __future__ import annotations

import dataclasses
from typing import Any

_names: dict[type, tuple[str, ...]] = {}


def _fields(cls: type) -> tuple[str, ...]:
    try:
        return _names[cls]
    except KeyError:
        names = _names[cls] = tuple(f.name for f in dataclasses.fields(cls))
        return names


class View:
    __slots__ = ()

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in _fields(type(self)))

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, View)
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        values = ", ".join(f"{name}={getattr(self, name)!r}" for name in _fields(type(self)))
        return f"{type(self).__name__}({values})"
