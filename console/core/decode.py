"""Outside data into typed records with msgspec, and its failures in loopctl's words.

msgspec checks the shape and says where (`Expected `int`, got `str` - at `$.sidecar[0].port``);
an operator wants the key path, what was expected in plain words and the value that was there
(`sidecar[0].port: expected an integer, got '80'`). The wording is derived from the record types
and the data, so it needs no table per record.
"""

from __future__ import annotations

import enum
import re
import reprlib
import types
import typing
from typing import Any, TypeVar, Union

import msgspec
import msgspec.json
import msgspec.structs

from console.core.records import FieldProblem

T = TypeVar("T")

_MISSING: Any = msgspec.UNSET  # the `got` of a key that is not there


class DecodeError(Exception):
    def __init__(self, key: str, expected: str, got: object = _MISSING, *, unknown_key: bool = False) -> None:
        super().__init__(key, expected)
        self.key = key
        self.expected = expected
        self.got = got
        self.unknown_key = unknown_key

    def __str__(self) -> str:
        where = self.key or "(top level)"
        if self.unknown_key:
            return f"{where}: unknown key ({self.expected})"
        if self.got is _MISSING:
            return f"{where}: missing, expected {self.expected}"
        return f"{where}: expected {self.expected}, got {_show(self.got)}"


def convert(cls: type[T], data: object, *, path: str = "") -> T:
    """Plain data (a TOML table, a parsed JSON value) as `cls`; DecodeError names the key path."""
    try:
        return msgspec.convert(data, cls)
    except msgspec.ValidationError as exc:
        raise _worded(cls, data, str(exc), path) from None
    except RecursionError:
        raise DecodeError(path, "data nested less deeply", "a value nested too deeply") from None


def decode_json(cls: type[T], raw: bytes | str, *, path: str = "") -> T:
    """JSON text as `cls` in one pass; on a wrong shape the text is parsed again to word the error."""
    try:
        try:
            return msgspec.json.decode(raw, type=cls)
        except msgspec.ValidationError as exc:
            data = msgspec.json.decode(raw)
            raise _worded(cls, data, str(exc), path) from None
    except msgspec.DecodeError as exc:
        raise DecodeError(path, "JSON", str(exc)) from None
    except RecursionError:  # `[[[[...` thousands deep, where a value of any shape is allowed
        raise DecodeError(path, "JSON", "nested too deeply") from None
    except UnicodeEncodeError:  # a str holding a lone surrogate: no UTF-8 spells it
        raise DecodeError(path, "JSON", "text that is not valid Unicode") from None


def encode_json(value: object) -> bytes:
    return msgspec.json.encode(value)


_AT = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_SEGMENT = re.compile(r"\.([^.\[]+)|\[(\d+|\.\.\.)\]")
_FIELD = re.compile(r"^Object (?P<what>missing required|contains unknown) field `(?P<name>[^`]+)`$")


def _worded(cls: type, data: object, text: str, prefix: str) -> DecodeError:
    match = _AT.match(text)
    assert match is not None  # the pattern matches any text
    message, path = match["message"], match["path"] or ""
    segments = _keys_found(cls, data, [name if name else (index if index == "..." else int(index))
                                        for name, index in _SEGMENT.findall(path)])
    field = _FIELD.match(message)
    problem = re.match(r"^(?P<name>\w+): expected (?P<expected>.*)$", message, re.DOTALL)
    if field is not None:
        segments.append(field["name"])
        key = _join(prefix, segments)
        if field["what"] == "contains unknown":
            owner = _type_at(cls, segments[:-1])
            known = msgspec.structs.fields(owner) if _is_struct(owner) else ()
            names = ", ".join(sorted(f.encode_name for f in known)) or "none"
            return DecodeError(key, f"known keys: {names}", unknown_key=True)
        return DecodeError(key, _describe(_type_at(cls, segments)))
    if problem is not None and problem["name"] in _field_names(_type_at(cls, segments)):
        # A record's own check (FieldProblem): msgspec says where the record is, the message says which field.
        segments.append(problem["name"])
        return DecodeError(_join(prefix, segments), problem["expected"], _value_at(data, segments))
    msgspec_said = message.startswith(("Expected", "Invalid", "Number out of range"))  # its own phrasing
    expected = _describe(_type_at(cls, segments)) if msgspec_said else message
    return DecodeError(_join(prefix, segments), expected, _value_at(data, segments))


def _keys_found(cls: type, data: object, segments: list[str | int]) -> list[str | int]:
    """msgspec writes a table key as `[...]`: find the key whose value is the one that fails."""
    out: list[str | int] = []
    for segment in segments:
        if segment != "...":
            out.append(segment)
            continue
        here, value_type = _value_at(data, out), _type_at(cls, [*out, "..."])
        bad = next((k for k, v in here.items() if not _fits(v, value_type)), None) if isinstance(here, dict) else None
        if bad is None:
            return out
        out.append(str(bad))
    return out


def _fits(value: object, tp: Any) -> bool:
    try:
        msgspec.convert(value, tp)
    except (msgspec.ValidationError, TypeError):
        return False
    return True


def _join(prefix: str, segments: list[str | int]) -> str:
    out = prefix
    for segment in segments:
        if isinstance(segment, int):
            out += f"[{segment}]"
        else:
            out = f"{out}.{segment}" if out else segment
    return out


def _value_at(data: object, segments: list[str | int]) -> object:
    for segment in segments:
        try:
            data = data[segment]  # type: ignore[index]
        except (KeyError, IndexError, TypeError):
            return _MISSING
    return data


def _is_struct(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, msgspec.Struct)


def _field_names(tp: Any) -> set[str]:
    return {f.encode_name for f in msgspec.structs.fields(tp)} if _is_struct(tp) else set()


def _unwrap(tp: Any) -> Any:
    """The type a value must have: Annotated and `X | None` stripped to X (a union stays a union)."""
    if typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    if typing.get_origin(tp) in (Union, types.UnionType):
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(options) == 1:
            return _unwrap(options[0])
    return tp


def _type_at(cls: Any, segments: list[str | int]) -> Any:
    tp = _unwrap(cls)
    for segment in segments:
        origin = typing.get_origin(tp)
        if isinstance(segment, str) and _is_struct(tp):
            by_name = {f.encode_name: f.type for f in msgspec.structs.fields(tp)}
            tp = by_name.get(segment, Any)
        elif origin in (list, tuple, set, frozenset) and typing.get_args(tp):
            tp = typing.get_args(tp)[0]
        elif origin is dict and typing.get_args(tp):  # a key, or "..." for any key
            tp = typing.get_args(tp)[1]
        else:
            return Any
        tp = _unwrap(tp)
    return tp


_NAMES: dict[Any, tuple[str, str]] = {bool: ("true or false", "booleans"), int: ("an integer", "integers"),
                                      float: ("a number", "numbers"), str: ("a string", "strings")}


def _describe(tp: Any, plural: bool = False) -> str:
    tp = _unwrap(tp)
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a, plural) for a in typing.get_args(tp) if a is not type(None))
    if origin in (list, tuple, set, frozenset):
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        return "lists" if plural else ("a list of " + _describe(args[0], plural=True) if args else "a list")
    if origin is dict or tp is dict or _is_struct(tp):
        return "tables" if plural else "a table"
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(c) for c in typing.get_args(tp))
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return "one of " + ", ".join(repr(m.value) for m in tp)
    if tp in _NAMES:
        return _NAMES[tp][plural]
    return "values" if plural else "a value"


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 3, 60, 60


def _show(value: object) -> str:
    """The value that was there, short and never raising (a hostile one may nest thousands deep)."""
    try:
        text = _REPR.repr(value)
    except RecursionError:
        text = f"a {type(value).__name__} nested too deeply"
    return text if len(text) <= 60 else text[:57] + "..."


__all__ = ["DecodeError", "FieldProblem", "convert", "decode_json", "encode_json"]
