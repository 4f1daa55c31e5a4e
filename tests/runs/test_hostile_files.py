"""Agents that put a FIFO or a /dev/zero link where the engine reads (the handoff, the output tail):
the run settles with the reason, the event loop never blocks and nothing is read without bound.

Each test keeps a watchdog: were the engine to block in `open()` on the FIFO, the watchdog opens it
for writing after a while (so the test ends instead of hanging) and the test fails on that."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.core.config import LoopConfig
from console.core.files import NotRegular, read_capped, read_tail
from console.runs.handoff import read_handoff
from tests.runs.test_scheduler import Rig, finished


@contextlib.contextmanager
def watchdog(fifo_glob: Path, pattern: str, after: float = 15.0) -> Iterator[threading.Event]:
    """Fires (and unblocks any reader) if a FIFO matching `pattern` is still there after `after` s."""
    fired, done = threading.Event(), threading.Event()

    def guard() -> None:
        if done.wait(after):
            return
        for fifo in fifo_glob.glob(pattern):
            fired.set()
            with contextlib.suppress(OSError):
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
                os.write(fd, b"{}")
                os.close(fd)

    thread = threading.Thread(target=guard, daemon=True)
    thread.start()
    try:
        yield fired
    finally:
        done.set()
        thread.join()


def shell_loop(script: str) -> LoopConfig:
    return LoopConfig(id="docs", command=["/bin/sh", "-c", script], interval_seconds=3600)


async def test_a_fifo_handoff_never_blocks_the_engine(rig: Rig):
    loops = rig.loops(shell_loop('mkfifo "$LOOPCTL_HANDOFF"; echo did some work'))
    with watchdog(rig.tmp / "runs", "*/handoff.json") as fired:
        await loops.start()
        await rig.drive(finished(rig, 1), step=0.05, what="the run to settle")
    assert not fired.is_set(), "the engine blocked opening the FIFO"
    run = rig.runs()[0]
    assert "handoff_unreadable: the handoff is a FIFO, not a regular file" in run.liveness_reason


async def test_an_output_log_linked_to_dev_zero_is_not_read(rig: Rig):
    script = 'out="$(dirname "$LOOPCTL_HANDOFF")/output.log"; rm -f "$out"; ln -s /dev/zero "$out"; ' \
             'ln -s /dev/zero "$LOOPCTL_HANDOFF"'
    loops = rig.loops(shell_loop(script))
    await loops.start()
    await rig.drive(finished(rig, 1), step=0.05, what="the run to settle")
    run = rig.runs()[0]
    assert run.status in ("succeeded", "failed") and "handoff_unreadable: the handoff is a symbolic link" \
        in run.liveness_reason
    assert loops.scheduling("docs")  # the loop's task lives on


@pytest.mark.parametrize("kind", ["fifo", "dev-zero link", "directory", "link to a file"])
def test_reads_refuse_anything_but_a_regular_file(tmp_path: Path, kind: str):
    path = tmp_path / "target"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev-zero link":
        path.symlink_to("/dev/zero")
    elif kind == "directory":
        path.mkdir()
    else:
        (tmp_path / "real").write_text("{}")
        path.symlink_to(tmp_path / "real")
    with watchdog(tmp_path, "target", after=10) as fired:
        with pytest.raises(NotRegular):
            read_capped(path, 100)
        assert read_tail(path).startswith("[target is a ") and read_tail(path).endswith("not read]")
        assert read_handoff(path).problem.startswith("handoff_unreadable: the handoff is a ")
    assert not fired.is_set()


def test_a_regular_file_is_read_under_its_cap(tmp_path: Path):
    path = tmp_path / "big"
    path.write_bytes(b"x" * 100_000)
    assert len(read_capped(path, 1000)) == 1001  # one over: the caller can tell
    assert read_tail(path, 10) == "x" * 10
    path.write_bytes(b"x" * 300_000)
    assert read_handoff(path).problem == "handoff larger than 262144 bytes"
