"""Benchmark: time from `kill -9` of a ready sidecar to its port accepting connections again,
loopctl against supervisord, each supervising the same child program, side by side in one run.

    .venv/bin/python tests/bench/bench_sidecar_restart.py [--kills 15]

Each tool is installed the ordinary way into its own throwaway virtualenv (supervisor from PyPI is
not a project dependency). Kills are spaced past loopctl's 5 s stability window, so every kill is
the crash of a healthy service (restart at once) for both tools; supervisord runs with its defaults
plus autorestart=true. Targets (issue 3): loopctl's median no worse than supervisord's, and its
worst case under 0.5 s. Exit 1 if either is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import (
    REPO,
    free_port,
    make_venv,
    start_supervisord,
    stop_all,
    summary,
    supervisord_version,
    wait_for,
)

CHILD = textwrap.dedent("""
    import socket, sys, time
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(64)
    while True:
        conn, _ = s.accept(); conn.close()
""")
STABLE = 5.5  # past loopctl's stability window, so each kill counts as a first restart


def accepting(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.05):
            return True
    except OSError:
        return False


def listener(port: int) -> int | None:
    out = subprocess.run(["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True, check=False).stdout
    marker = "pid="
    if marker not in out:
        return None
    return int(out.split(marker, 1)[1].split(",", 1)[0])


def restart_latency(port: int) -> float:
    """kill -9 whoever listens on `port`; seconds until the port accepts again."""
    wait_for(lambda: listener(port) is not None and accepting(port), 30, f"a listener on {port}")
    victim = listener(port)
    assert victim is not None
    start = time.perf_counter()
    os.kill(victim, signal.SIGKILL)
    while listener(port) == victim:  # the old socket closes as the kernel tears the process down
        time.sleep(0.0005)
    while not accepting(port):
        time.sleep(0.001)
        if time.perf_counter() - start > 30:
            raise SystemExit(f"bench: port {port} never came back")
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kills", type=int, default=15)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="loopctl-bench-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        print("bench: installing supervisor and loopctl into temporary virtualenvs ...", flush=True)
        sv = make_venv(work / "sv", "supervisor")
        lc = make_venv(work / "lc", str(REPO))
        child = work / "child.py"
        child.write_text(CHILD)
        sv_port, lc_port = free_port(), free_port()

        supervisord, _conf = start_supervisord(work, sv, "child", f"{sys.executable} {child} {sv_port}",
                                               extra="autorestart=true\n")
        procs.append(supervisord)
        lc_conf = work / "loopctl.toml"
        lc_conf.write_text(textwrap.dedent(f"""
            [[sidecar]]
            name = "child"
            command = {json.dumps([sys.executable, str(child), str(lc_port)])}
            port = {lc_port}
            health = "tcp"
        """))
        env = {**os.environ, "LOOPCTL_HOME": str(work / "state")}
        procs.append(subprocess.Popen([str(lc / "loopctl"), "--config", str(lc_conf), "run"], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for port in (sv_port, lc_port):
            wait_for(lambda p=port: accepting(p), 30, f"port {port}")
        time.sleep(STABLE)

        ours: list[float] = []
        theirs: list[float] = []
        for _ in range(args.kills):  # alternate, so load on the machine hits both alike
            theirs.append(restart_latency(sv_port))
            ours.append(restart_latency(lc_port))
            time.sleep(STABLE)
        version = supervisord_version(sv)
        print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, {args.kills} kills each, alternated")
        print(f"loopctl run            {summary(ours)}")
        print(f"supervisord {version:<10} {summary(theirs)}")
        median_ok = statistics.median(ours) <= statistics.median(theirs)
        worst_ok = max(ours) < 0.5
        print(f"target median <= supervisord's: {'met' if median_ok else 'MISSED'}; "
              f"worst < 500 ms: {'met' if worst_ok else 'MISSED'}")
        return 0 if median_ok and worst_ok else 1
    finally:
        stop_all(procs, work)


if __name__ == "__main__":
    sys.exit(main())
