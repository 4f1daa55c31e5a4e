"""What the benchmarks share: throwaway virtualenvs, waiting on real conditions, summaries."""

from __future__ import annotations

import shutil
import signal
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_venv(where: Path, spec: str) -> Path:
    """A fresh virtualenv with `spec` installed the ordinary (non-editable) way; returns its bin/."""
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True)
    subprocess.run([str(where / "bin/pip"), "install", "-q", spec], check=True)
    return where / "bin"


def wait_for(predicate: Callable[[], object], timeout: float, what: str, step: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: timed out waiting for {what}")
        time.sleep(step)


def summary(samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p90 = ms[max(0, int(len(ms) * 0.9) - 1)]
    return f"median {statistics.median(ms):6.1f} ms   p90 {p90:6.1f} ms   max {ms[-1]:6.1f} ms"


def start_supervisord(work: Path, bin_dir: Path, program: str, command: str,
                      extra: str = "") -> tuple[subprocess.Popen[bytes], Path]:
    """supervisord (foreground) with one program, its socket under `work`. Returns (process, config)."""
    conf = work / "supervisord.conf"
    conf.write_text(textwrap.dedent(f"""
        [unix_http_server]
        file={work}/supervisor.sock
        [supervisord]
        logfile={work}/supervisord.log
        pidfile={work}/supervisord.pid
        nodaemon=true
        [rpcinterface:supervisor]
        supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
        [supervisorctl]
        serverurl=unix://{work}/supervisor.sock
        [program:{program}]
        command={command}
    """) + extra)
    proc = subprocess.Popen([str(bin_dir / "supervisord"), "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_for((work / "supervisor.sock").exists, 20, "supervisord")
    return proc, conf


def supervisord_version(bin_dir: Path) -> str:
    return subprocess.run([str(bin_dir / "supervisord"), "--version"], capture_output=True, text=True,
                          check=True).stdout.strip()


def stop_all(procs: list[subprocess.Popen[bytes]], work: Path) -> None:
    """SIGTERM everything the benchmark started, SIGKILL what lingers, remove the scratch directory."""
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    shutil.rmtree(work, ignore_errors=True)
