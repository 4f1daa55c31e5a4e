import os
import signal
import stat
import subprocess
import sys
import textwrap
import time

import pytest

from console.core.atomic import atomic_write, atomic_write_json


def test_atomic_write_replaces_content_and_leaves_no_temp_files(tmp_path):
    target = tmp_path / "file.json"
    atomic_write_json(target, {"a": 1})
    atomic_write_json(target, {"a": 2})
    assert target.read_text().strip().endswith("}")
    assert '"a": 2' in target.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.json"]


def test_secret_mode_is_set_before_content_is_written(tmp_path):
    target = tmp_path / "token"
    atomic_write(target, b"secret", mode=0o600)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_failed_write_keeps_the_old_content_and_removes_the_temp_file(tmp_path, monkeypatch):
    target = tmp_path / "state.json"
    atomic_write(target, b"old")

    def refuse(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError):
        atomic_write(target, b"new")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_a_writer_killed_mid_stream_never_leaves_a_torn_file(tmp_path):
    """A real writer process rewrites a 1 MiB file in a loop; a reader checks every version it
    sees is whole; then the writer is SIGKILLed and the file is still whole."""
    target = tmp_path / "big"
    writer = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        from pathlib import Path
        from console.core.atomic import atomic_write
        target = Path({str(target)!r})
        i = 0
        while True:
            atomic_write(target, bytes([65 + i % 2]) * (1 << 20))
            i += 1
    """)])
    try:
        deadline = time.monotonic() + 1.5
        seen = set()
        while time.monotonic() < deadline:
            try:
                data = target.read_bytes()
            except FileNotFoundError:
                continue
            assert len(data) == 1 << 20
            assert data in (b"A" * (1 << 20), b"B" * (1 << 20))
            seen.add(data[:1])
        assert seen, "the writer never produced a file"
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    data = target.read_bytes()
    assert data in (b"A" * (1 << 20), b"B" * (1 << 20))
