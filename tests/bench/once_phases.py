"""`loopctl --once` with the time of each of its phases appended to a file, for bench_scale.py --phases:
where a slow sample's time went, the engine's side (request sent to the answer's first byte) or the
client's (interpreter start, imports, reading, decoding and rendering on a CPU the engine's children share).

    <venv>/bin/python once_phases.py OUT --once --format json

Appends one JSON line to OUT: wall-clock times (time.time(), so the bench can put its own spawn time
beside them) of `main` (this script running: interpreter and site start done), `sent` (request
written), `first_byte`, `answer` (the whole line read), `decoded` (JSON parsed), `snapshot` (the
typed Snapshot built), `rendered` and `end`. Only wraps loopctl's own functions; nothing else changes.
"""

from __future__ import annotations

import json
import socket
import sys
import time
from typing import Any

marks: dict[str, float] = {"main": time.time()}


def main() -> int:
    out = sys.argv.pop(1)
    from console import cli

    cli._without_typing_extensions()  # as `--once` does, before anything imports msgspec's helpers
    from console.host import client
    from console.readmodel import report
    from console.readmodel.snapshot import Snapshot

    read_line, exchange, from_dict, render = client.read_line, client.exchange, Snapshot.from_dict, report.render

    class Timed:
        def __init__(self, sock: socket.socket) -> None:
            self.sock = sock

        def recv(self, n: int) -> bytes:
            chunk = self.sock.recv(n)
            marks.setdefault("first_byte", time.time())
            return chunk

    def timed_read_line(sock: socket.socket) -> tuple[bytes | None, bytes]:
        marks["sent"] = time.time()
        got = read_line(Timed(sock))  # type: ignore[arg-type]
        marks["answer"] = time.time()
        return got

    def timed_exchange(*args: Any, **kwargs: Any) -> Any:
        got = exchange(*args, **kwargs)
        marks["decoded"] = time.time()
        return got

    def timed_from_dict(data: object) -> Snapshot:
        snap = from_dict(data)
        marks["snapshot"] = time.time()
        return snap

    def timed_render(*args: Any, **kwargs: Any) -> str:
        text = render(*args, **kwargs)
        marks["rendered"] = time.time()
        return text

    client.read_line = timed_read_line
    client.exchange = timed_exchange
    Snapshot.from_dict = timed_from_dict  # type: ignore[method-assign]
    report.render = timed_render
    try:
        return cli.main()
    finally:
        sys.stdout.flush()
        marks["end"] = time.time()
        with open(out, "a") as f:
            f.write(json.dumps(marks) + "\n")


if __name__ == "__main__":
    sys.exit(main())
