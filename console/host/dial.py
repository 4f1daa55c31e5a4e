"""`loopctl dial-stdio`: the far side of `--host ssh://...`. It connects to this host's `engine.sock`
and bridges its own stdin and stdout to it, byte for byte, so a client at the other end of an SSH
session speaks the socket protocol unchanged (the convention of `docker system dial-stdio`). The
engine's SO_PEERCRED check sees this process, that is the SSH user.

When there is no engine to bridge to, it says so twice: one protocol error line on stdout (what the
client at the other end reads, with the state dir it looked in) and one line for a person on stderr.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
from pathlib import Path

from console.core.printable import printable
from console.host.protocol import encode_line, error

# Exit codes the near side tells apart from ssh's own 255 and a shell's 127 (sysexits.h).
EXIT_NO_ENGINE = 69  # EX_UNAVAILABLE
EXIT_FORBIDDEN = 77  # EX_NOPERM
NO_ENGINE = "no_engine"
FORBIDDEN = "socket_forbidden"
CHUNK = 1 << 16


def dial_stdio(socket_path: Path, state_dir: Path, *, stdin: int = 0, stdout: int = 1) -> int:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        try:
            sock.connect(os.fspath(socket_path))
        except (FileNotFoundError, ConnectionRefusedError, NotADirectoryError):
            return _refuse(stdout, NO_ENGINE, f"no engine owns {state_dir} on {socket.gethostname()}: start it "
                                              f"there with `loopctl run`", state_dir, EXIT_NO_ENGINE)
        except PermissionError:
            return _refuse(stdout, FORBIDDEN, f"{socket_path} on {socket.gethostname()} belongs to another user: "
                                              f"log in as the engine's user", state_dir, EXIT_FORBIDDEN)
        return bridge(sock, stdin, stdout)
    finally:
        sock.close()


def _refuse(stdout: int, code: str, message: str, state_dir: Path, exit_code: int) -> int:
    answer = error(None, code, message)
    answer["error"]["state_dir"] = str(state_dir)
    with contextlib.suppress(OSError):
        os.write(stdout, encode_line(answer))
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
