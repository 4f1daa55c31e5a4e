"""Shared fixtures: isolated XDG/state paths, real `loopctl` processes that never outlive a test,
and a way to act as another user (fork + setuid) for the ownership checks."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

NOBODY = 65534

# Rendered times (snapshot SVGs, screenshots) must not depend on the machine's zone.
os.environ["TZ"] = "UTC"
time.tzset()

# ctrl+c as a terminal gives it. A shell without job control starts a background command (`.ci/run &`)
# with SIGINT ignored, and an ignored signal stays ignored across exec: every loopctl under test would
# shrug off the SIGINT a test sends it (`logs -f` ran on for 10 s). A handler, unlike SIG_IGN, is reset
# to the default by exec.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_configure(config: pytest.Config) -> None:
    """The subprocess tests run the installed `loopctl`: it must be this checkout's code. The README's
    console command installs the regular way (a copy in site-packages); its test command installs
    editable. Run in the other order, the tests would exercise the copy, not the code being edited."""
    copy = Path(sysconfig.get_paths()["purelib"]) / "console"
    if Path(sys.executable).with_name("loopctl").exists() and copy.is_dir():
        pytest.exit(f"tests: {copy} is a copy of loopctl (the README's console command), not this checkout: "
                    f"run the README's test command, which installs it editable, then pytest", returncode=4)


def loopctl_argv() -> list[str]:
    """The installed console script when there is one (what the README runs), else `python -m console`."""
    script = Path(sys.executable).with_name("loopctl")
    return [str(script)] if script.exists() else [sys.executable, "-m", "console"]


def wait_for(predicate: Callable[[], object], timeout: float = 10.0, what: str = "condition") -> object:
    """Poll a real-world condition (a process, a port, a file). Timers in engine logic use FakeClock."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def gone(pid: int) -> bool:
    """No process `pid` runs (a zombie counts as gone: pid 1 may not reap an orphan here)."""
    import psutil

    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def execed(proc: subprocess.Popen) -> subprocess.Popen:
    """`proc` once its program runs: Popen can return while the kernel is still inside the child's exec,
    and /proc then shows the parent's command line and environment for a moment."""
    import psutil

    def running() -> bool:
        try:
            return psutil.Process(proc.pid).cmdline() == list(proc.args)
        except psutil.Error:
            return False

    wait_for(running, 10, f"pid {proc.pid} to exec {proc.args!r}")
    return proc


@dataclass
class Host:
    """One isolated host: its own state dir, config dir and home."""

    root: Path
    state: Path
    config_dir: Path
    procs: list[subprocess.Popen[str]] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LOOPCTL_", "XDG_"))}
        env.update(
            LOOPCTL_HOME=str(self.state),
            XDG_CONFIG_HOME=str(self.config_dir),
            XDG_STATE_HOME=str(self.root / "xdg-state"),
            HOME=str(self.root / "home"),
            # where ssh's control sockets would go (host/mux.py): a directory that does not exist, so these
            # hosts' ssh sessions are not multiplexed and no master outlives a test; tests of multiplexing
            # give a short one of their own and end its masters (`end_masters`)
            XDG_RUNTIME_DIR=str(self.root / "no-runtime-dir"),
            PYTHONUNBUFFERED="1",
        )
        return env

    @property
    def config_file(self) -> Path:
        return self.config_dir / "loopctl" / "loopctl.toml"

    def write_config(self, text: str) -> Path:
        self.config_file.parent.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(text)
        return self.config_file

    def run(self, *args: str, timeout: float = 30.0, env: dict[str, str] | None = None) \
            -> subprocess.CompletedProcess[str]:
        return subprocess.run([*loopctl_argv(), *args], check=False, env=env or self.env, capture_output=True,
                              text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    def spawn(self, *args: str) -> subprocess.Popen[str]:
        """Start a long-running loopctl; its output goes to a log file (see `log`)."""
        log = self.root / f"proc-{len(self.procs)}.log"
        with log.open("w") as out:
            proc = subprocess.Popen([*loopctl_argv(), *args], env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                    text=True, stdin=subprocess.DEVNULL)
        proc.log_path = log  # type: ignore[attr-defined]
        self.procs.append(proc)
        return proc

    @staticmethod
    def log(proc: subprocess.Popen[str]) -> str:
        return proc.log_path.read_text()  # type: ignore[attr-defined]

    def once_json(self) -> tuple[int, dict[str, object]]:
        result = self.run("--once", "--format", "json")
        assert result.stderr == "", result.stderr
        return result.returncode, json.loads(result.stdout)

    def engine_pid(self) -> int | None:
        _code, report = self.once_json()
        engine = report["snapshot"]["engine"]  # type: ignore[index]
        return engine["pid"] if engine["running"] else None  # type: ignore[index]

    def wait_owner(self, proc: subprocess.Popen[str], timeout: float = 15.0) -> None:
        # `--once` (a Python start, 0.2 s of CPU) only once a socket is there to answer: while an engine
        # starts, a loop of them took a core from it. A predecessor's socket just means asking at once.
        socket = self.state / "engine.sock"
        wait_for(lambda: socket.exists() and self.engine_pid() == proc.pid, timeout,
                 f"pid {proc.pid} to own {self.state}")


def masters(runtime_dir: Path) -> list[Path]:
    """The ssh control sockets loopctl made under this XDG_RUNTIME_DIR (host/mux.py)."""
    control = runtime_dir / "loopctl-ssh"
    return sorted(p for p in control.iterdir() if p.is_socket()) if control.is_dir() else []


def end_masters(runtime_dir: Path) -> None:
    """End every ssh master of this runtime dir (ControlPersist would keep each a while): by its own
    control socket, so only the masters these tests started are asked, and they exit by themselves."""
    for socket_path in masters(runtime_dir):
        subprocess.run(["ssh", "-o", f"ControlPath={socket_path}", "-O", "exit", "loopctl-test"],
                       capture_output=True, timeout=10, check=False, stdin=subprocess.DEVNULL)


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A directory with a short path, for unix sockets (at most 107 bytes) a few levels down."""
    with tempfile.TemporaryDirectory(prefix="lt-") as d:
        yield Path(d)


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Host]:
    h = Host(root=tmp_path, state=tmp_path / "state", config_dir=tmp_path / "config")
    (tmp_path / "home").mkdir()
    yield h
    for proc in h.procs:  # a clean stop first: an engine ends its sidecars and runs, a SIGKILL orphans them
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)


def as_user(uid: int, fn: Callable[[], object]) -> str:
    """Run `fn` in a forked child with another uid/gid; return what it printed as a result."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        code = 0
        try:
            os.close(read_fd)
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            result = repr(fn())
        except BaseException as exc:
            result = f"{type(exc).__name__}: {exc}"
            code = 1
        os.write(write_fd, result.encode())
        os._exit(code)
    os.close(write_fd)
    chunks = []
    while chunk := os.read(read_fd, 65536):
        chunks.append(chunk)
    os.close(read_fd)
    os.waitpid(pid, 0)
    return b"".join(chunks).decode()


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_server(port: int) -> list[str]:
    """A real HTTP sidecar command on loopback."""
    return [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)]


async def drive(clock: object, until: Callable[[], object], *, step: float = 0.05, timeout: float = 30.0,
                what: str = "a state") -> None:
    """Advance a FakeClock in small steps while real processes do their part, until `until()`."""
    import asyncio

    deadline = time.monotonic() + timeout
    while not until():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        clock.advance(step)  # type: ignore[attr-defined]
        await asyncio.sleep(0.01)


async def finish_with_clock(clock: object, awaitable: object, step: float = 0.5) -> None:
    """Run `awaitable` to completion while the fake clock moves (stops have grace periods on it)."""
    import asyncio

    task = asyncio.ensure_future(awaitable)  # type: ignore[arg-type]
    await drive(clock, task.done, step=step, what="the stop to finish")
    await task


requires_root = pytest.mark.skipif(os.geteuid() != 0, reason="acting as another user needs root")


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory another user can traverse (pytest's tmp_path sits under a 0700 parent)."""
    import shutil
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="loopctl-xuser-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def artifact_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real HTTP server on loopback serving a directory: (base URL, the directory)."""
    import functools
    import http.server
    import threading

    root = tmp_path / "served"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()


def make_artifact(members: dict[str, bytes | tuple[str, str]], *, kind: str = "tar.gz") -> bytes:
    """A plugin artifact: name -> file bytes, or ("symlink"|"hardlink", target)."""
    import io
    import tarfile
    import zipfile

    buffer = io.BytesIO()
    if kind == "zip":
        with zipfile.ZipFile(buffer, "w") as archive:
            for name, data in members.items():
                assert isinstance(data, bytes)
                archive.writestr(name, data)
        return buffer.getvalue()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.mode = 0o755
            if isinstance(data, tuple):
                info.type = tarfile.SYMTYPE if data[0] == "symlink" else tarfile.LNKTYPE
                info.linkname = data[1]
                archive.addfile(info)
            else:
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture(scope="session")
def sshd() -> Iterator[object]:
    """A real sshd on 127.0.0.1 (Debian's openssh-server, which .ci/run installs), shared by the tests."""
    from tests.sshd import start_sshd, stop_sshd

    root = Path(tempfile.mkdtemp(prefix="lt-sshd-"))
    server = start_sshd(root, free_port())
    yield server
    stop_sshd(server)
    import shutil

    shutil.rmtree(root, ignore_errors=True)
