"""The base of loopctl's frozen records: `class X(View)` with annotated fields is a frozen dataclass.

`@dataclass(frozen=True)` compiles three methods from generated source for each class (`__init__`,
`__setattr__`, `__delattr__`; three more for eq, hash and repr): about 0.7 ms a class, 18 ms of
imports before a console's first frame. A View is still a real dataclass (`fields`, `replace`,
`asdict` and the decoder work on it, and mypy checks it as a frozen one), but these methods are
written once, here: the initializer is a closure over the class's fields, built without compiling
anything; assignment and deletion always refuse, as a frozen dataclass's do; equal when the class and
every field are; a hash of the field values; `Name(field=value, ...)` as the repr.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from typing_extensions import dataclass_transform
else:
    def dataclass_transform(**_: object) -> Callable[[type], type]:
        return lambda cls: cls


def _initializer(cls: type[View], fields: tuple[dataclasses.Field[Any], ...]) -> Callable[..., None]:
    """`__init__` for a View class: positional or keyword field values, defaults and default
    factories, and the errors Python gives for a wrong call, as `dataclass` does."""
    if any(not f.init or f.kw_only is True for f in fields):
        raise TypeError(f"{cls.__qualname__}: a View's fields are all init fields, positional or keyword")
    names = cls._names
    defaulted = [f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING for f in fields]
    for name, has_default, before in zip(names[1:], defaulted[1:], defaulted[:-1], strict=True):
        if before and not has_default:  # as dataclass refuses it: positional calls would be ambiguous
            raise TypeError(f"{cls.__qualname__}: non-default argument {name!r} follows default argument")
    known = frozenset(names)
    defaults = {f.name: f.default for f in fields if f.default is not dataclasses.MISSING}
    factories = {f.name: f.default_factory for f in fields if f.default_factory is not dataclasses.MISSING}
    where = f"{cls.__qualname__}.__init__()"
    post_init = getattr(cls, "__post_init__", None)

    def __init__(self: View, *args: Any, **kwargs: Any) -> None:
        values = kwargs
        if args:
            if len(args) > len(names):
                raise TypeError(f"{where} takes {len(names) + 1} positional arguments but {len(args) + 1} were given")
            values = dict(zip(names, args, strict=False))
            for key in kwargs:
                if key in values:
                    raise TypeError(f"{where} got multiple values for argument {key!r}")
            values.update(kwargs)
        if not values.keys() <= known:
            unexpected = next(key for key in values if key not in known)
            raise TypeError(f"{where} got an unexpected keyword argument {unexpected!r}")
        if len(values) < len(names):
            values = {**defaults, **values}
            for name, factory in factories.items():
                if name not in values:
                    values[name] = factory()
            if len(values) < len(names):
                missing = ", ".join(repr(name) for name in names if name not in values)
                raise TypeError(f"{where} missing {len(names) - len(values)} required argument(s): {missing}")
        self.__dict__.update(values)
        if post_init is not None:
            post_init(self)

    __init__.__qualname__ = f"{cls.__qualname__}.__init__"
    return __init__


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field, dataclasses.Field))
class View:
    __slots__ = ()
    if TYPE_CHECKING:  # what makes `fields`, `replace` and `asdict` accept a View
        __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]
    _names: ClassVar[tuple[str, ...]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            raise TypeError(f"{cls.__qualname__}: a View's __init__ is made from its fields; check in __post_init__")
        documented = cls.__doc__ is not None
        if not documented:
            cls.__doc__ = cls.__name__  # else dataclass derives one through inspect.signature, at a cost
        dataclasses.dataclass(init=False, repr=False, eq=False)(cls)
        fields = dataclasses.fields(cls)
        cls._names = tuple(f.name for f in fields)
        cls.__init__ = _initializer(cls, fields)  # type: ignore[method-assign]
        if not documented:
            cls.__doc__ = f"{cls.__name__}({', '.join(cls._names)})"

    def __setattr__(self, name: str, value: object) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._names)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, View)
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        values = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._names)
        return f"{type(self).__name__}({values})"


# The verbs every module uses on records, in one place so the base can change beneath them.
field = dataclasses.field
replace = dataclasses.replace


def to_builtins(record: View) -> dict[str, Any]:
    """A record as plain JSON-ready data (nested records, lists and dicts included)."""
    return dataclasses.asdict(record)
