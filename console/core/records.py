"""The base of loopctl's records: `class X(View)` with annotated fields is a frozen msgspec Struct.

Structs are values (equal by fields, hashable, immutable), construct in C and encode to and decode
from JSON and plain data without a generic walk: the snapshot is encoded once per version and
decoded by an observer on every push. Every module uses the verbs below instead of msgspec's
spellings, so the base is named in one place.

Unknown keys: a View tolerates them (a snapshot from an older or newer owner); a `StrictView`
(the host config, the remote config document) refuses them. Field checks that the types cannot
say (a name's pattern, a port's range) are declared per class in `checks` and run on
construction and decoding alike; `console.core.decode` words their failures with the key path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import msgspec
import msgspec.structs

R = TypeVar("R", bound="View")

# A field check returns None when the value is fine, else what was expected ("a port (0 for none)").
Check = Callable[[Any], str | None]


class FieldProblem(ValueError):
    """Raised by a record's checks; msgspec adds where the record sits, decode adds the field's value."""

    def __init__(self, field_name: str, expected: str) -> None:
        super().__init__(f"{field_name}: expected {expected}")
        self.field_name = field_name
        self.expected = expected


class View(msgspec.Struct, frozen=True):
    pass


class CompactView(View, frozen=True, omit_defaults=True):
    """A record sent in every snapshot, a thousand times over on a busy host: a field whose value is its
    default is left out of the encoding (a decoder fills it in), which halves a loop's bytes.
    `full_builtins` gives every field, for what people read (the `--format json` report)."""


class StrictView(View, frozen=True, forbid_unknown_fields=True):
    # Only strict records carry checks: a __post_init__ on View would run for every record decoded.
    checks: ClassVar[dict[str, Check]] = {}

    def __post_init__(self) -> None:
        for name, check in self.checks.items():
            problem = check(getattr(self, name))
            if problem is not None:
                raise FieldProblem(name, problem)


field = msgspec.field


def replace(record: R, **changes: Any) -> R:
    return msgspec.structs.replace(record, **changes)


def to_builtins(record: View) -> Any:
    """A record as plain JSON-ready data (nested records, lists and dicts included; enums by value)."""
    return msgspec.to_builtins(record)


def field_names(cls: type[View]) -> tuple[str, ...]:
    return cls.__struct_fields__


_SCALARS = frozenset({str, int, float, bool, type(None)})


def full_builtins(value: Any) -> Any:
    """Plain data with every field of every record, defaults included (CompactView leaves them out of
    its encoding; a report keeps one shape whatever the values). Scalars are taken as they are: a
    report of 1,000 loops walks 23,000 fields, so the walk descends only into what holds more."""
    if isinstance(value, msgspec.Struct):
        return {name: item if type(item) in _SCALARS else full_builtins(item)
                for name, item in zip(value.__struct_fields__, msgspec.structs.astuple(value), strict=True)}
    if isinstance(value, list | tuple):
        return [item if type(item) in _SCALARS else full_builtins(item) for item in value]
    if isinstance(value, dict):
        return {key: item if type(item) in _SCALARS else full_builtins(item) for key, item in value.items()}
    return value
