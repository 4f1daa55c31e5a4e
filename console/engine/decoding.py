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


_hints_cache: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _hints_cache:
        _hints_cache[cls] = typing.get_type_hints(cls)
    return _hints_cache[cls]


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def decode(cls: type[T], data: object, *, strict: bool = True, path: str = "") -> T:
    """Decode `data` as `cls`. Strict mode rejects unknown keys (config); lenient ignores them (wire)."""
    return typing.cast(T, _decode(cls, data, strict, path))


def _decode(tp: Any, value: object, strict: bool, path: str) -> Any:
    origin = typing.get_origin(tp)
    if tp is Any or tp is object:
        return value
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors: list[DecodeError] = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _decode(arg, value, strict, path)
            except DecodeError as exc:
                errors.append(exc)
        if len(errors) == 1:
            raise errors[0]
        raise DecodeError(path, " or ".join(_describe(a) for a in args), value)
    if origin is typing.Literal:
        choices = typing.get_args(tp)
        if value in choices:
            return value
        raise DecodeError(path, "one of " + ", ".join(repr(c) for c in choices), value)
    if origin is list:
        (item,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise DecodeError(path, f"a list of {_describe(item)}", value)
        return [_decode(item, v, strict, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is tuple:
        item = typing.get_args(tp)[0]
        if not isinstance(value, list | tuple):
            raise DecodeError(path, f"a list of {_describe(item)}", value)
        return tuple(_decode(item, v, strict, f"{path}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        _key_tp, val_tp = typing.get_args(tp)
        if not isinstance(value, dict):
            raise DecodeError(path, "a table", value)
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise DecodeError(path, "string keys", k)
            out[k] = _decode(val_tp, v, strict, _join(path, k))
        return out
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _decode_dataclass(tp, value, strict, path)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError:
            raise DecodeError(path, "one of " + ", ".join(repr(m.value) for m in tp), value) from None
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise DecodeError(path, "true or false", value)
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise DecodeError(path, "an integer", value)
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise DecodeError(path, "a number", value)
    if tp is str:
        if isinstance(value, str):
            return value
        raise DecodeError(path, "a string", value)
    raise TypeError(f"decoding does not support {tp!r} at {path or 'top level'}")


def _decode_dataclass(cls: type, value: object, strict: bool, path: str) -> Any:
    if not isinstance(value, dict):
        raise DecodeError(path, "a table", value)
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    if strict:
        for key in value:
            if key not in fields:
                known = ", ".join(sorted(fields)) or "none"
                raise DecodeError(_join(path, str(key)), f"known keys: {known}", value[key], unknown_key=True)
    kwargs: dict[str, Any] = {}
    for name, field in fields.items():
        key_path = _join(path, name)
        if name not in value:
            if field.default is MISSING and field.default_factory is MISSING:
                raise DecodeError(key_path, _describe(hints[name]), MISSING)
            continue
        decoded = _decode(hints[name], value[name], strict, key_path)
        validate: Validator | None = field.metadata.get("validate")
        if validate is not None:
            problem = validate(decoded)
            if problem is not None:
                raise DecodeError(key_path, problem, value[name])
        kwargs[name] = decoded
    return cls(**kwargs)


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
