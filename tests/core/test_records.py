"""View: loopctl's frozen records, real dataclasses whose methods are written once instead of generated."""

from __future__ import annotations

import copy
import dataclasses
import importlib
import pickle
import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from console.core.decoding import decode, encode
from console.core.records import View
from console.readmodel import snapshot, tray
from console.remote import records as remote_records


@dataclasses.dataclass(frozen=True)
class Generated:
    name: str
    ports: tuple[int, ...] = ()
    note: str | None = None
    tags: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class GeneratedOther:
    name: str
    ports: tuple[int, ...] = ()
    note: str | None = None


class Shared(View):
    name: str
    ports: tuple[int, ...] = ()
    note: str | None = None
    tags: list[str] = dataclasses.field(default_factory=list)


class Other(View):
    name: str
    ports: tuple[int, ...] = ()
    note: str | None = None


class Checked(View):
    """A view that checks itself once built."""

    low: int
    high: int

    def __post_init__(self) -> None:
        if self.low > self.high:
            raise ValueError("low > high")


CALLS: list[tuple[tuple[object, ...], dict[str, object]]] = [
    (("a",), {}), (("a", (1, 2)), {}), (("a", (1, 2), "x"), {}), (("b", (), "x", ["t"]), {}),
    ((), {"name": "a"}), ((), {"note": "n", "name": "a"}), (("a",), {"tags": ["u"], "note": None}),
]
BAD_CALLS: list[tuple[tuple[object, ...], dict[str, object], str]] = [
    ((), {}, "'name'"),                                  # missing
    ((), {"ports": ()}, "'name'"),                       # missing, another given
    (("a", (), None, [], "extra"), {}, "positional"),    # too many
    (("a",), {"name": "b"}, "'name'"),                   # twice
    ((), {"name": "a", "colour": "red"}, "'colour'"),    # unknown
]


def test_construction_matches_dataclass_for_every_way_of_calling():
    for args, kwargs in CALLS:
        shared, generated = Shared(*args, **kwargs), Generated(*args, **kwargs)  # type: ignore[arg-type]
        assert dataclasses.astuple(shared) == dataclasses.astuple(generated)
        assert repr(shared) == repr(generated).replace("Generated(", "Shared(", 1)


def test_a_wrong_call_is_the_same_type_error_naming_the_argument():
    for args, kwargs, named in BAD_CALLS:
        with pytest.raises(TypeError):
            Generated(*args, **kwargs)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=named) as caught:
            Shared(*args, **kwargs)  # type: ignore[arg-type]
        assert "Shared.__init__()" in str(caught.value)


def test_a_default_factory_gives_each_instance_its_own_value():
    one, two = Shared("a"), Shared("b")
    assert one.tags == [] and one.tags is not two.tags


def test_post_init_runs_after_the_fields_are_set():
    assert Checked(1, 2).high == 2
    with pytest.raises(ValueError, match="low > high"):
        Checked(low=3, high=2)


def test_equality_hash_and_repr_are_what_dataclass_would_generate():
    args = [("a",), ("a", (1, 2)), ("a", (1, 2), "x"), ("b", (), "x")]
    for one in args:
        for two in args:
            assert (Other(*one) == Other(*two)) == (GeneratedOther(*one) == GeneratedOther(*two))  # type: ignore[arg-type]
        assert hash(Other(*one)) == hash(GeneratedOther(*one))  # type: ignore[arg-type]
        assert repr(Other(*one)) == repr(GeneratedOther(*one)).replace("GeneratedOther(", "Other(", 1)  # type: ignore[arg-type]
    assert Shared("a") != Other("a") and Other("a") != ("a", (), None)  # another class is never equal


def test_a_view_stays_frozen():
    view = Shared("a")
    with pytest.raises(dataclasses.FrozenInstanceError):
        view.name = "b"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del view.name  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        view.anything_else = 1  # type: ignore[attr-defined]
    assert view.name == "a"


def test_dataclass_functions_copy_and_pickle_work_on_a_view():
    view = Shared("a", (1,), "n", ["t"])
    assert dataclasses.is_dataclass(view) and [f.name for f in dataclasses.fields(view)] == [
        "name", "ports", "note", "tags"]
    assert dataclasses.asdict(view) == {"name": "a", "ports": (1,), "note": "n", "tags": ["t"]}
    changed = dataclasses.replace(view, note="m")
    assert changed == Shared("a", (1,), "m", ["t"]) and view.note == "n"
    assert copy.copy(view) == view and copy.deepcopy(view) == view
    assert pickle.loads(pickle.dumps(view)) == view


def test_the_decoder_builds_views_and_refuses_what_they_do_not_know():
    view = Shared("a", (1, 2), None, ["t"])
    assert decode(Shared, encode(view)) == view
    assert decode(Shared, {"name": "a"}) == Shared("a")


def test_a_view_with_an_init_false_field_is_refused_when_declared():
    with pytest.raises(TypeError, match="init fields"):
        class Hidden(View):  # declaring it is the test
            name: str
            cache: str = dataclasses.field(default="", init=False)


def test_a_required_field_after_a_defaulted_one_is_refused_when_declared():
    with pytest.raises(TypeError, match="non-default argument 'port' follows default argument"):
        class Misordered(View):  # declaring it is the test
            name: str = ""
            port: int  # type: ignore[misc]


def test_a_view_that_writes_its_own_init_is_refused_when_declared():
    with pytest.raises(TypeError, match="__post_init__"):
        class Custom(View):  # declaring it is the test
            name: str

            def __init__(self, name: str) -> None:
                object.__setattr__(self, "name", name.strip())


def _own_dataclasses(module):
    return [c for c in vars(module).values() if isinstance(c, type) and dataclasses.is_dataclass(c)
            and c.__module__ == module.__name__]


@pytest.mark.parametrize("module", [snapshot, tray, remote_records], ids=lambda m: m.__name__)
def test_every_snapshot_dataclass_is_a_view(module):
    classes = _own_dataclasses(module)
    assert classes and all(issubclass(cls, View) for cls in classes)


def test_no_dataclass_in_loopctl_is_declared_frozen_it_is_a_view_instead():
    """A frozen dataclass compiles six methods as its module is imported (the console's first frame,
    `--once`, the engine's start pay for it); a View compiles none."""
    import console

    views = []
    for info in pkgutil.walk_packages(console.__path__, "console."):
        if info.name.endswith("__main__"):  # importing it runs loopctl
            continue
        module = importlib.import_module(info.name)
        for cls in _own_dataclasses(module):
            name = f"{cls.__module__}.{cls.__name__}"
            assert not cls.__dataclass_params__.frozen, f"{name} is @dataclass(frozen=True): make it a View"
            if issubclass(cls, View):
                views.append(cls)
                generated = {"__eq__", "__repr__", "__hash__", "__setattr__", "__delattr__"} & set(vars(cls))
                assert not generated, f"{name} generates {generated}"
                assert cls.__init__.__code__ is Shared.__init__.__code__, f"{name} has an __init__ of its own"
    assert len(views) > 40


def test_mypy_checks_a_view_as_a_frozen_dataclass(tmp_path: Path):
    """Frozenness is also static: mypy sees the constructor's signature and refuses assignment."""
    probe = tmp_path / "probe.py"
    probe.write_text(textwrap.dedent("""
        import dataclasses
        from console.core.records import View

        class P(View):
            name: str
            n: int = 0

        p = P("a", 2)
        p.name = "b"
        P(n="x")
        q: P = dataclasses.replace(p, n=3)
    """))
    result = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(probe)],
                            capture_output=True, text=True, check=False, cwd=Path(__file__).resolve().parents[2])
    lines = [line.split(": error: ", 1)[1] for line in result.stdout.splitlines() if ": error: " in line]
    assert len(lines) == 3, result.stdout
    assert "read-only" in lines[0]
    assert 'Missing positional argument "name"' in lines[1]
    assert 'incompatible type "str"; expected "int"' in lines[2]
