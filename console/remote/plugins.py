"""Hash-pinned plugins: download, verify the sha256 before anything is unpacked, unpack safely,
install atomically under `<state>/plugins/<name>/<version>/`, and reconcile declared vs installed.

An install is the rename of a complete staging directory carrying its record
(`.loopctl-plugin.json`); a directory without a matching record is not an install and is removed.
Reconcile is idempotent: a second run with the same declaration changes nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
import shutil
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import TypeVar

from console.core.atomic import atomic_write_json, fsync_dir
from console.core.clock import Clock
from console.core.config import HostConfig, LoopConfig, PluginConfig, SidecarConfig
from console.core.records import View, field, replace
from console.core.store import Store
from console.remote.plugin_error import PluginError

log = logging.getLogger("loopctl.plugins")

KIND = "plugin"
RECORD = ".loopctl-plugin.json"
MANIFEST = "plugin.json"  # optional, inside the artifact: {"name", "version"} must match the declaration
STAGING = ".staging"
ARTIFACT_CAP = 256 * 1024 * 1024
DIR_VARIABLE = "LOOPCTL_PLUGIN_DIR"

# fetch(url, destination file, byte cap) -> None; raises PluginError("plugin_install_failed", ...)
Fetch = Callable[[str, Path, int], Awaitable[None]]


def install_dir(root: Path, name: str, version: str) -> Path:
    return root / name / version


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# -- what is installed ------------------------------------------------------------------------------


class Installed(View, frozen=True):
    name: str
    version: str
    sha256: str  # "" when the directory has no valid record (not a complete install)


def installed(root: Path) -> list[Installed]:
    found: list[Installed] = []
    if not root.is_dir():
        return found
    for name_dir in sorted(root.iterdir()):
        if name_dir.name.startswith(".") or not name_dir.is_dir() or name_dir.is_symlink():
            continue
        for version_dir in sorted(name_dir.iterdir()):
            if version_dir.name.startswith(".") or not version_dir.is_dir():
                continue
            found.append(Installed(name_dir.name, version_dir.name, _record_hash(version_dir)))
    return found


def _record_hash(directory: Path) -> str:
    try:
        record = json.loads((directory / RECORD).read_text())
    except (OSError, ValueError):
        return ""
    value = record.get("sha256") if isinstance(record, dict) else None
    return value if isinstance(value, str) else ""


def is_installed(root: Path, plugin: PluginConfig) -> bool:
    return _record_hash(install_dir(root, plugin.name, plugin.version)) == plugin.sha256


# -- reconcile, decided purely -------------------------------------------------------------------------


class Plan(View, frozen=True):
    install: list[PluginConfig] = field(default_factory=list)
    remove: list[Installed] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.install and not self.remove


def plan(declared: Iterable[PluginConfig], present: Iterable[Installed],
         keep: Iterable[PluginConfig] = ()) -> Plan:
    """Install what is declared and not installed with its pinned hash; remove every install that
    is neither declared nor kept (a rollback target's plugins are kept while it may be needed)."""
    declared = list(declared)
    wanted = {(p.name, p.version): p.sha256 for p in [*declared, *keep]}
    have = {(i.name, i.version): i.sha256 for i in present}
    install = [p for p in declared if have.get((p.name, p.version)) != p.sha256]
    remove = [i for i in present if (i.name, i.version) not in wanted or not i.sha256]
    return Plan(install=install, remove=[i for i in remove if (i.name, i.version) not in
                                         {(p.name, p.version) for p in install}])


def check_manifest(directory: Path, plugin: PluginConfig) -> None:
    path = directory / MANIFEST
    if not path.exists():
        return
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise PluginError("bundled_version_mismatch",
                          f"plugin {plugin.name}: its {MANIFEST} is unreadable ({exc})") from None
    if not isinstance(manifest, dict):
        raise PluginError("bundled_version_mismatch", f"plugin {plugin.name}: its {MANIFEST} is not an object")
    name, version = manifest.get("name", plugin.name), manifest.get("version", plugin.version)
    if (name, version) != (plugin.name, plugin.version):
        raise PluginError("bundled_version_mismatch",
                          f"plugin {plugin.name}: the artifact bundles {name} {version}, the config pins "
                          f"{plugin.name} {plugin.version}")


# -- the shell: files and downloads --------------------------------------------------------------------------


class Plugins:
    def __init__(self, root: Path, *, store: Store, clock: Clock, fetch: Fetch | None = None) -> None:
        self.root = root
        self.store = store
        self.clock = clock
        self.fetch = fetch

    def clear_staging(self) -> None:
        """A crash mid-install leaves only a staging directory: never an install."""
        shutil.rmtree(self.root / STAGING, ignore_errors=True)

    async def install(self, plugin: PluginConfig) -> None:
        if self.fetch is None:
            raise PluginError("plugin_install_failed", f"plugin {plugin.name}: no way to download {plugin.source} "
                                                       f"(the host has no control-plane client)")
        import asyncio  # noqa: PLC0415  (only an install needs it; `--once` imports this module too)

        staging = self.root / STAGING / f"{plugin.name}-{plugin.version}-{secrets.token_hex(4)}"
        staging.mkdir(mode=0o700, parents=True)
        artifact = staging / "artifact"
        tree = staging / "tree"
        try:
            await self.fetch(plugin.source, artifact, ARTIFACT_CAP)
            # Hashing and unpacking take seconds for a big artifact: in a thread, off the event loop.
            digest = await asyncio.to_thread(sha256_file, artifact)
            if digest != plugin.sha256:
                raise PluginError("artifact_hash_mismatch",
                                  f"plugin {plugin.name} {plugin.version}: {plugin.source} has sha256 {digest[:12]}…, "
                                  f"the config pins {plugin.sha256[:12]}…: nothing was installed")
            from console.remote.archives import unpack  # noqa: PLC0415  (tar and zip load only to install)

            await asyncio.to_thread(unpack, artifact, tree)  # a fresh tree, put in place by one rename
            artifact.unlink()  # the download no longer counts against the disk while the tree is placed
            check_manifest(tree, plugin)
            atomic_write_json(tree / RECORD, {"name": plugin.name, "version": plugin.version, "sha256": digest,
                                              "source": plugin.source, "installed_at": self.clock.time()})
            os.chmod(tree, 0o755)
            self._put_in_place(tree, plugin)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self.store.transition(KIND, plugin.name, "installed", f"{plugin.version} installed (sha256 "
                              f"{plugin.sha256[:12]}…)", {"version": plugin.version, "sha256": plugin.sha256})

    def _put_in_place(self, tree: Path, plugin: PluginConfig) -> None:
        target = install_dir(self.root, plugin.name, plugin.version)
        target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        if target.exists():  # same version, other bytes: the old one goes aside first, in one rename
            self._discard(target)
        os.rename(tree, target)
        fsync_dir(target.parent)

    def _discard(self, directory: Path) -> None:
        trash = self.root / STAGING / f"removed-{secrets.token_hex(4)}"
        trash.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.rename(directory, trash)
        shutil.rmtree(trash, ignore_errors=True)

    def remove(self, item: Installed) -> None:
        directory = install_dir(self.root, item.name, item.version)
        self._discard(directory)
        with contextlib.suppress(OSError):
            directory.parent.rmdir()  # the name directory, once its last version is gone
        still = [i.version for i in installed(self.root) if i.name == item.name]
        self.store.transition(KIND, item.name, "installed" if still else "removed",
                              f"{item.version} removed: no longer declared" + (
                                  f" ({', '.join(still)} still installed)" if still else ""),
                              {"version": still[-1] if still else item.version})

    async def install_declared(self, declared: Iterable[PluginConfig]) -> list[PluginConfig]:
        """Additive: what the declaration needs, nothing removed (the running config may use it)."""
        self.root.mkdir(mode=0o755, parents=True, exist_ok=True)
        todo = plan(declared, installed(self.root), keep=declared).install
        for plugin in todo:
            try:
                await self.install(plugin)
            except PluginError as exc:
                self.store.transition(KIND, plugin.name, "failed", exc.message,
                                      {"version": plugin.version, "code": exc.code})
                raise
            except OSError as exc:
                message = f"plugin {plugin.name} {plugin.version}: cannot install ({exc.strerror or exc})"
                self.store.transition(KIND, plugin.name, "failed", message,
                                      {"version": plugin.version, "code": "plugin_install_failed"})
                raise PluginError("plugin_install_failed", message) from None
        return todo

    async def reconcile(self, declared: Iterable[PluginConfig], keep: Iterable[PluginConfig] = ()) -> Plan:
        """Declared vs installed: install the missing, remove the undeclared. Idempotent."""
        declared = list(declared)
        self.clear_staging()
        added = await self.install_declared(declared)
        removed = plan(declared, installed(self.root), keep).remove
        for item in removed:
            self.remove(item)
        return Plan(install=added, remove=removed)


# -- how plugins show in the effective config ---------------------------------------------------------------


Placed = TypeVar("Placed", SidecarConfig, LoopConfig)


def resolve(config: HostConfig, root: Path) -> HostConfig:
    """Sidecars and loops that name a plugin run in its install directory, with its path in
    LOOPCTL_PLUGIN_DIR (an explicit cwd in the config wins)."""
    pins = {p.name: install_dir(root, p.name, p.version) for p in config.plugin}

    def place(item: Placed) -> Placed:
        if not item.plugin or item.plugin not in pins:
            return item
        where = str(pins[item.plugin])
        return replace(item, cwd=item.cwd or where, env={DIR_VARIABLE: where, **item.env})

    return replace(config, sidecar=[place(s) for s in config.sidecar], loop=[place(lp) for lp in config.loop])


def missing_programs(config: HostConfig, root: Path) -> str | None:
    """Full validation, after install: a plugin a sidecar or loop names is installed at its pin, and a
    relative program path inside it exists and is executable. None when all is well."""
    pins = {p.name: p for p in config.plugin}
    items: list[tuple[str, int, SidecarConfig | LoopConfig]] = [
        *(("sidecar", i, s) for i, s in enumerate(config.sidecar)),
        *(("loop", i, lp) for i, lp in enumerate(config.loop)),
    ]
    for section, index, item in items:
        if not item.plugin:
            continue
        plugin = pins[item.plugin]
        if not is_installed(root, plugin):
            return f"{section}[{index}].plugin: {plugin.name} {plugin.version} is not installed"
        program = item.command[0]
        if "/" in program and not os.path.isabs(program):
            path = Path(item.cwd or install_dir(root, plugin.name, plugin.version)) / program
            if not path.is_file() or not os.access(path, os.X_OK):
                return (f"{section}[{index}].command: {program!r} is not an executable file in plugin "
                        f"{plugin.name} {plugin.version}")
    return None
