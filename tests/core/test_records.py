"""View: loopctl's records are frozen msgspec Structs; the verbs in console.core.records work on them."""

from __future__ import annotations

import copy
import importlib
import pickle
import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path

import msgspec
import pytest

from console.core.decode import convert
from console.core.records import FieldProblem, StrictView, View, field, field_names, replace, to_builtins
from console.readmodel import snapshot, tray
from console.remote import records as remote_records


class Shared(View, frozen=True):
    name: str
    ports: tuple[int, ...] = ()
    note: str | None = None
    tags: list[str] = field(default_factory=list)


class Checked(StrictView, frozen=True):
    checks = {"port": lambda v: None if 0 < v < 65536 else "a port from 1 to 65535"}
    port: int = 80


def test_a_view_is_a_value_equal_by_class_and_fields():
    assert Shared("a", (1,)) == Shared(name="a", ports=(1,)) and hash(Checked(1)) == hash(Checked(1))
    assert Shared("a") != Shared("b") and repr(Shared("a")) == "Shared(name='a', ports=(), note=None, tags=[])"


def test_a_default_factory_gives_each_instance_its_own_value():
    one, two = Shared("a"), Shared("b")
    assert one.tags is not two.tags


def test_a_view_stays_frozen():
    view = Shared("a")
    with pytest.raises(AttributeError):
        view.name = "b"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        view.anything_else = 1  # type: ignore[attr-defined]
    assert view.name == "a"


def test_the_verbs_replace_copy_and_pickle_work_on_a_view():
    view = Shared("a", (1,), "n", ["t"])
    assert field_names(Shared) == ("name", "ports", "note", "tags")
    assert to_builtins(view) == {"name": "a", "ports": (1,), "note": "n", "tags": ["t"]}
    changed = replace(view, note="m")
    assert changed == Shared("a", (1,), "m", ["t"]) and view.note == "n"
    assert copy.copy(view) == view and copy.deepcopy(view) == view
    assert pickle.loads(pickle.dumps(view)) == view


def test_a_view_tolerates_unknown_keys_and_a_strict_view_refuses_them():
    assert convert(Shared, {"name": "a", "from_the_future": 1}) == Shared("a")
    with pytest.raises(Exception, match="bogus: unknown key"):
        convert(Checked, {"bogus": 1})


def test_a_strict_views_checks_run_on_construction_and_on_decoding():
    with pytest.raises(FieldProblem, match="port: expected a port from 1 to 65535"):
        Checked(port=0)
    with pytest.raises(Exception, match=r"port: expected a port from 1 to 65535, got 70000"):
        convert(Checked, {"port": 70000})


def _own_records(module):
    return [c for c in vars(module).values() if isinstance(c, type) and issubclass(c, msgspec.Struct)
            and c.__module__ == module.__name__]


@pytest.mark.parametrize("module", [snapshot, tray, remote_records], ids=lambda m: m.__name__)
def test_every_snapshot_record_is_a_view(module):
    classes = _own_records(module)
    assert classes and all(issubclass(cls, View) for cls in classes)


def test_every_record_in_loopctl_is_a_frozen_view_and_no_dataclass_is_frozen():
    """Records are Views (frozen Structs); a dataclass is left only where a mutable object is meant."""
    import dataclasses

    import console

    views = []
    for info in pkgutil.walk_packages(console.__path__, "console."):
        if info.name.endswith("__main__"):  # importing it runs loopctl
            continue
        module = importlib.import_module(info.name)
        for cls in vars(module).values():
            if not isinstance(cls, type) or cls.__module__ != module.__name__:
                continue
            name = f"{cls.__module__}.{cls.__name__}"
            if dataclasses.is_dataclass(cls):
                assert not cls.__dataclass_params__.frozen, f"{name} is @dataclass(frozen=True): make it a View"
            if issubclass(cls, msgspec.Struct):
                assert issubclass(cls, View), f"{name} is a Struct but not a View"
                assert cls.__struct_config__.frozen, f"{name} is not frozen"
                views.append(cls)
    assert len(views) > 40


def test_mypy_checks_a_view_as_a_frozen_record(tmp_path: Path):
    """Frozenness is also static: mypy sees the constructor's signature and refuses assignment."""
    probe = tmp_path / "probe.py"
    probe.write_text(textwrap.dedent("""
        from console.core.records import View

        class Probe(View, frozen=True):
            name: str
            port: int = 0

        p = Probe("a", port=1)
        p.name = "b"
        Probe(port="x")
    """))
    result = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(probe)],
                            capture_output=True, text=True, check=False)
    assert 'Property "name" defined in "Probe" is read-only' in result.stdout or "read-only" in result.stdout
    assert 'Argument "port" to "Probe" has incompatible type "str"' in result.stdout
