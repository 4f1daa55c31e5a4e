"""Unpacking a plugin artifact safely: every member of the tar or zip is checked before the first
byte is written (no absolute paths, no '..', no links out of the plugin's directory, no devices, no
path through a link, at most MAX_MEMBERS members and MAX_UNPACKED_BYTES bytes unpacked). A refusal
is `archive_unsafe` naming the member. The same checks hold on every supported Python, whether or
not tarfile has extraction filters (3.11.4+), so the 3.11.0-3.11.3 fallback is as safe.
Loaded only when a plugin is installed: tarfile and zipfile cost a start that installs nothing."""

from __future__ import annotations

import os
import posixpath
import stat
import tarfile
import zipfile
from pathlib import Path

from console.remote.plugin_error import PluginError

# Documented defaults (README, 'Plugins'): a plugin is a tool, not a data set.
MAX_MEMBERS = 10_000
MAX_UNPACKED_BYTES = 512 * 1024 * 1024
UNSAFE = "archive_unsafe"


def _refuse(member: str, why: str) -> PluginError:
    return PluginError("plugin_install_failed", f"{UNSAFE}: artifact member {member!r} {why}: refused")


def _normal(name: str) -> str:
    return posixpath.normpath(name.replace("\\", "/")).lstrip("/")


def _prefixes(path: str) -> list[str]:
    """`a/b/c` -> [`a`, `a/b`]: the directories a path goes through."""
    parts = path.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def check_totals(names: list[tuple[str, int]]) -> None:
    """(member name, unpacked size) for every member: the count and the total under their caps."""
    if len(names) > MAX_MEMBERS:
        raise _refuse(names[MAX_MEMBERS][0], f"is past the {MAX_MEMBERS}-member cap")
    total = 0
    for name, size in names:
        total += max(0, size)
        if total > MAX_UNPACKED_BYTES:
            raise _refuse(name, f"takes the unpacked size past the {MAX_UNPACKED_BYTES}-byte cap")


def check_links_crossed(members: list[tuple[str, str | None, bool]]) -> None:
    """(name, link target or None, whether a hard link) for every member: no member's path, and no
    link's target, may go through a member that is a symlink. A chain `a/b -> ..`, `a/b/c -> ..`,
    `a/b/c/evil` is harmless member by member, as text, and together writes outside the directory."""
    links = {_normal(name) for name, target, hard in members if target is not None and not hard}
    for name, target, hard in members:
        path = _normal(name)
        through = next((p for p in _prefixes(path) if p in links), None)
        if through is not None:
            raise _refuse(name, f"goes through the link {through!r}")
        if target is not None:  # a hard link names its target from the root, a symlink from its directory
            resolved = _normal(target if hard else posixpath.join(posixpath.dirname(path), target))
            through = next((p for p in [*_prefixes(resolved), resolved] if p in links and p != path), None)
            if through is not None:
                raise _refuse(name, f"points through the link {through!r}")


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
    members = []
    for member in archive:  # iterating reads headers one by one: a member past the cap stops the read
        members.append(member)
        if len(members) > MAX_MEMBERS:
            raise _refuse(member.name, f"is past the {MAX_MEMBERS}-member cap")
    for member in members:
        why = _safe_name(member.name)
        if why:
            raise _refuse(member.name, f"is {why}")
        if member.issym():
            where = posixpath.dirname(member.name)
            if posixpath.isabs(member.linkname) or not _inside(where, member.linkname):
                raise _refuse(member.name, f"is a link to {member.linkname!r}: it escapes the plugin directory")
        elif member.islnk():
            if _safe_name(member.linkname) or not _inside("", member.linkname):
                raise _refuse(member.name, f"is a hard link to {member.linkname!r}: it escapes the plugin directory")
        elif member.issparse():
            raise _refuse(member.name, "is a sparse file (its unpacked size is not its recorded size)")
        elif not (member.isfile() or member.isdir()):
            raise _refuse(member.name, "is a device or fifo")
    check_totals([(m.name, m.size if m.isfile() else 0) for m in members])
    check_links_crossed([(m.name, m.linkname if m.issym() or m.islnk() else None, m.islnk()) for m in members])


def check_zip(archive: zipfile.ZipFile) -> None:
    infos = archive.infolist()
    for info in infos:
        why = _safe_name(info.filename)
        if why:
            raise _refuse(info.filename, f"is {why}")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise _refuse(info.filename, "is a link: zip artifacts may not carry links (use a tar)")
    # zipfile reads no more than a member's declared size (and checks its CRC), so these bound the writes.
    check_totals([(info.filename, info.file_size) for info in infos])


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
