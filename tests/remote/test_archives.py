"""Artifact unpacking loads only when a plugin is installed (its safety is tested through the
installs in test_plugins.py: absolute paths, '..', escaping links, devices)."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_the_engine_stack_starts_without_tar_or_zip():
    probe = textwrap.dedent("""
        import sys
        import console.host.owner, console.remote.plugins
        print(sorted(m for m in ("tarfile", "zipfile", "console.remote.archives") if m in sys.modules))
    """)
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=30, check=True)
    assert result.stdout.strip() == "[]"


def _tar(path, members):
    import io
    import tarfile

    with tarfile.open(path, "w:gz") as tar:
        for name, mode, data in members:
            info = tarfile.TarInfo(name)
            info.mode, info.size, info.uid, info.gid, info.uname = mode, len(data), 4242, 4242, "someone"
            tar.addfile(info, io.BytesIO(data))


def test_a_python_without_tar_filters_unpacks_as_the_data_filter_would(tmp_path, monkeypatch):
    """Debian 12's Python 3.11.2 predates `extractall(filter=...)`: unpacking there raised TypeError and
    no plugin could install. Without the filter, loopctl takes no owner and no special bits from the
    archive, as the filter does."""
    import os
    import tarfile

    from console.remote.archives import unpack

    artifact = tmp_path / "p.tar.gz"
    _tar(artifact, [("bin/tool", 0o4777, b"#!/bin/sh\necho hi\n"), ("README", 0o666, b"read me\n")])
    for name, has_filter in (("with", True), ("without", False)):
        if not has_filter:
            monkeypatch.delattr(tarfile, "data_filter", raising=False)  # absent before 3.11.4
        unpack(artifact, tmp_path / name)
        tool, readme = tmp_path / name / "bin" / "tool", tmp_path / name / "README"
        assert tool.read_bytes() == b"#!/bin/sh\necho hi\n" and readme.read_bytes() == b"read me\n"
        assert (tool.stat().st_mode & 0o7777, readme.stat().st_mode & 0o7777) == (0o755, 0o644), name
        assert tool.stat().st_uid == os.getuid()  # never the archive's 4242


def _links(path, members):
    """A tar of (name, link target or None, data) members: symlinks where a target is given."""
    import io
    import tarfile

    with tarfile.open(path, "w") as tar:
        for name, target, data in members:
            info = tarfile.TarInfo(name)
            if target is not None:
                info.type, info.linkname = tarfile.SYMTYPE, target
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


def _both_ways(monkeypatch):
    """Each check runs with tarfile's data filter where this Python has it, and without (as 3.11.0-3.11.3)."""
    import tarfile

    yield "as this Python extracts"
    monkeypatch.delattr(tarfile, "data_filter", raising=False)
    yield "without extraction filters"


def test_a_symlink_chain_cannot_write_outside_the_plugin_directory(tmp_path, monkeypatch):
    """Each member looks harmless as text: `a/b -> ..` stays inside, `a/b/c -> ..` too, and then
    `a/b/c/evil.txt` lands above the destination through both links. The fallback extractor of
    Python 3.11.0-3.11.3 wrote it there; now any path through a link is refused, on every Python."""
    import pytest

    from console.remote.archives import unpack
    from console.remote.plugins import PluginError

    artifact = tmp_path / "chain.tar"
    _links(artifact, [("a/b", "..", b""), ("a/b/c", "..", b""), ("a/b/c/evil.txt", None, b"pwned\n")])
    for way in _both_ways(monkeypatch):
        destination = tmp_path / "deep" / "plugin"
        with pytest.raises(PluginError) as info:
            unpack(artifact, destination)
        assert info.value.message == "archive_unsafe: artifact member 'a/b/c' goes through the link 'a/b': refused", way
        assert not (tmp_path / "deep" / "evil.txt").exists() and not (tmp_path / "evil.txt").exists(), way
        assert list(destination.iterdir()) == [], way  # refused before the first byte


def test_links_that_point_through_links_are_refused_and_plain_ones_kept(tmp_path, monkeypatch):
    import pytest

    from console.remote.archives import unpack
    from console.remote.plugins import PluginError

    through = tmp_path / "through.tar"
    _links(through, [("lib", "real", b""), ("real/x", None, b"x"), ("alias", "lib/x", b"")])
    fine = tmp_path / "fine.tar"
    _links(fine, [("real/x", None, b"x"), ("bin/tool", "../real/x", b"")])
    for way in _both_ways(monkeypatch):
        with pytest.raises(PluginError, match=r"'alias' points through the link 'lib'"):
            unpack(through, tmp_path / f"t-{len(way)}")
        unpack(fine, tmp_path / f"f-{len(way)}")
        assert (tmp_path / f"f-{len(way)}" / "bin" / "tool").read_bytes() == b"x", way


def test_member_count_and_unpacked_size_are_capped(tmp_path, monkeypatch):
    """A small, correctly pinned archive that unpacks to far more: refused by the declared sizes,
    before anything is written (caps lowered here; the defaults are 10,000 members and 512 MiB)."""
    import tarfile
    import zipfile

    import pytest

    from console.remote import archives
    from console.remote.plugins import PluginError

    assert (archives.MAX_MEMBERS, archives.MAX_UNPACKED_BYTES) == (10_000, 512 * 1024 * 1024)
    monkeypatch.setattr(archives, "MAX_MEMBERS", 20)
    monkeypatch.setattr(archives, "MAX_UNPACKED_BYTES", 1024 * 1024)
    many = tmp_path / "many.tar.gz"
    _tar(many, [(f"f{i}", 0o644, b"x") for i in range(21)])
    bomb = tmp_path / "bomb.tar.gz"
    _tar(bomb, [("small", 0o644, b"x"), ("zeros", 0o644, bytes(2 * 1024 * 1024))])
    zbomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(zbomb, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("zeros", bytes(2 * 1024 * 1024))
    assert bomb.stat().st_size < 64 * 1024 and zbomb.stat().st_size < 64 * 1024
    cases = [(many, "'f20' is past the 20-member cap"), (bomb, "'zeros' takes the unpacked size past"),
             (zbomb, "'zeros' takes the unpacked size past")]
    for artifact, said in cases:
        destination = tmp_path / f"out-{artifact.name}"
        with pytest.raises(PluginError, match=said) as info:
            archives.unpack(artifact, destination)
        assert info.value.message.startswith("archive_unsafe: ")
        assert list(destination.iterdir()) == []
    assert tarfile.is_tarfile(many)
