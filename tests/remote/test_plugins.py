"""Hash-pinned plugins over real HTTP on loopback: verify before unpack, unpack safely, install
atomically, reconcile idempotently."""

from __future__ import annotations

import hashlib
import os

import pytest

from console.controlplane.artifacts import ArtifactFetcher
from console.core.config import HostConfig, PluginConfig, SidecarConfig
from console.core.fake_clock import FakeClock
from console.core.store import Store
from console.remote.plugins import (
    DIR_VARIABLE,
    RECORD,
    STAGING,
    PluginError,
    Plugins,
    installed,
    missing_programs,
    plan,
    resolve,
)
from tests.conftest import make_artifact

TOOL = b"#!/bin/sh\necho tool\n"


@pytest.fixture
async def rig(tmp_path, artifact_server):
    base, served = artifact_server
    clock = FakeClock()
    store = Store.open(tmp_path / "loopctl.db", clock)
    fetcher = ArtifactFetcher(deadline=10)
    plugins = Plugins(tmp_path / "plugins", store=store, clock=clock, fetch=fetcher)

    def publish(name: str, data: bytes, version: str = "1.0", pin: str | None = None) -> PluginConfig:
        (served / f"{name}-{version}.tgz").write_bytes(data)
        return PluginConfig(name=name, version=version, source=f"{base}/{name}-{version}.tgz",
                            artifact_hash=pin or hashlib.sha256(data).hexdigest())

    plugins.publish = publish  # type: ignore[attr-defined]
    yield plugins
    await fetcher.aclose()
    store.close()


def tree(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


async def test_install_verifies_then_installs_atomically_with_its_record(rig):
    plugin = rig.publish("tool", make_artifact({"bin/tool": TOOL, "README": b"hi"}))
    await rig.install_declared([plugin])
    where = rig.root / "tool" / "1.0"
    assert (where / "bin" / "tool").read_bytes() == TOOL
    assert os.access(where / "bin" / "tool", os.X_OK)
    assert (where / RECORD).exists()
    assert installed(rig.root)[0].sha256 == plugin.sha256
    assert not list((rig.root / STAGING).iterdir())
    assert rig.store.thing("plugin", "tool").state == "installed"


async def test_a_hash_mismatch_installs_nothing(rig):
    plugin = rig.publish("tool", make_artifact({"bin/tool": TOOL}), pin="0" * 64)
    with pytest.raises(PluginError) as info:
        await rig.install_declared([plugin])
    assert info.value.code == "artifact_hash_mismatch" and "nothing was installed" in info.value.message
    assert [p for p in tree(rig.root) if not p.startswith(STAGING)] == []
    assert rig.store.thing("plugin", "tool").state == "failed"


@pytest.mark.parametrize(("members", "why"), [
    ({"/etc/evil": b"x"}, "an absolute path"),
    ({"bin/../../evil": b"x"}, r"a '\.\.' component"),
    ({"ok": b"x", "esc": ("symlink", "../../../etc/passwd")}, "escapes the plugin directory"),
    ({"abs": ("symlink", "/etc/passwd")}, "escapes the plugin directory"),
    ({"ok": b"x", "hard": ("hardlink", "../outside")}, "escapes the plugin directory"),
])
async def test_unsafe_archives_are_refused_before_anything_is_written(rig, tmp_path, members, why):
    plugin = rig.publish("evil", make_artifact(members))
    with pytest.raises(PluginError, match=why) as info:
        await rig.install_declared([plugin])
    assert info.value.code == "plugin_install_failed"
    assert not (rig.root / "evil").exists()
    assert not (tmp_path / "evil").exists() and not (tmp_path / "outside").exists()


async def test_zip_artifacts_install_and_zip_traversal_is_refused(rig):
    good = rig.publish("zipped", make_artifact({"bin/tool": TOOL}, kind="zip"))
    await rig.install_declared([good])
    assert (rig.root / "zipped" / "1.0" / "bin" / "tool").exists()
    bad = rig.publish("zipbad", make_artifact({"../../x": b"x"}, kind="zip"))
    with pytest.raises(PluginError, match=r"'\.\.' component"):
        await rig.install_declared([bad])


async def test_a_bundle_of_another_version_is_refused(rig):
    plugin = rig.publish("tool", make_artifact({"plugin.json": b'{"name": "tool", "version": "2.0"}'}))
    with pytest.raises(PluginError) as info:
        await rig.install_declared([plugin])
    assert info.value.code == "bundled_version_mismatch" and "bundles tool 2.0" in info.value.message
    assert not (rig.root / "tool").exists()


async def test_download_errors_are_clear(rig):
    missing = PluginConfig(name="ghost", version="1.0", source=rig.publish("x", b"x").source.replace("x-1.0", "nope"),
                           artifact_hash="0" * 64)
    with pytest.raises(PluginError, match="HTTP 404") as info:
        await rig.install_declared([missing])
    assert info.value.code == "plugin_install_failed"


async def test_reconcile_installs_removes_and_is_idempotent(rig):
    one = rig.publish("one", make_artifact({"a": b"1"}))
    two = rig.publish("two", make_artifact({"b": b"2"}))
    two_new = rig.publish("two", make_artifact({"b": b"2.1"}), version="1.1")
    first = await rig.reconcile([one, two])
    assert [p.name for p in first.install] == ["one", "two"] and first.remove == []
    again = await rig.reconcile([one, two])
    assert again.empty
    moved = await rig.reconcile([two_new])
    assert [p.version for p in moved.install] == ["1.1"]
    assert sorted((i.name, i.version) for i in moved.remove) == [("one", "1.0"), ("two", "1.0")]
    assert [(i.name, i.version) for i in installed(rig.root)] == [("two", "1.1")]
    assert rig.store.thing("plugin", "one").state == "removed"
    assert (await rig.reconcile([two_new])).empty


async def test_a_half_install_is_never_taken_for_an_install(rig):
    plugin = rig.publish("tool", make_artifact({"bin/tool": TOOL}))
    (rig.root / "tool" / "1.0").mkdir(parents=True)  # a directory without its record
    (rig.root / STAGING / "tool-1.0-dead").mkdir(parents=True)  # what a crash mid-unpack leaves
    assert plan([plugin], installed(rig.root)).install == [plugin]
    await rig.reconcile([plugin])
    assert installed(rig.root)[0].sha256 == plugin.sha256
    assert not list((rig.root / STAGING).iterdir())


def test_sidecars_naming_a_plugin_run_in_it_and_full_validation_checks_the_program(tmp_path):
    plugin = PluginConfig(name="tool", version="1.0", source="http://x/t.tgz", artifact_hash="a" * 64)
    config = HostConfig(plugin=[plugin], sidecar=[SidecarConfig(name="svc", command=["bin/tool"], plugin="tool")])
    resolved = resolve(config, tmp_path)
    assert resolved.sidecar[0].cwd == str(tmp_path / "tool" / "1.0")
    assert resolved.sidecar[0].env[DIR_VARIABLE] == str(tmp_path / "tool" / "1.0")
    assert missing_programs(resolved, tmp_path) == "sidecar[0].plugin: tool 1.0 is not installed"
    where = tmp_path / "tool" / "1.0"
    (where / "bin").mkdir(parents=True)
    (where / RECORD).write_text(f'{{"sha256": "{"a" * 64}"}}')
    assert "is not an executable file in plugin tool 1.0" in missing_programs(resolved, tmp_path)
    (where / "bin" / "tool").write_bytes(TOOL)
    (where / "bin" / "tool").chmod(0o755)
    assert missing_programs(resolved, tmp_path) is None


async def test_hashing_and_unpacking_run_off_the_event_loop(rig, monkeypatch):
    """A big artifact hashes and unpacks for seconds: meanwhile the engine still answers `--once`."""
    import threading

    from console.remote import archives, plugins

    seen: dict[str, str] = {}
    real_unpack, real_hash = archives.unpack, plugins.sha256_file

    def unpack(*args):
        seen["unpack"] = threading.current_thread().name
        return real_unpack(*args)

    def sha256_file(path):
        seen["hash"] = threading.current_thread().name
        return real_hash(path)

    monkeypatch.setattr(archives, "unpack", unpack)
    monkeypatch.setattr(plugins, "sha256_file", sha256_file)
    await rig.install_declared([rig.publish("tool", make_artifact({"bin/tool": TOOL}))])
    main = threading.main_thread().name
    assert seen["unpack"] != main and seen["hash"] != main, seen
    assert (rig.root / "tool" / "1.0" / "bin" / "tool").exists()
