"""The socket flood of the issue, on a real engine under systemd's default `ulimit -n 1024`: 1,100 idle
clients can no longer starve it. `--once` and actions still answer, the sidecar stays ready (no
"Too many open files" latched on it), and a full accept queue is one `busy` line, not BlockingIOError."""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import Host, loopctl_argv, wait_for

pytestmark = pytest.mark.slow


def limited(host: Host) -> subprocess.Popen[str]:
    """`loopctl run` with RLIMIT_NOFILE 1024, as under systemd's default LimitNOFILE."""
    log = (host.root / "engine.log").open("w")
    proc = subprocess.Popen(["prlimit", "--nofile=1024:1024", *loopctl_argv(), "run"], env=host.env, stdout=log,
                            stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
    proc.log_path = host.root / "engine.log"  # type: ignore[attr-defined]
    host.procs.append(proc)
    return proc


def stopped(pid: int) -> bool:
    """Every thread of `pid` in the stopped state. kill() returns when SIGSTOP is sent, not when each
    thread has stopped: under load the engine's threads still took a queued connection after the queue
    was seen full, and the `--once` behind it then waited 5 s for an answer (4 runs in 12 with four
    busy loops beside it; 0 in 12 with this wait)."""
    states = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except (FileNotFoundError, ProcessLookupError):  # a thread that ended (ESRCH if after the open)
            continue
        states.append(stat[stat.rindex(")") + 2])
    return all(state in "Tt" for state in states)


def test_a_thread_ending_while_its_stat_is_read_is_not_waited_for(monkeypatch):
    """A thread that ends between the open of its stat and the read: the read is ESRCH, not ENOENT."""
    def read_text(self: Path, *args: object, **kwargs: object) -> str:
        if self.parent.name == "12":
            raise ProcessLookupError(3, "No such process")
        if self.parent.name == "13":
            raise FileNotFoundError(2, "No such file or directory")
        return f"{self.parent.name} (py (x)) T 1 2 3"

    monkeypatch.setattr(os, "listdir", lambda _path: ["11", "12", "13"])
    monkeypatch.setattr(Path, "read_text", read_text)
    assert stopped(11)


def connect(client: socket.socket, path: str) -> None:
    """A Unix connect fails at once (EAGAIN) while the listen queue is full: again until the engine
    has taken the ones before, within 5 s (an engine out of descriptors never does)."""
    deadline = time.monotonic() + 5
    while True:
        try:
            client.connect(path)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.001)


@pytest.fixture
def many_fds():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_eleven_hundred_idle_clients_cannot_starve_the_engine(short_tmp, many_fds):
    host = Host(root=short_tmp, state=short_tmp / "s", config_dir=short_tmp / "c")
    (short_tmp / "home").mkdir()
    sleep = [sys.executable, "-c", "import time; time.sleep(300)", str(short_tmp)]
    host.write_config(f'[[sidecar]]\nname = "sleeper"\ncommand = {json.dumps(sleep)}\n')
    engine = limited(host)
    try:
        host.wait_owner(engine)
        wait_for(lambda: [s["state"] for s in host.once_json()[1]["snapshot"]["sidecars"]] == ["ready"],  # type: ignore[index]
                 timeout=20, what="the sidecar to be ready")
        clients = []
        for _ in range(1100):  # each one accepted by the engine before the next (a full queue blocks)
            client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            clients.append(client)
            connect(client, str(host.state / "engine.sock"))  # and then idle: it says nothing, ever
        code, report = host.once_json()  # answers: the idlest client gives way
        assert code == 0, report
        assert [s["state"] for s in report["snapshot"]["sidecars"]] == ["ready"]
        assert report["snapshot"]["tray"]["state"] == "ok"  # no descriptors_exhausted, no sidecar failure
        retry = host.run("retry", "sidecar:nope")
        assert retry.returncode == 2 and retry.stderr.count("\n") == 1 and "Traceback" not in retry.stderr
        # The cap (128 clients) and the engine's own: far from 1024 once the given-way ones are closed.
        wait_for(lambda: len(os.listdir(f"/proc/{engine.pid}/fd")) < 300, timeout=10, what="descriptors to settle")
        for client in clients:
            client.close()
    finally:
        engine.send_signal(signal.SIGTERM)
        assert engine.wait(timeout=20) == 0
    assert "Too many open files" not in Host.log(engine)


def test_a_full_accept_queue_is_one_busy_line(short_tmp, many_fds):
    host = Host(root=short_tmp, state=short_tmp / "s", config_dir=short_tmp / "c")
    (short_tmp / "home").mkdir()
    engine = host.spawn("run")
    try:
        host.wait_owner(engine)
        clients = []
        os.kill(engine.pid, signal.SIGSTOP)  # it accepts nothing: the listen queue fills
        try:
            wait_for(lambda: stopped(engine.pid), timeout=10, what="every engine thread to stop")
            while True:
                client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                client.setblocking(False)
                clients.append(client)
                try:
                    client.connect(str(host.state / "engine.sock"))
                except BlockingIOError:
                    break
                assert len(clients) < 5000
            for args in (["--once"], ["retry", "sidecar:web"]):
                result = host.run(*args)
                assert result.returncode == 3, (args, result)
                assert result.stderr.count("\n") == 1 and "is busy (its queue of new connections is full)" \
                    in result.stderr and "BlockingIOError" not in result.stderr + result.stdout, result
        finally:
            os.kill(engine.pid, signal.SIGCONT)
            for client in clients:
                client.close()
        wait_for(lambda: host.once_json()[0] == 0, timeout=20, what="the engine to answer again")
    finally:  # this Host is made here, not by the fixture: nothing else would stop its engine, failed or not
        engine.send_signal(signal.SIGTERM)
        engine.wait(timeout=20)
