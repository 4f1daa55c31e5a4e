"""Artifact unpacking loads only when a plugin is installed (its safety is tested through the
installs in test_plugins.py: absolute paths, '..', escaping links, devices)."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_the_engine_stack_starts_without_tar_or_zip():
    probe = textwrap.dedent("""
        import sys
        import console.engine.owner, console.engine.plugins
        print(sorted(m for m in ("tarfile", "zipfile", "console.engine.archives") if m in sys.modules))
    """)
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=30, check=True)
    assert result.stdout.strip() == "[]"
