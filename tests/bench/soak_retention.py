"""Soak: a real `loopctl run` doing 20 runs/s for an hour, with retention set small in `[host]`, and a
chatty sidecar; the host is quiet otherwise (nothing asks it for a snapshot, as on a host nobody watches).

    .venv/bin/python tests/bench/soak_retention.py [--duration 3600] [--rate 20] [--loops 50]

Targets (issue 19), each checked after the retention horizon (the first `--warmup` seconds, default
the first 10 minutes, a sixth of a shorter soak):
- disk under `<state>/runs/` flat (its run directories and their bytes);
- the database flat (`loopctl.db` with its WAL);
- the chatty sidecar's log never over its cap (sampled every `--sample` seconds);
- the engine's RSS within +-5 MiB of what it was at the horizon.
The soak must also be one: the achieved rate at least 90 % of `--rate`. "Flat" is: the median of the
last fifth of the samples after the horizon at most 10 % (or a small floor) over the median of the
first fifth. Exit 1 while any is missed.

Everything is read from outside: the file system, the database opened read-only, the engine's
process by psutil. `tests/bench/test_soak_retention.py` runs a 20-second version in the suite.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from console.runs.retention import PERIOD_SECONDS

MiB = 1024 * 1024
RUN_SECONDS = 0.15  # one run of HANDOFF, queued to settled, on the 2-core machine (median 0.12 s)
HANDOFF = 'echo \'{"summary": "ok", "evidence": {"commits": ["abc"]}}\' > "$LOOPCTL_HANDOFF"'
# A sidecar that writes `rate` bytes a second to its output, 20 chunks a second, forever.
CHATTY = """
import sys, time
line = b"chatty sidecar: " + b"x" * 1007 + b"\\n"
chunk = line * max(1, int(sys.argv[1]) // 1024 // 20)
while True:
    sys.stdout.buffer.write(chunk)
    sys.stdout.flush()
    time.sleep(0.05)
"""


@dataclass
class Sample:
    at: float  # seconds since the engine started
    run_dirs: int
    runs_bytes: int
    db_bytes: int
    log_bytes: int
    log1_bytes: int
    rss: int
    runs_total: int
    events: int


@dataclass
class Check:
    name: str
    figure: str
    target: str
    ok: bool


@dataclass
class Soak:
    duration: float = 3600.0
    rate: float = 20.0
    loops: int = 100
    keep_runs_per_loop: int = 5
    keep_events: int = 1000
    chatty_bytes_per_second: int = 64 * 1024
    log_cap: int = 8 * MiB  # the chatty sidecar's log_max_bytes (8 MiB is the default)
    sample_every: float = 10.0
    warmup: float | None = None  # default: min(600, duration / 6)
    retention_period: float | None = None  # seconds between passes (testing knob); None: the engine's own
    tracemalloc: Path | None = None  # run the engine under tests/bench/memtrace.py, dumping here
    rss_tolerance: int = 5 * MiB
    samples: list[Sample] = field(default_factory=list)

    @property
    def interval(self) -> float:
        """Each loop's pause: a loop's cycle is its run (about RUN_SECONDS here, queued to settled) and
        its pause, so `loops` loops make `rate` runs a second."""
        return max(0.05, self.loops / self.rate - RUN_SECONDS)

    @property
    def horizon(self) -> float:
        """The later of the warm-up and the retention horizon: every loop past its newest N runs, and
        two retention passes since."""
        warmup = self.warmup if self.warmup is not None else min(600.0, self.duration / 6)
        filled = (self.keep_runs_per_loop + 1) * (self.interval + RUN_SECONDS) * 1.5
        return max(warmup, filled + 2 * (self.retention_period or PERIOD_SECONDS))


def config(work: Path, soak: Soak) -> Path:
    interval = soak.interval
    lines = ["[host]", f"keep_runs_per_loop = {soak.keep_runs_per_loop}", "keep_runs_days = 0",
             f"keep_events = {soak.keep_events}", "",
             "[[sidecar]]", 'name = "chatty"',
             f"command = {json.dumps([sys.executable, '-c', CHATTY, str(soak.chatty_bytes_per_second)])}",
             f"log_max_bytes = {soak.log_cap}", ""]
    for i in range(soak.loops):
        lines += ["[[loop]]", f'id = "soak-{i}"', f"command = {json.dumps(['sh', '-c', HANDOFF])}",
                  f"interval_seconds = {interval}", ""]
    path = work / "loopctl.toml"
    path.write_text("\n".join(lines))
    return path


def disk_usage(root: Path) -> tuple[int, int]:
    """(directories directly under root, bytes allocated under it), without following links."""
    dirs = 0
    with contextlib.suppress(FileNotFoundError):
        dirs = sum(entry.is_dir(follow_symlinks=False) for entry in os.scandir(root))
    return dirs, allocated(root)


def allocated(path: Path) -> int:
    total = 0
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for entry in os.scandir(path):
            with contextlib.suppress(FileNotFoundError):
                total += entry.stat(follow_symlinks=False).st_blocks * 512
                if entry.is_dir(follow_symlinks=False):
                    total += allocated(Path(entry.path))
    return total


def file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def events_kept(db: Path) -> int:
    with contextlib.suppress(sqlite3.Error):
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return int(conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])
        finally:
            conn.close()
    return 0


class Journal:
    """Runs queued so far, counted from the engine's journal (one line per transition): the ledger
    forgets what retention prunes, the journal is the bench's own file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.partial = b""
        self.queued = 0

    def runs(self) -> int:
        with contextlib.suppress(FileNotFoundError), self.path.open("rb") as f:
            f.seek(self.offset)
            data = self.partial + f.read()
            self.offset = f.tell()
            cut = data.rfind(b"\n") + 1
            self.partial = data[cut:]
            self.queued += data[:cut].count(b" new -> queued: ")
        return self.queued


def sample(state: Path, engine: psutil.Process, journal: Journal, started: float) -> Sample:
    run_dirs, runs_bytes = disk_usage(state / "runs")
    db = state / "loopctl.db"
    log = state / "sidecars" / "chatty.log"
    return Sample(at=time.monotonic() - started, run_dirs=run_dirs, runs_bytes=runs_bytes,
                  db_bytes=file_size(db) + file_size(db.with_name(db.name + "-wal")),
                  log_bytes=file_size(log), log1_bytes=file_size(log.with_name(log.name + ".1")),
                  rss=engine.memory_info().rss, runs_total=journal.runs(), events=events_kept(db))


def run_soak(work: Path, soak: Soak, progress: Callable[[str], None] = lambda _line: None) -> Soak:
    """Run the engine for `soak.duration` seconds and fill `soak.samples`. Ends every process it started."""
    state = work / "state"
    state.mkdir(mode=0o700)
    cfg = config(work, soak)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOOPCTL_", "XDG_"))}
    env |= {"LOOPCTL_HOME": str(state), "HOME": str(work), "XDG_CONFIG_HOME": str(work)}
    if soak.retention_period is not None:
        env |= {"LOOPCTL_TESTING": "1", "LOOPCTL_RETENTION_PERIOD": str(soak.retention_period)}
    with (work / "engine.log").open("ab") as log:
        launch = [sys.executable, "-m", "console"] if soak.tracemalloc is None else [
            sys.executable, str(Path(__file__).with_name("memtrace.py")), str(soak.tracemalloc),
            "--every", str(soak.warmup or 300), "--"]
        proc = subprocess.Popen([*launch, "--config", str(cfg), "run"], env=env,
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    started = time.monotonic()
    try:
        engine = psutil.Process(proc.pid)
        journal = Journal(work / "engine.log")
        deadline = started + 30
        while not (state / "engine.sock").exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"soak: the engine did not start; see {work / 'engine.log'}")
            time.sleep(0.05)
        next_at = started
        last_line = started
        while time.monotonic() - started < soak.duration:
            if proc.poll() is not None:
                raise SystemExit(f"soak: the engine exited {proc.returncode}; see {work / 'engine.log'}")
            soak.samples.append(sample(state, engine, journal, started))
            if time.monotonic() - last_line >= 60 or len(soak.samples) == 1:
                last_line = time.monotonic()
                s = soak.samples[-1]
                progress(f"soak: {s.at:6.0f} s  runs {s.runs_total:7d}  run dirs {s.run_dirs:6d} "
                         f"({s.runs_bytes / MiB:6.1f} MiB)  db {s.db_bytes / MiB:6.1f} MiB  "
                         f"log {s.log_bytes / MiB:6.1f} MiB  rss {s.rss / MiB:5.1f} MiB")
            next_at += soak.sample_every
            time.sleep(max(0.0, next_at - time.monotonic()))
        soak.samples.append(sample(state, engine, journal, started))
    finally:
        stop_engine(proc)
    return soak


def stop_engine(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (the engine stops its runs and sidecars), SIGKILL if it lingers, then any of its children
    left behind (ours: the engine's own descendants, found before it is gone)."""
    if proc.poll() is None:
        with contextlib.suppress(psutil.NoSuchProcess):
            children = psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        _gone, alive = psutil.wait_procs(children, timeout=5)
        for child in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()


def flat(values: list[float], floor: float) -> tuple[bool, float, float]:
    """(flat, first, last): the last fifth's median at most 10 % (or `floor`) over the first fifth's."""
    fifth = max(1, len(values) // 5)
    first, last = statistics.median(values[:fifth]), statistics.median(values[-fifth:])
    return last - first <= max(0.1 * first, floor), first, last


def checks(soak: Soak) -> list[Check]:
    after = [s for s in soak.samples if s.at >= soak.horizon]
    if len(after) < 5:
        return [Check("samples after the horizon", str(len(after)), ">= 5", False)]
    span = after[-1].at - after[0].at
    rate = (after[-1].runs_total - after[0].runs_total) / span if span > 0 else 0.0
    out = [Check("runs/s after the horizon", f"{rate:.1f}", f">= {0.9 * soak.rate:.1f}", rate >= 0.9 * soak.rate)]
    ok, first, last = flat([s.run_dirs for s in after], floor=soak.loops)
    out.append(Check("run directories under runs/", f"{first:.0f} -> {last:.0f}", "flat", ok))
    ok, first, last = flat([s.runs_bytes for s in after], floor=MiB)
    out.append(Check("disk under runs/", f"{first / MiB:.1f} -> {last / MiB:.1f} MiB", "flat", ok))
    ok, first, last = flat([s.db_bytes for s in after], floor=2 * MiB)
    out.append(Check("loopctl.db + WAL", f"{first / MiB:.1f} -> {last / MiB:.1f} MiB", "flat", ok))
    ok, first, last = flat([s.events for s in after], floor=soak.keep_events)
    out.append(Check("events kept", f"{first:.0f} -> {last:.0f}", f"flat (keep_events {soak.keep_events})", ok))
    biggest = max(max(s.log_bytes, s.log1_bytes) for s in soak.samples)
    written = soak.chatty_bytes_per_second * soak.samples[-1].at
    out.append(Check("chatty sidecar's log, largest seen", f"{biggest / MiB:.1f} MiB (wrote ~{written / MiB:.0f} MiB)",
                     f"<= cap {soak.log_cap / MiB:.0f} MiB", biggest <= soak.log_cap))
    base = after[0].rss
    drift = max(abs(s.rss - base) for s in after)
    out.append(Check("engine RSS after the horizon", f"{base / MiB:.1f} MiB, drift {drift / MiB:+.1f} MiB max",
                     f"+-{soak.rss_tolerance / MiB:.0f} MiB", drift <= soak.rss_tolerance))
    return out


def table(soak: Soak, found: list[Check]) -> str:
    lines = [f"soak: {soak.duration:.0f} s, {soak.loops} loops at {soak.rate:g} runs/s asked, "
             f"keep_runs_per_loop={soak.keep_runs_per_loop}, keep_runs_days=0, keep_events={soak.keep_events}, "
             f"chatty sidecar {soak.chatty_bytes_per_second / 1024:.0f} KiB/s, horizon {soak.horizon:.0f} s, "
             f"retention pass every {soak.retention_period or PERIOD_SECONDS:g} s; {os.cpu_count()} cores, "
             f"Python {sys.version.split()[0]}, load average {os.getloadavg()[0]:.1f}",
             f"{'measure':<38} {'figure':<42} {'target':<28} result"]
    lines += [f"{c.name:<38} {c.figure:<42} {c.target:<28} {'met' if c.ok else 'MISSED'}" for c in found]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=3600.0, help="seconds (default one hour)")
    parser.add_argument("--rate", type=float, default=20.0, help="runs a second asked for (loops / interval)")
    parser.add_argument("--loops", type=int, default=100)
    parser.add_argument("--keep-runs-per-loop", type=int, default=5)
    parser.add_argument("--keep-events", type=int, default=1000)
    parser.add_argument("--chatty", type=int, default=64 * 1024, help="the chatty sidecar's bytes a second")
    parser.add_argument("--log-cap", type=int, default=8 * MiB, help="the chatty sidecar's log_max_bytes")
    parser.add_argument("--sample", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--warmup", type=float, default=None, help="the horizon, seconds (default min(600, d/6))")
    parser.add_argument("--retention-period", type=float, default=None,
                        help="seconds between retention passes (LOOPCTL_TESTING knob; default the engine's 60 s)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory (its path is printed)")
    parser.add_argument("--samples-json", type=Path, help="write every sample here")
    parser.add_argument("--tracemalloc", type=Path, metavar="DIR",
                        help="run the engine with tracemalloc, a snapshot every --warmup s (default 300) into DIR")
    args = parser.parse_args()
    soak = Soak(duration=args.duration, rate=args.rate, loops=args.loops, keep_runs_per_loop=args.keep_runs_per_loop,
                keep_events=args.keep_events, chatty_bytes_per_second=args.chatty, log_cap=args.log_cap,
                sample_every=args.sample,
                warmup=args.warmup, retention_period=args.retention_period, tracemalloc=args.tracemalloc)
    work = Path(tempfile.mkdtemp(prefix="loopctl-soak-"))
    print(f"soak: scratch directory {work}", flush=True)
    try:
        run_soak(work, soak, progress=lambda line: print(line, flush=True))
    finally:
        if args.samples_json is not None:
            args.samples_json.write_text(json.dumps([s.__dict__ for s in soak.samples]))
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    found = checks(soak)
    print(table(soak, found))
    return 0 if all(c.ok for c in found) else 1


if __name__ == "__main__":
    sys.exit(main())
