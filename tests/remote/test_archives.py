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
