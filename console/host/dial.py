"""`loopctl dial-stdio`: the far side of `--host ssh://...`. It connects to this host's `engine.sock`
and bridges its own stdin and stdout to it, byte for byte, so a client at the other end of an SSH
session speaks the socket protocol unchanged (the convention of `docker system dial-stdio`). The
engine's SO_PEERCRED check sees this process, that is the SSH user.

When there is no engine to bridge to, it says so twice: one protocol error line on stdout (what the
client at the other end reads, with the state dir it looked in) and one line for a person on stderr.

It starts once per ssh session, on the far host: a fleet of 20 hosts starts 20 at once, and every
reconnect one more. So it imports only the standard library's socket, threading and json, and
loopctl's `core.state_home` and `core.printable` (each only `os` or `re`), never msgspec, pathlib,
argparse or the engine: launch.py reaches it without console.cli, and tests/host/test_dial.py checks
what a session loads. Its refusal line is the protocol's error frame, written by hand here
(`protocol.error`'s shape) for that reason.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import threading

from console.core.printable import printable
from console.core.state_home import state_dir_of

# typing itself costs the lean path ~5 ms; mypy takes any name TYPE_CHECKING as true
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

# Exit codes the near side tells apart from ssh's own 255 and a shell's 127 (sysexits.h).
EXIT_NO_ENGINE = 69  # EX_UNAVAILABLE
EXIT_FORBIDDEN = 77  # EX_NOPERM
NO_ENGINE = "no_engine"
FORBIDDEN = "socket_forbidden"
CHUNK = 1 << 16


def dial_here(state_dir: str | None, env: Mapping[str, str] = os.environ) -> int:
    """`loopctl dial-stdio [--state-dir D]`: this host's engine in D, or the default state dir."""
    state = state_dir_of(state_dir, env, os.path.expanduser("~"))
    return dial_stdio(os.path.join(state, "engine.sock"), state)


def dial_stdio(socket_path: str | os.PathLike[str], state_dir: str | os.PathLike[str], *, stdin: int = 0,
               stdout: int = 1) -> int:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        try:
            sock.connect(os.fspath(socket_path))
        except (FileNotFoundError, ConnectionRefusedError, NotADirectoryError):
            return _refuse(stdout, NO_ENGINE, f"no engine owns {os.fspath(state_dir)} on {socket.gethostname()}: "
                                              f"start it there with `loopctl run`", state_dir, EXIT_NO_ENGINE)
        except PermissionError:
            return _refuse(stdout, FORBIDDEN, f"{os.fspath(socket_path)} on {socket.gethostname()} belongs to "
                                              f"another user: log in as the engine's user", state_dir, EXIT_FORBIDDEN)
        return bridge(sock, stdin, stdout)
    finally:
        sock.close()


def refusal_line(code: str, message: str, state_dir: str) -> bytes:
    """`protocol.error(None, code, message)` with the state dir it looked in, as one compact JSON line."""
    frame = {"id": None, "ok": False, "error": {"code": code, "message": message, "state_dir": state_dir}}
    return json.dumps(frame, separators=(",", ":")).encode() + b"\n"


def _refuse(stdout: int, code: str, message: str, state_dir: str | os.PathLike[str], exit_code: int) -> int:
    with contextlib.suppress(OSError):
        os.write(stdout, refusal_line(code, message, os.fspath(state_dir)))
    print(printable(f"loopctl: {message}"), file=sys.stderr)
    return exit_code


def bridge(sock: socket.socket, stdin: int, stdout: int) -> int:
    """stdin -> socket on a thread (its end half-closes the socket, so the engine sees the client's
    end as it would on a direct connection); socket -> stdout here, until the engine hangs up."""

    def upstream() -> None:
        try:
            while chunk := os.read(stdin, CHUNK):
                sock.sendall(chunk)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)

    threading.Thread(target=upstream, name="dial-stdio-up", daemon=True).start()
    try:
        while chunk := sock.recv(CHUNK):
            view = memoryview(chunk)
            while view:
                view = view[os.write(stdout, view):]
    except OSError:  # the client went away (EPIPE) or the engine reset the connection
        return 0
    return 0
