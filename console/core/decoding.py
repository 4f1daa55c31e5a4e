"""Plain data (TOML tables, JSON objects) into typed dataclasses, with errors that name the key.

One decoder serves the host config (strict: unknown keys are errors), the snapshot JSON
round-trip (lenient: an observer may be older or newer than the owner) and, later, the
remote config document.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Callable
from dataclasses import MISSING, dataclass
from typing import Any, TypeVar, Union

from console.core.records import View

T = TypeVar("T")

# A field validator returns None when the value is fine, else what was expected.
Validator = Callable[[Any], str | None]


@dataclass
class DecodeError(Exception):
    key: str
    expected: str
    got: object
    unknown_key: bool = False

    def __str__(self) -> str:
        where = self.key or "(top level)"
        if self.unknown_key:
            return f"{where}: unknown key ({self.expected})"
        if self.got is MISSING:
            return f"{where}: missing, expected {self.expected}"
        return f"{where}: expected {self.expected}, got {_show(self.got)}"


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check(validator: Validator, **kwargs: Any) -> Any:
    """A dataclass field whose value must also satisfy `validator`."""
    return dataclasses.field(metadata={"validate": validator}, **kwargs)


def in_range(low: float, high: float, what: str = "a number") -> Validator:
    def validate(value: Any) -> str | None:
        return None if low <= value <= high else f"{what} from {low:g} to {high:g}"

    return validate


def non_empty(value: Any) -> str | None:
    return None if len(value) > 0 else "a non-empty value"


# Each type is looked at once and turned into a decoder function; decoding a value then only runs
# those functions. The generic walk (type inspection at every value) cost 14 ms on a 94 KB snapshot,
# which an observing console decodes before its first frame and on every push.
# A decoder raises DecodeError with a key relative to its own value; each enclosing level puts its
# part of the path in front while the error travels out, so no path string is built unless one fails.
Decoder = Callable[[Any, bool], Any]

_decoders: dict[Any, Decoder] = {}


def _join(path: str, key: str) -> str:
    if not key:
        return path
    if not path or key.startswith("["):
        return f"{path}{key}"
    return f"{path}.{key}"


def _under(outer: str, exc: DecodeError) -> DecodeError:
    return dataclasses.replace(exc, key=_join(outer, exc.key))


def decode(cls: type[T], data: object, *, strict: bool = True, path: str = "") -> T:
    """Decode `data` as `cls`. Strict mode rejects unknown keys (config); lenient ignores them (wire)."""
    try:
        return typing.cast(T, _decoder(cls)(data, strict))
    except DecodeError as exc:
        raise _under(path, exc) from None


def _decoder(tp: Any) -> Decoder:
    try:
        return _decoders[tp]
    except KeyError:
        decoder = _decoders[tp] = _build(tp)
        return decoder


def _identity(value: Any, _strict: bool) -> Any:
    return value


def _build(tp: Any) -> Decoder:
    origin = typing.get_origin(tp)
    if tp is Any or tp is object:
        return _identity
    if origin in (Union, types.UnionType):
        return _union(tp)
    if origin is typing.Literal:
        choices = typing.get_args(tp)

        def literal(value: Any, _strict: bool) -> Any:
            if value in choices:
                return value
            raise DecodeError("", "one of " + ", ".join(repr(c) for c in choices), value)

        return literal
    if origin in (list, tuple):
        return _sequence(typing.get_args(tp)[0], list if origin is list else tuple)
    if origin is dict:
        return _mapping(typing.get_args(tp)[1])
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _dataclass(tp)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        def member(value: Any, _strict: bool) -> Any:
            try:
                return tp(value)
            except ValueError:
                raise DecodeError("", "one of " + ", ".join(repr(m.value) for m in tp), value) from None

        return member
    scalar = _SCALARS.get(tp)
    if scalar is None:
        raise TypeError(f"decoding does not support {tp!r}")
    return scalar


def _bool(value: Any, _strict: bool) -> Any:
    if isinstance(value, bool):
        return value
    raise DecodeError("", "true or false", value)


def _int(value: Any, _strict: bool) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise DecodeError("", "an integer", value)


def _float(value: Any, _strict: bool) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise DecodeError("", "a number", value)


def _str(value: Any, _strict: bool) -> Any:
    if isinstance(value, str):
        return value
    raise DecodeError("", "a string", value)


_SCALARS: dict[Any, Decoder] = {bool: _bool, int: _int, float: _float, str: _str}


def _union(tp: Any) -> Decoder:
    args = typing.get_args(tp)
    optional = type(None) in args
    options = [_decoder(arg) for arg in args if arg is not type(None)]
    expected = " or ".join(_describe(a) for a in args)
    if len(options) == 1:  # `X | None`, most of them: its one error is the error
        (only,) = options

        def maybe(value: Any, strict: bool) -> Any:
            return None if value is None and optional else only(value, strict)

        return maybe

    def union(value: Any, strict: bool) -> Any:
        if value is None and optional:
            return None
        errors: list[DecodeError] = []
        for option in options:
            try:
                return option(value, strict)
            except DecodeError as exc:
                errors.append(exc)
        if len(errors) == 1:
            raise errors[0]
        raise DecodeError("", expected, value)

    return union


def _sequence(item_tp: Any, kind: type[list[Any]] | type[tuple[Any, ...]]) -> Decoder:
    item = _decoder(item_tp)
    accepted = list if kind is list else (list, tuple)

    def sequence(value: Any, strict: bool) -> Any:
        if not isinstance(value, accepted):
            raise DecodeError("", f"a list of {_describe(item_tp)}", value)
        out = []
        for i, v in enumerate(value):
            try:
                out.append(item(v, strict))
            except DecodeError as exc:
                raise _under(f"[{i}]", exc) from None
        return out if kind is list else tuple(out)

    return sequence


def _mapping(value_tp: Any) -> Decoder:
    item = _decoder(value_tp)

    def mapping(value: Any, strict: bool) -> Any:
        if not isinstance(value, dict):
            raise DecodeError("", "a table", value)
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise DecodeError("", "string keys", k)
            try:
                out[k] = item(v, strict)
            except DecodeError as exc:
                raise _under(k, exc) from None
        return out

    return mapping


class _Field(View):
    name: str
    decode: Decoder
    required: bool
    expected: str  # for a missing required key
    validate: Validator | None


def _dataclass(cls: type) -> Decoder:
    # Fields are resolved on first use, so a dataclass may refer to itself (or a later one) by name.
    # Assigned in one step: a console's early-watch thread and its main thread may both get here first.
    resolved: tuple[frozenset[str], tuple[_Field, ...]] | None = None

    def resolve() -> tuple[frozenset[str], tuple[_Field, ...]]:
        nonlocal resolved
        hints = typing.get_type_hints(cls)
        fields = [f for f in dataclasses.fields(cls) if f.init]
        resolved = (frozenset(f.name for f in fields),
                    tuple(_Field(f.name, _decoder(hints[f.name]), f.default is MISSING and f.default_factory is MISSING,
                                 _describe(hints[f.name]), f.metadata.get("validate")) for f in fields))
        return resolved

    def decode_dataclass(value: Any, strict: bool) -> Any:
        if not isinstance(value, dict):
            raise DecodeError("", "a table", value)
        known, plan = resolved or resolve()
        if strict:
            for key in value:
                if key not in known:
                    raise DecodeError(str(key), f"known keys: {', '.join(sorted(known)) or 'none'}", value[key],
                                      unknown_key=True)
        kwargs: dict[str, Any] = {}
        for field in plan:
            if field.name not in value:
                if field.required:
                    raise DecodeError(field.name, field.expected, MISSING)
                continue
            raw = value[field.name]
            try:
                decoded = field.decode(raw, strict)
            except DecodeError as exc:
                raise _under(field.name, exc) from None
            if field.validate is not None:
                problem = field.validate(decoded)
                if problem is not None:
                    raise DecodeError(field.name, problem, raw)
            kwargs[field.name] = decoded
        return cls(**kwargs)

    return decode_dataclass


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(tp) if a is not type(None))
    if origin in (list, tuple):
        return f"a list of {_describe(typing.get_args(tp)[0])}"
    if origin is dict or (isinstance(tp, type) and dataclasses.is_dataclass(tp)):
        return "a table"
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(c) for c in typing.get_args(tp))
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return "one of " + ", ".join(repr(m.value) for m in tp)
    return names.get(tp, getattr(tp, "__name__", str(tp)))


def encode(obj: Any) -> Any:
    """Dataclasses to plain JSON-ready data (enums by value)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: encode(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, list | tuple):
        return [encode(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): encode(v) for k, v in obj.items()}
    return obj
