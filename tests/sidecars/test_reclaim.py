"""Reclaim never signals what it cannot prove is ours. Live processes; the file is the only input."""

import json
import os
import subprocess
import time

import pytest

from console.core.processes import Identity, boot_time, group_alive, identify
from console.sidecars.pidfile import CorruptPidFile, PidRecord, read_pidfile, write_pidfile
from console.sidecars.reclaim import TOKEN_VARIABLE, Outcome, Verdict, ownership_verdict, reclaim, same_command
from tests.conftest import execed

BOOT = 1_000.0
OWN = (777, 700)  # the engine's pid and process group


def record(**changes) -> PidRecord:
    base = dict(pid=4242, pgid=4242, session_token="tok", create_time=50.0, cmdline=["python3", "-m", "srv"],
                boot_time=BOOT, written_at=60.0)
    return PidRecord(**{**base, **changes})


def live(**changes) -> Identity:
    base = dict(pid=4242, create_time=50.0, cmdline=["python3", "-m", "srv"], boot_time=BOOT, environ_token="tok")
    return Identity(**{**base, **changes})


@pytest.mark.parametrize(
    ("rec", "proc", "verdict"),
    [
        (None, None, Verdict.NO_PIDFILE),
        (CorruptPidFile("truncated"), None, Verdict.STALE),
        (record(pid=1), live(pid=1), Verdict.STALE),
        (record(pgid=0), live(), Verdict.STALE),
        (record(boot_time=BOOT - 3600), live(), Verdict.STALE),
        (record(), None, Verdict.STALE),
        (record(), live(create_time=51.0), Verdict.FOREIGN),
        (record(), live(cmdline=["nginx", "-g", "daemon off;"]), Verdict.FOREIGN),
        (record(), live(environ_token="other"), Verdict.FOREIGN),
        (record(), live(create_time=-1.0, cmdline=[]), Verdict.FOREIGN),
        (record(), live(), Verdict.OURS),
        (record(), live(environ_token=None), Verdict.OURS),  # environ unreadable: the rest must hold
        (record(), live(environ_token=None, environ_readable=True), Verdict.FOREIGN),  # readable, no token
        (record(pid=OWN[0]), live(pid=OWN[0]), Verdict.STALE),  # the engine itself
        (record(pgid=OWN[1]), live(), Verdict.STALE),  # the engine's group
        (record(), live(cmdline=["/root/.pyenv/versions/3.11.7/bin/python3", "-m", "srv"]), Verdict.OURS),
    ],
)
def test_ownership_verdict(rec, proc, verdict):
    got, why = ownership_verdict(rec, proc, BOOT, OWN)
    assert got is verdict, why
    assert why and "\n" not in why


@pytest.mark.parametrize(
    ("live_cmd", "launched", "same"),
    [
        (["python3", "-m", "x"], ["python3", "-m", "x"], True),
        (["/usr/bin/python3", "-m", "x"], ["python3", "-m", "x"], True),  # exec through a shim
        (["/bin/bash", "/opt/run.sh", "a"], ["/opt/run.sh", "a"], True),  # a shebang script
        (["python3", "-m", "y"], ["python3", "-m", "x"], False),
        (["/usr/bin/perl", "-m", "x"], ["python3", "-m", "x"], False),
        (["sleep", "30"], ["python3", "-m", "x"], False),
        ([], ["python3"], False),
    ],
)
def test_same_command_allows_shims_and_shebangs_only(live_cmd, launched, same):
    assert same_command(live_cmd, launched) is same


@pytest.fixture
def foreign(tmp_path):
    """A live process that is not ours: its own group, its own command."""
    proc = execed(subprocess.Popen(["sleep", "60"], start_new_session=True))
    yield proc
    proc.kill()
    proc.wait()


def forge(path, proc, **changes):
    me = identify(proc.pid)
    base = dict(pid=proc.pid, pgid=proc.pid, session_token="x", create_time=me.create_time,
                cmdline=me.cmdline, boot_time=boot_time(), written_at=time.time())
    write_pidfile(path, PidRecord(**{**base, **changes}))


@pytest.mark.parametrize("lie", [{"create_time_shift": 5.0}, {"cmdline": ["python3", "-m", "http.server"]}])
async def test_a_foreign_process_in_the_pid_file_is_never_signalled(tmp_path, foreign, lie):
    pidfile = tmp_path / "web.pid"
    if "create_time_shift" in lie:
        forge(pidfile, foreign, create_time=identify(foreign.pid).create_time - lie["create_time_shift"])
    else:
        forge(pidfile, foreign, cmdline=lie["cmdline"])
    result = await reclaim(pidfile, port=0, grace=0.5)
    assert result.outcome is Outcome.FOREIGN and result.pid == foreign.pid
    time.sleep(0.1)
    assert foreign.poll() is None, "a foreign process was signalled"
    assert not pidfile.exists()


async def test_our_orphan_group_is_ended_and_the_file_removed(tmp_path):
    # A member that ignores SIGTERM, so the group needs the SIGKILL after the grace.
    orphan = subprocess.Popen(["sh", "-c", "(trap '' TERM; sleep 60) & exec sleep 61"], start_new_session=True,
                              env={**os.environ, TOKEN_VARIABLE: "x"})
    pidfile = tmp_path / "web.pid"
    time.sleep(0.2)  # let the shell exec: same pid and start time, new argv
    me = identify(orphan.pid)
    forge(pidfile, orphan, cmdline=me.cmdline)
    result = await reclaim(pidfile, port=0, grace=1.0)
    orphan.wait(timeout=5)
    assert result.outcome is Outcome.RECLAIMED
    assert not pidfile.exists()
    # Members may linger as zombies where pid 1 does not reap; no member may still be running.
    assert not group_alive(orphan.pid), "a member of the orphan's group survived"


@pytest.mark.parametrize("content", [b"", b"{\"pid\": 12", b"\x00\xff garbage", b"[]",
                                     json.dumps({"pid": "12", "pgid": 12}).encode(),
                                     json.dumps(dict(pid=True, pgid=5, session_token="", create_time=1.0,
                                                     cmdline=["x"], boot_time=1.0, written_at=1.0)).encode()])
async def test_a_corrupt_or_truncated_pid_file_is_stale_never_a_crash(tmp_path, content):
    pidfile = tmp_path / "web.pid"
    pidfile.write_bytes(content)
    assert isinstance(read_pidfile(pidfile), CorruptPidFile)
    result = await reclaim(pidfile, port=0, grace=0.5)
    assert result.outcome is Outcome.STALE_PIDFILE and "corrupt" in result.detail
    assert not pidfile.exists()


async def test_a_pid_file_of_a_dead_process_is_stale(tmp_path):
    gone = subprocess.Popen(["true"])
    gone.wait()
    pidfile = tmp_path / "web.pid"
    write_pidfile(pidfile, PidRecord(gone.pid, gone.pid, "t", 1.0, ["true"], boot_time(), 1.0))
    assert (await reclaim(pidfile, port=0, grace=0.5)).outcome is Outcome.STALE_PIDFILE


def test_pid_files_are_private(tmp_path):
    pidfile = tmp_path / "web.pid"
    write_pidfile(pidfile, record())
    assert oct(os.stat(pidfile).st_mode & 0o777) == "0o600"
    assert read_pidfile(pidfile) == record()


def ours(token: str = "x") -> subprocess.Popen:
    """An orphan of ours: its own session, our session token in its environment."""
    return execed(subprocess.Popen(["sleep", "60"], start_new_session=True, env={**os.environ, TOKEN_VARIABLE: token}))


async def test_a_pid_file_naming_our_orphan_with_a_foreign_group_never_signals_that_group(tmp_path, foreign):
    orphan = ours()
    try:
        pidfile = tmp_path / "web.pid"
        forge(pidfile, orphan, pgid=foreign.pid)  # the orphan is ours; the group it names is not
        result = await reclaim(pidfile, port=0, grace=0.5)
        assert result.outcome is Outcome.RECLAIMED and f"does not lead group {foreign.pid}" in result.detail, result
        orphan.wait(timeout=5)
        assert foreign.poll() is None, "the foreign group was signalled"
    finally:
        orphan.kill()
        orphan.wait()


async def test_an_exact_forged_identity_of_a_process_without_our_token_is_foreign(tmp_path, foreign):
    pidfile = tmp_path / "web.pid"
    forge(pidfile, foreign)  # pid, start time, command, boot: all exact; its environment has no token
    result = await reclaim(pidfile, port=0, grace=0.5)
    assert result.outcome is Outcome.FOREIGN and "no loopctl session token" in result.detail
    assert foreign.poll() is None, "a foreign process was signalled"
    assert not pidfile.exists()


@pytest.mark.parametrize("names", ["own_pid", "own_group"])
async def test_a_pid_file_naming_the_engine_itself_is_stale_and_removed(tmp_path, names):
    pidfile = tmp_path / "web.pid"
    me = identify(os.getpid())
    pid, pgid = (os.getpid(), os.getpid()) if names == "own_pid" else (os.getpid(), os.getpgrp())
    write_pidfile(pidfile, PidRecord(pid, pgid, "x", me.create_time, me.cmdline, boot_time(), time.time()))
    result = await reclaim(pidfile, port=0, grace=0.5)  # raised RefusedSignal (or worse) before
    assert result.outcome is Outcome.STALE_PIDFILE and "the engine's own process or group" in result.detail
    assert not pidfile.exists()


@pytest.mark.parametrize("kind", ["fifo", "dev-zero link", "link to a live record"])
async def test_a_pid_file_that_is_not_a_regular_file_is_unsafe_and_only_unlinked(tmp_path, kind):
    """A FIFO (whose open would block the engine) or a link (to /dev/zero, read without end, or to a
    record elsewhere) at the PID-file path: pidfile_unsafe, the path itself removed, nothing signalled."""
    import threading

    pidfile = tmp_path / "web.pid"
    elsewhere = tmp_path / "elsewhere.pid"
    if kind == "fifo":
        os.mkfifo(pidfile)
    elif kind == "dev-zero link":
        pidfile.symlink_to("/dev/zero")
    else:
        sleeper = subprocess.Popen(["sleep", "30"], start_new_session=True)
        live = identify(sleeper.pid)
        write_pidfile(elsewhere, PidRecord(sleeper.pid, sleeper.pid, "tok", live.create_time, live.cmdline,
                                           boot_time(), time.time()))
        pidfile.symlink_to(elsewhere)
    unblocked = threading.Event()

    def unblock() -> None:  # were the engine to block opening the FIFO: let it go, and fail the test
        if not done.wait(10):
            unblocked.set()
            fd = os.open(pidfile, os.O_WRONLY | os.O_NONBLOCK)
            os.close(fd)

    done = threading.Event()
    guard = threading.Thread(target=unblock, daemon=True)
    guard.start()
    try:
        record = read_pidfile(pidfile)
        result = await reclaim(pidfile, 0, 1.0)
    finally:
        done.set()
        guard.join()
    assert not unblocked.is_set()
    assert isinstance(record, CorruptPidFile) and record.detail.startswith("pidfile_unsafe: ")
    assert result.outcome is Outcome.STALE_PIDFILE and "pidfile_unsafe" in result.detail
    assert not pidfile.exists() and not pidfile.is_symlink()  # the path is gone, what it pointed at is not
    if kind == "link to a live record":
        assert elsewhere.exists() and sleeper.poll() is None  # never signalled through a link
        sleeper.kill()
        sleeper.wait()
