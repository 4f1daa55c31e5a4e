"""Reaching an engine on another host: the system's `ssh` running `loopctl dial-stdio` there, which
bridges the session to that host's `engine.sock` (dial.py). The socket protocol is unchanged; only
the byte stream differs, so a request, a watch or an action reads the same over either.

`ssh` is the user's own (their ~/.ssh/config, agent and known_hosts apply), always with BatchMode=yes:
a console or a monitoring check never stops at a password prompt. `LOOPCTL_SSH` replaces the command
(say `ssh -F ~/.ssh/fleet.conf`). Every failure is one line naming the host as the operator wrote it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import selectors
import shlex
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from console.core.errors import LoopctlError, OwnerUnavailable
from console.core.processes import signal_group
from console.core.records import View
from console.host.dial import EXIT_FORBIDDEN, EXIT_NO_ENGINE, FORBIDDEN, NO_ENGINE
from console.host.mux import multiplexing, private_control_dir
from console.host.protocol import MAX_RESPONSE_BYTES, ProtocolError, decode_line, encode_line

SSH_TIMEOUT = 20.0  # connect (ConnectTimeout below) plus the engine's answer
CONNECT_TIMEOUT = 10
STDERR_CAP = 1 << 16
SAID_CAP = 300  # of the far side's last line, in a one-line error
EXIT_SSH = 255  # ssh's own failure: its message is on stderr
NOT_FOUND = (126, 127)  # the far side's shell could not run the command


class SshTarget(View, frozen=True):
    """`ssh://[user@]host[:port][/state-dir]`, and the far side's loopctl command."""

    host: str
    user: str | None = None
    port: int | None = None
    state_dir: str | None = None
    loopctl: str = "loopctl"

    @property
    def label(self) -> str:
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port else ""
        return f"{user}{self.host}{port}"

    @property
    def url(self) -> str:
        return f"ssh://{self.label}{self.state_dir or ''}"


def parse_ssh_url(url: str, *, loopctl: str = "loopctl") -> SshTarget:
    """The URL's parts, or one line on what is wrong with it."""
    bad = f"--host {url!r}: expected ssh://[user@]host[:port][/state-dir]"
    parts = urlsplit(url)
    if parts.scheme != "ssh" or parts.query or parts.fragment or parts.password is not None:
        raise LoopctlError(bad)
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise LoopctlError(f"{bad} (the port is not a number from 1 to 65535)")
    host = parts.hostname
    if not host or host.startswith("-"):
        raise LoopctlError(bad)
    path = unquote(parts.path)
    # ssh://h/~/x is x under the far home, as scp reads it; anything else is absolute
    state_dir = None if path in ("", "/") else path[1:] if path.startswith("/~") else path
    user = unquote(parts.username) if parts.username else None
    if user is not None and (not user or user.startswith("-")):
        raise LoopctlError(bad)
    return SshTarget(host=host, user=user, port=port, state_dir=state_dir, loopctl=loopctl)


def ssh_command(env: Mapping[str, str]) -> list[str]:
    command = shlex.split(env.get("LOOPCTL_SSH") or "ssh")
    if not command:
        raise LoopctlError("LOOPCTL_SSH is empty: unset it, or name an ssh command")
    return command


def control_dir_for(env: Mapping[str, str]) -> str | None:
    """Where this user's ssh masters are (mux.py), or None: then sessions are not multiplexed."""
    return private_control_dir(env, os.getuid())


def ssh_argv(target: SshTarget, ssh: list[str], control_dir: str | None = None) -> list[str]:
    """`control_dir`: multiplex through a master there (mux.py). Its options follow LOOPCTL_SSH's words,
    and ssh takes the first value it is given for each option, so an `-o` there wins over them
    (`LOOPCTL_SSH="ssh -o ControlMaster=no"` turns multiplexing off)."""
    remote = [target.loopctl, "dial-stdio"]
    if target.state_dir:
        remote += ["--state-dir", target.state_dir]
    reach = [*ssh]
    if target.port:
        reach += ["-p", str(target.port)]
    if target.user:
        reach += ["-l", target.user]
    reach += ["--", target.host]
    shared = multiplexing(control_dir, reach) if control_dir is not None else []
    argv = [*ssh, "-o", "BatchMode=yes", "-o", f"ConnectTimeout={CONNECT_TIMEOUT}", *shared, *reach[len(ssh):]]
    # The far side's shell reads the command: quoted, so a state dir with spaces stays one argument.
    return [*argv, shlex.join(remote)]


def dial_failure(name: str, target: SshTarget, returncode: int | None, stderr: bytes) -> LoopctlError:
    """Why a session ended without an answer, from ssh's exit code and what it (or the far side) said."""
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    said = lines[-1][:SAID_CAP] if lines else ""
    if returncode == EXIT_SSH:
        return OwnerUnavailable(f"ssh {name}: {said or 'ssh failed (exit 255)'}")
    if returncode in NOT_FOUND:
        return OwnerUnavailable(f"loopctl not installed on {name} ({target.loopctl!r}: {said or 'not found'}): "
                                f"install it there, or set its path with loopctl = \"...\" in hosts.toml")
    if returncode == EXIT_NO_ENGINE:
        return OwnerUnavailable(f"no engine owns {target.state_dir or 'the default state dir'} on {name}: "
                                f"start it there with `loopctl run`")
    how = f"exit {returncode}" if returncode is not None else "no exit status"
    return OwnerUnavailable(f"ssh {name}: the session ended without an answer ({how}){': ' + said if said else ''}")


def refusal(name: str, answer: dict[str, Any]) -> LoopctlError | None:
    """dial-stdio's own refusal line (no engine, or the socket is another user's), as one line."""
    err = answer.get("error") if answer.get("ok") is False else None
    if not isinstance(err, dict) or err.get("code") not in (NO_ENGINE, FORBIDDEN):
        return None
    state_dir = err.get("state_dir") or "the default state dir"
    if err.get("code") == NO_ENGINE:
        return OwnerUnavailable(f"no engine owns {state_dir} on {name}: start it there with `loopctl run`")
    return LoopctlError(f"the engine socket in {state_dir} on {name} belongs to another user: log in as the "
                        f"engine's user", exit_code=EXIT_FORBIDDEN)


class SshDialer:
    """One far engine, as `name` (a hosts.toml name or the URL) says it."""

    kind = "ssh"

    def __init__(self, name: str, target: SshTarget, ssh: list[str], control_dir: str | None = None) -> None:
        self.name = name
        self.target = target
        self.argv = ssh_argv(target, ssh, control_dir)

    # -- one request, one answer (`--once`, the action verbs) ----------------------------------------

    def request(self, op: str, *, timeout: float = SSH_TIMEOUT, **fields: Any) -> dict[str, Any]:
        # Its own session: a terminal's ctrl+c reaches loopctl, which ends ssh itself; and ssh can never
        # read the console's keyboard.
        proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)
        try:
            line, err = _first_line(proc, encode_line({"id": 1, "op": op, **fields}), timeout)
        except TimeoutError:
            raise OwnerUnavailable(f"ssh {self.name}: no answer within {timeout:g} s") from None
        except OwnerUnavailable as exc:
            raise OwnerUnavailable(f"ssh {self.name}: {exc.message}") from None
        finally:
            try:  # stdin is closed: the session ends by itself once the far side has answered
                proc.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                _end(proc.pid)
                proc.wait()
        if line is None:
            raise dial_failure(self.name, self.target, proc.returncode, err)
        answer = self._decode(line)
        refused = refusal(self.name, answer)
        if refused is not None:
            raise refused
        return answer

    def _decode(self, line: bytes) -> dict[str, Any]:
        try:
            return decode_line(line)
        except ProtocolError as exc:
            raise OwnerUnavailable(f"ssh {self.name}: the far side did not speak loopctl's protocol "
                                   f"({exc.message})") from None

    # -- a stream (watch, the console's actions) -----------------------------------------------------

    async def open(self) -> SshStream:
        proc = await asyncio.create_subprocess_exec(
            *self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True, limit=MAX_RESPONSE_BYTES)
        return SshStream(self, proc)


class SshStream:
    """A live session: write request lines, read answer lines; `close` ends it and its ssh."""

    def __init__(self, dialer: SshDialer, proc: asyncio.subprocess.Process) -> None:
        self.dialer = dialer
        self.proc = proc
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        self.writer = proc.stdin
        self.reader = proc.stdout
        self._said = bytearray()  # ssh's (and the far side's) stderr, its last STDERR_CAP bytes
        # Drained as it comes: a pipe left full would stop ssh, and with it the watch, mid-session.
        self._drain = asyncio.ensure_future(self._keep_stderr(proc.stderr))

    async def _keep_stderr(self, stderr: asyncio.StreamReader) -> None:
        with contextlib.suppress(ConnectionError, ValueError):
            while chunk := await stderr.read(1 << 16):
                self._said += chunk
                del self._said[:-STDERR_CAP]

    async def send(self, message: dict[str, Any]) -> None:
        self.writer.write(encode_line(message))
        with contextlib.suppress(ConnectionError):  # ssh has already gone: reading says why
            await self.writer.drain()

    async def read(self) -> dict[str, Any] | None:
        """The next answer; None when the session has ended (then `failure()` says why)."""
        try:
            line = await self.reader.readline()
        except (ConnectionError, ValueError):
            return None
        if not line:
            return None
        answer = self.dialer._decode(line)
        refused = refusal(self.dialer.name, answer)
        if refused is not None:
            raise refused
        return answer

    async def failure(self, timeout: float = 5.0) -> LoopctlError:
        """Why the session ended: ssh's exit code and last words."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self.proc.wait()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.5):
                await self._drain  # the last words, once ssh has closed its stderr
        return dial_failure(self.dialer.name, self.dialer.target, self.proc.returncode, bytes(self._said))

    async def close(self, grace: float = 2.0) -> None:
        """EOF first (dial-stdio half-closes the engine socket, the engine hangs up, ssh exits), then
        SIGTERM, then SIGKILL to ssh's own session: a dead link must not keep ssh around."""
        if self.proc.returncode is None:
            with contextlib.suppress(OSError, RuntimeError):
                self.writer.close()
        for sig in (None, signal.SIGTERM, signal.SIGKILL):
            if sig is not None and self.proc.returncode is None:
                _end(self.proc.pid, sig)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace):
                    await self.proc.wait()
                    break
        self._drain.cancel()


class LocalStream:
    """This host's engine socket, with the SSH stream's face (the fleet watches both alike)."""

    def __init__(self, name: str, socket_path: Path, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.name = name
        self.socket_path = socket_path
        self.reader = reader
        self.writer = writer

    async def send(self, message: dict[str, Any]) -> None:
        self.writer.write(encode_line(message))
        with contextlib.suppress(ConnectionError):
            await self.writer.drain()

    async def read(self) -> dict[str, Any] | None:
        try:
            line = await self.reader.readline()
        except (ConnectionError, ValueError):
            return None
        return decode_line(line) if line else None

    async def failure(self, timeout: float = 0.0) -> LoopctlError:
        return OwnerUnavailable(f"the engine on {self.socket_path} hung up: it has stopped")

    async def close(self, grace: float = 0.0) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


class LocalDialer:
    kind = "socket"

    def __init__(self, name: str, socket_path: Path) -> None:
        self.name = name
        self.socket_path = socket_path

    async def open(self) -> LocalStream:
        try:
            reader, writer = await asyncio.open_unix_connection(os.fspath(self.socket_path), limit=MAX_RESPONSE_BYTES)
        except (FileNotFoundError, ConnectionRefusedError):
            raise OwnerUnavailable(f"no engine owns {self.socket_path.parent} on {self.name}: start it with "
                                   f"`loopctl run`") from None
        except PermissionError:
            raise LoopctlError(f"{self.socket_path} belongs to another user: run loopctl as that user") from None
        return LocalStream(self.name, self.socket_path, reader, writer)


class Stream(Protocol):
    async def send(self, message: dict[str, Any]) -> None: ...

    async def read(self) -> dict[str, Any] | None: ...

    async def failure(self, timeout: float = ...) -> LoopctlError: ...

    async def close(self, grace: float = ...) -> None: ...


class Dialer(Protocol):
    name: str
    kind: str  # how it is reached, for the console's header: ssh, socket

    async def open(self) -> Stream: ...


def backoff(attempt: int) -> float:
    """Seconds before reconnect number `attempt` (0-based): 1 s doubling to 30 s."""
    return float(min(30, 2 ** min(attempt, 5)))


def _first_line(proc: subprocess.Popen[bytes], message: bytes, timeout: float) -> tuple[bytes | None, bytes]:
    """Send `message`, close stdin, and read the first answer line (None if stdout ended first) under
    MAX_RESPONSE_BYTES and `timeout`, with ssh's stderr (its last STDERR_CAP bytes) read alongside so
    it can never block ssh; once the answer is in, the rest of the session is not waited for."""
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    with contextlib.suppress(BrokenPipeError):  # ssh gone already: its stderr says why
        proc.stdin.write(message)
    with contextlib.suppress(BrokenPipeError):
        proc.stdin.close()
    deadline = time.monotonic() + timeout
    out, err = bytearray(), bytearray()
    open_fds = {proc.stdout.fileno(): out, proc.stderr.fileno(): err}
    with selectors.DefaultSelector() as selector:
        for fd in open_fds:
            selector.register(fd, selectors.EVENT_READ)
        while open_fds:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            for key, _ in selector.select(left):
                chunk = os.read(key.fd, 1 << 16)
                if not chunk:
                    selector.unregister(key.fd)
                    del open_fds[key.fd]
                    continue
                buffer = open_fds[key.fd]
                if buffer is err:
                    err += chunk
                    del err[:-STDERR_CAP]
                    continue
                newline = chunk.find(b"\n")  # only the new bytes are searched: no rescans of the answer
                if newline >= 0:
                    return bytes(out) + chunk[:newline], bytes(err)
                out += chunk
                if len(out) > MAX_RESPONSE_BYTES:
                    raise OwnerUnavailable(f"the far side's answer exceeded {MAX_RESPONSE_BYTES} bytes")
    proc.wait(timeout=max(0.1, deadline - time.monotonic()))
    return (bytes(out) or None), bytes(err)


def _end(pid: int, sig: int = signal.SIGKILL) -> None:
    """Our own ssh child, unreaped (so its pid cannot have been reused), leads a session of its own."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        signal_group(pid, sig)
