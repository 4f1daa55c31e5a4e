"""The kill guard and process identity, against live processes."""

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from console.core.processes import RefusedSignal, group_alive, identify, signal_group, signal_pid
from tests.conftest import wait_for


@pytest.mark.parametrize("target", [0, 1, -1, -5])
def test_the_guard_refuses_pids_and_groups_at_or_below_one(target):
    with pytest.raises(RefusedSignal):
        signal_group(target, signal.SIGTERM)
    with pytest.raises(RefusedSignal):
        signal_pid(target, signal.SIGTERM)


def test_the_guard_refuses_our_own_group_and_ourselves():
    with pytest.raises(RefusedSignal, match="loopctl's own process group"):
        signal_group(os.getpgrp(), signal.SIGKILL)
    with pytest.raises(RefusedSignal):
        signal_pid(os.getpid(), signal.SIGKILL)


def test_the_guard_refuses_a_member_of_our_group():
    same_group = subprocess.Popen(["sleep", "30"])  # no new session: it shares our group
    try:
        with pytest.raises(RefusedSignal, match="in loopctl's process group"):
            signal_pid(same_group.pid, signal.SIGKILL)
        assert same_group.poll() is None
    finally:
        same_group.kill()
        same_group.wait()


def test_the_guard_refuses_non_integers():
    with pytest.raises(RefusedSignal):
        signal_group(True, signal.SIGTERM)  # bool is an int in Python; never a pid


def test_signalling_a_group_reaches_every_member_and_reports_when_it_is_gone():
    # The member is known to exist before the kill (it printed its pid), and comes back to this process
    # to be reaped: pid 1 here leaves orphans zombies, and a group of zombies still takes a signal.
    # Killing before the member had spawned once made this pass without it, and fail when it had.
    with subreaper():
        leader = subprocess.Popen([sys.executable, "-c", "import subprocess,time; "
                                   "print(subprocess.Popen(['sleep','30']).pid, flush=True); time.sleep(30)"],
                                  start_new_session=True, stdout=subprocess.PIPE, text=True)
        try:
            assert leader.stdout is not None
            member = int(leader.stdout.readline())
            assert os.getpgid(member) == leader.pid and group_alive(leader.pid)
            assert signal_group(leader.pid, signal.SIGKILL)
            leader.wait()
            # Ours now that its parent is gone; it ends only if the group's signal reached it.
            reaped = wait_for(lambda: (found := os.waitpid(member, os.WNOHANG))[0] and found, 10, "the member")
            assert os.waitstatus_to_exitcode(reaped[1]) == -signal.SIGKILL  # type: ignore[index]
            assert not group_alive(leader.pid)
            assert signal_group(leader.pid, signal.SIGKILL) is False
        finally:
            if leader.poll() is None:
                leader.kill()
                leader.wait()


@contextlib.contextmanager
def subreaper() -> Iterator[None]:
    """This process adopts its descendants' orphans while the block runs (Linux prctl)."""
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_child_subreaper = 36
    assert libc.prctl(pr_set_child_subreaper, 1, 0, 0, 0) == 0, os.strerror(ctypes.get_errno())
    try:
        yield
    finally:
        libc.prctl(pr_set_child_subreaper, 0, 0, 0, 0)


def test_identify_sees_create_time_cmdline_and_the_token():
    proc = subprocess.Popen(["sleep", "30"], env={**os.environ, "LOOPCTL_SIDECAR_TOKEN": "t0k"})
    try:
        # Until the child has exec'd, /proc shows the forking Python's cmdline: wait for the program itself.
        deadline = time.monotonic() + 10
        while (found := identify(proc.pid)) is None or found.cmdline != ["sleep", "30"]:
            assert time.monotonic() < deadline, "sleep never exec'd"
            time.sleep(0.005)
        me = identify(proc.pid, "LOOPCTL_SIDECAR_TOKEN")
        assert me is not None and me.cmdline == ["sleep", "30"] and me.environ_token == "t0k"
        assert identify(proc.pid).create_time == me.create_time  # stable across reads
    finally:
        proc.kill()
        proc.wait()
    assert identify(proc.pid) is None


def test_every_signal_in_the_package_goes_through_the_guard():
    """No module but core/processes.py may call os.kill / os.killpg or a Popen's kill/terminate/send_signal."""
    import re
    from pathlib import Path

    import console

    root = Path(console.__file__).parent
    pattern = re.compile(r"os\.kill\(|os\.killpg\(|\.send_signal\(|\.terminate\(\)|\.kill\(\)")
    offenders = [f"{path.relative_to(root)}:{n}" for path in root.rglob("*.py")
                 if path.relative_to(root).as_posix() != "core/processes.py"
                 for n, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]
    assert offenders == []
