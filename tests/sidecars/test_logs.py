"""A sidecar's log rotated by size as it is written, never when it is read: with real sidecar processes
writing through their own O_APPEND descriptors, and the hostile files a sidecar can leave at the paths."""

from __future__ import annotations

import os
import re
import stat
import threading
import tracemalloc

import pytest
from hypothesis import given
from hypothesis import strategies as st

from console.core.config import SidecarConfig
from console.core.fake_clock import FakeClock
from console.sidecars.logs import (
    CHECK_SECONDS,
    MIN_LOOK_SECONDS,
    LogKeeper,
    next_look,
    previous_of,
    rotate,
    rotation_due,
)
from console.sidecars.supervisor import LOG_KEEPER
from tests.sidecars.test_supervisor import script, state

CAP = 64 * 1024


@given(st.integers(0, 10 * CAP), st.integers(0, 10 * CAP))
def test_rotation_is_due_past_the_cap_or_before_the_next_look_would_be(size, before):
    due = rotation_due(size, before, CAP)
    if size > CAP:
        assert due
    if size == 0:
        assert not due
    if not due:  # what is left alone stays within the cap by the next look, if it grows no faster
        assert size + max(size - before, 0) <= CAP


@given(st.integers(0, 10 * CAP), st.integers(0, 10 * CAP), st.floats(0.01, 5))
def test_a_log_nearing_its_cap_fast_is_looked_at_sooner(size, before, seconds):
    pause = next_look(size, before, CAP, seconds)
    assert MIN_LOOK_SECONDS <= pause <= CHECK_SECONDS
    growth = size - before
    if growth > 0 and size < CAP and pause > MIN_LOOK_SECONDS:  # looked at again before it reaches the cap
        assert size + growth / seconds * pause <= CAP


async def test_a_steady_writer_between_looks_never_finds_its_log_past_the_cap(tmp_path):
    """The keeper's passes over a log appended to at a steady rate (through an O_APPEND descriptor, as
    a sidecar's is): each look finds it within the cap; what is cut away is in `.1`."""
    log = tmp_path / "web.log"
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    keeper = LogKeeper(FakeClock(), logs=lambda: [(log, CAP)])
    written = 0
    try:
        for look in range(60):
            line = f"line {look:04d} ".ljust(100, "x") + "\n"
            for _ in range(CAP // 700):  # ~9 KiB a look: the cap is reached every seven looks
                written += os.write(fd, line.encode())
            assert log.stat().st_size <= CAP, f"look {look}: {log.stat().st_size} bytes"
            await keeper.pass_once()
    finally:
        os.close(fd)
    assert keeper.rotations >= 5
    older = previous_of(log).read_text()
    assert 0 < len(older) <= CAP and older.startswith("line ")
    assert log.stat().st_size < CAP and stat.S_ISREG(os.lstat(previous_of(log)).st_mode)
    assert os.stat(log).st_blocks * 512 < 2 * CAP  # written on at its new end, not past a hole at the old one


def test_rotate_leaves_a_fifo_or_a_link_at_the_log_alone_without_blocking(tmp_path):
    fifo = tmp_path / "fifo.log"
    os.mkfifo(fifo)
    victim = tmp_path / "victim.txt"
    victim.write_text("someone else's\n" * 1000)
    link = tmp_path / "link.log"
    link.symlink_to(victim)
    done = threading.Event()

    def both() -> None:
        assert rotate(fifo, CAP) == 0 and rotate(link, CAP) == 0
        done.set()

    worker = threading.Thread(target=both, daemon=True)
    worker.start()
    assert done.wait(10), "rotate blocked on a FIFO"
    assert victim.read_text() == "someone else's\n" * 1000 and not previous_of(link).exists()


def test_rotate_replaces_whatever_was_left_at_its_part_file(tmp_path):
    log = tmp_path / "web.log"
    log.write_text("a" * 5000)
    part = tmp_path / "web.log.1.part"
    os.mkfifo(part)  # opened for writing, a FIFO with no reader would block or fail
    assert rotate(log, CAP) == 5000
    assert previous_of(log).read_text() == "a" * 5000 and log.read_text() == "" and not part.exists()


def test_rotate_copies_in_the_kernel_without_a_megabyte_buffer(tmp_path):
    """Each rotation copied 1 MiB buffers in a worker thread, whose arena kept the pages: the soak's
    engine RSS rose in steps. Copied by copy_file_range, Python allocates nothing of the size."""
    log = tmp_path / "web.log"
    body = os.urandom(256 * 1024) * 32  # 8 MiB
    log.write_bytes(body)
    tracemalloc.start()
    try:
        assert rotate(log, 2 * len(body)) == len(body)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024, f"rotate allocated {peak} bytes at its peak"
    assert previous_of(log).read_bytes() == body and log.read_bytes() == b""


@pytest.mark.parametrize("after", [0, 3 * 1024 * 1024])
def test_rotate_falls_back_to_a_small_buffer_where_the_kernel_will_not_copy(tmp_path, monkeypatch, after):
    """EXDEV (kernels before 5.3 across file systems), ENOSYS, EINVAL: refused at once or midway, the
    copy goes on from where it stopped, byte for byte, within at_most."""
    real = os.copy_file_range
    copied = [0]

    def refusing(src: int, dst: int, count: int, offset_src: int, offset_dst: int) -> int:
        if copied[0] >= after:
            raise OSError(18, "Invalid cross-device link")
        n = real(src, dst, min(count, after - copied[0]), offset_src, offset_dst)
        copied[0] += n
        return n

    monkeypatch.setattr(os, "copy_file_range", refusing)
    log = tmp_path / "web.log"
    body = os.urandom(1024 * 1024) * 5  # 5 MiB
    log.write_bytes(body)
    assert rotate(log, 4 * 1024 * 1024 + 5) == 4 * 1024 * 1024 + 5  # at_most holds on both paths
    assert previous_of(log).read_bytes() == body[: 4 * 1024 * 1024 + 5] and log.read_bytes() == b""


def test_rotate_copies_by_hand_where_the_kernel_silently_copies_nothing(tmp_path, monkeypatch):
    """copy_file_range returns 0, no error, on file systems where it silently fails (procfs-like, some
    FUSE and network ones: Go's and coreutils' copies fall back on it). Taken as the end of the log, the
    log was cut with nothing in `.1`: it is copied by hand from where the kernel stopped."""
    real = os.copy_file_range
    calls = [0]

    def silent(src: int, dst: int, count: int, offset_src: int, offset_dst: int) -> int:
        calls[0] += 1
        return real(src, dst, min(count, 1024 * 1024), offset_src, offset_dst) if calls[0] == 1 else 0

    monkeypatch.setattr(os, "copy_file_range", silent)
    log = tmp_path / "web.log"
    body = os.urandom(1024 * 1024) * 3
    log.write_bytes(body)
    assert rotate(log, 2 * len(body)) == len(body)
    assert previous_of(log).read_bytes() == body and log.read_bytes() == b""


def test_rotate_does_not_cut_a_file_hard_linked_at_its_part_file(tmp_path):
    """What the sidecar left at `.1.part` may be a hard link to a file of the engine's user: the
    rotation makes its own file there instead of truncating and filling that one."""
    log = tmp_path / "web.log"
    log.write_text("a" * 5000)
    victim = tmp_path / "victim.txt"
    victim.write_text("someone else's\n" * 100)
    os.link(victim, tmp_path / "web.log.1.part")
    assert rotate(log, CAP) == 5000
    assert victim.read_text() == "someone else's\n" * 100 and previous_of(log).read_text() == "a" * 5000


WHOLE = re.compile(r"\d{8} x{90}")
CHATTY = """
import sys, time
n = 0
while True:
    for _ in range(50):
        n += 1
        print(f"{n:08d} " + "x" * 90, flush=True)
    time.sleep(0.01)
"""


async def test_a_chatty_sidecar_is_rotated_as_it_writes_and_carries_on_in_the_new_log(rig):
    """No snapshot is built here: the log is kept within its size by the keeper alone."""
    cmd = script(rig.tmp, "chatty", CHATTY)
    sup = rig.supervisor(SidecarConfig(name="chatty", command=cmd, log_max_bytes=CAP))
    await sup.start()
    log = rig.tmp / "sidecars" / "chatty.log"
    await rig.drive(lambda: sup.log_keeper.rotations >= 3, step=CHECK_SECONDS / 4, what="three rotations")
    assert state(sup, "chatty").state == "ready"  # the sidecar never noticed
    # A cut falls between two writes of the sidecar: its first and last lines may be parts of one (a
    # line its stdout buffer wrote in two), every other line is whole.
    older = previous_of(log).read_text().splitlines()
    assert len(older) > 2 and all(WHOLE.fullmatch(line) for line in older[1:-1])
    await rig.drive(lambda: sum(1 for line in log.read_text().splitlines() if WHOLE.fullmatch(line)) >= 2,
                    what="the sidecar writing on")
    first_old = next(int(line[:8]) for line in older if WHOLE.fullmatch(line))
    first_new = next(int(line[:8]) for line in log.read_text().splitlines() if WHOLE.fullmatch(line))
    assert first_new > first_old  # it writes on from where it was, in the new log
    assert LOG_KEEPER in sup.tasks._tasks


async def test_building_a_view_never_writes_or_cuts_a_log(rig):
    cmd = script(rig.tmp, "quiet", "import time\nprint('hello', flush=True)\ntime.sleep(60)\n")
    cfg = SidecarConfig(name="quiet", command=cmd, log_max_bytes=4096)
    sup = rig.supervisor(cfg)
    await sup.start()
    await sup.tasks.stop(LOG_KEEPER)  # no keeper: only the view could touch the file now
    await rig.drive(lambda: "hello" in state(sup, "quiet").output_tail, what="the hello")
    log = rig.tmp / "sidecars" / "quiet.log"
    with log.open("a") as out:
        out.write("filler\n" * 2000)  # far past its cap
    before = log.stat()
    for _ in range(3):
        assert state(sup, "quiet").output_tail[-1] == "filler"
    after = log.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert not previous_of(log).exists()
