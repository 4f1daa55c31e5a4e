"""Unpacking a plugin artifact safely: every member of the tar or zip is checked before the first
byte is written (no absolute paths, no '..', no links out of the plugin's directory, no devices).
Loaded only when a plugin is installed: tarfile and zipfile cost a start that installs nothing."""

from __future__ import annotations

import os
import posixpath
import stat
import tarfile
import zipfile
from pathlib import Path

from console.remote.plugin_error import PluginError


def _safe_name(name: str) -> str | None:
    """Why a member name is refused, or None."""
    if name.startswith("/") or name.startswith("\\") or (len(name) > 1 and name[1] == ":"):
        return "an absolute path"
    parts = name.replace("\\", "/").split("/")
    if ".." in parts:
        return "a '..' component"
    return None


def _inside(base: str, target: str) -> bool:
    joined = posixpath.normpath(posixpath.join(base, target))
    return joined != ".." and not joined.startswith("../") and not posixpath.isabs(joined)


def check_tar(archive: tarfile.TarFile) -> None:
    for member in archive.getmembers():
        why = _safe_name(member.name)
        if why:
            raise PluginError("plugin_install_failed", f"artifact member {member.name!r} is {why}: refused")
        if member.issym():
            where = posixpath.dirname(member.name)
            if posixpath.isabs(member.linkname) or not _inside(where, member.linkname):
                raise PluginError("plugin_install_failed",
                                  f"artifact link {member.name!r} -> {member.linkname!r} escapes the plugin directory")
        elif member.islnk():
            if _safe_name(member.linkname) or not _inside("", member.linkname):
                raise PluginError("plugin_install_failed",
                                  f"artifact hard link {member.name!r} -> {member.linkname!r} escapes the plugin "
                                  f"directory")
        elif not (member.isfile() or member.isdir()):
            raise PluginError("plugin_install_failed", f"artifact member {member.name!r} is a device or fifo: refused")


def check_zip(archive: zipfile.ZipFile) -> None:
    for info in archive.infolist():
        why = _safe_name(info.filename)
        if why:
            raise PluginError("plugin_install_failed", f"artifact member {info.filename!r} is {why}: refused")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise PluginError("plugin_install_failed", f"artifact member {info.filename!r} is a link: zip artifacts "
                                                       f"may not carry links (use a tar)")


def _extract_as_data(archive: tarfile.TarFile, destination: Path) -> None:
    """What the 'data' filter does, for a Python without extraction filters (3.11.0 to 3.11.3, such as
    Debian 12's 3.11.2): no owner, times or special bits from the archive, files 0644 or 0755."""
    for member in archive.getmembers():
        archive.extract(member, destination, set_attrs=False)
        if member.isfile():
            os.chmod(destination / member.name, 0o755 if member.mode & 0o100 else 0o644)


def unpack(artifact: Path, destination: Path) -> None:
    """Every member is checked before the first byte is written; tar extraction also runs under
    Python's 'data' filter as a second guard."""
    destination.mkdir(mode=0o755, parents=True, exist_ok=True)
    try:
        if zipfile.is_zipfile(artifact):
            with zipfile.ZipFile(artifact) as zipped:
                check_zip(zipped)
                zipped.extractall(destination)
            return
        with tarfile.open(artifact, "r:*") as archive:
            check_tar(archive)
            if hasattr(tarfile, "data_filter"):
                archive.extractall(destination, filter="data")
            else:
                _extract_as_data(archive, destination)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError) as exc:
        raise PluginError("plugin_install_failed", f"artifact is not a readable tar or zip ({exc})") from None
