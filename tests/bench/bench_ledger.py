"""Benchmark: the run ledger at 100,000 runs.

    .venv/bin/python tests/bench/bench_ledger.py [--runs 100000]

Measures "latest 50 runs of loop X" and "runs by liveness" (each under 10 ms is the target), shows
the query plans, and compares the resident memory of a real `loopctl run` engine over an empty
ledger and over the full one, after it has served snapshots (target: flat; runs are never all
loaded). The ledger is filled with one bulk transaction straight into the table: the engine's
transition path fsyncs every write, which is right for real runs and pointless for 100,000 fakes.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from console.core.fake_clock import FakeClock
from console.core.store import Store
from console.runs.ledger import COLUMNS, RunIds, latest_runs, runs_by_liveness

LIVENESS = ["advanced", "advanced", "advanced", "completed", "plan_only", "empty_response", "needs_followup",
            "failed", "blocked"]


def fill(db: Path, count: int, loops: int) -> None:
    store = Store.open(db, FakeClock())  # creates the schema
    store.close()
    ids = RunIds()
    rnd = random.Random(7)
    start = 1_767_225_600.0
    rows = []
    for i in range(count):
        at = start + i * 37.0
        run_id = ids.new(at)
        row = dict.fromkeys(COLUMNS)
        row.update(id=run_id, loop_id=f"loop-{rnd.randrange(loops)}", status="succeeded", queued_at=at,
                   started_at=at + 1, finished_at=at + 30, exit_code=0, stop_reason="completed",
                   timeout_configured=1, timeout_fired=0, effective_timeout_sec=1800.0,
                   liveness=rnd.choice(LIVENESS), liveness_reason="evidence: 2 files changed, 1 commit, 0 artifacts",
                   continuation_attempt=0, chain_id=run_id, process_loss_retry_count=0,
                   cmdline=json.dumps(["agent", "--run"]), summary="did the thing " * 5)
        rows.append(tuple(row[c] for c in COLUMNS))
    conn = sqlite3.connect(db)
    with conn:
        conn.executemany(f"INSERT INTO runs ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})", rows)
    conn.execute("ANALYZE")
    conn.close()


def timed(fn, repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return samples


def ms(samples: list[float]) -> str:
    s = sorted(x * 1000 for x in samples)
    return f"median {statistics.median(s):6.3f} ms   p99 {s[int(len(s) * 0.99) - 1]:6.3f} ms   max {s[-1]:6.3f} ms"


def engine_rss(state: Path, snapshots: int) -> int:
    """RSS (KiB) of a real engine after start-up and `snapshots` --once answers."""
    env = {**os.environ, "LOOPCTL_HOME": str(state), "XDG_CONFIG_HOME": str(state.parent / "cfg")}
    loopctl = [sys.executable, "-m", "console"]
    proc = subprocess.Popen([*loopctl, "run"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not (state / "engine.sock").exists():
            if time.monotonic() > deadline:
                raise SystemExit("bench: the engine did not start")
            time.sleep(0.05)
        for _ in range(snapshots):
            subprocess.run([*loopctl, "--once", "--format", "json"], env=env, capture_output=True, check=False)
        with open(f"/proc/{proc.pid}/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--loops", type=int, default=20)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="loopctl-ledger-"))
    try:
        big, empty = work / "big", work / "empty"
        big.mkdir(mode=0o700)
        empty.mkdir(mode=0o700)
        t = time.perf_counter()
        fill(big / "loopctl.db", args.runs, args.loops)
        print(f"filled {args.runs} runs over {args.loops} loops in {time.perf_counter() - t:.1f} s "
              f"({(big / 'loopctl.db').stat().st_size / 1e6:.1f} MB)")
        store = Store.open(big / "loopctl.db", FakeClock())
        latest = timed(lambda: latest_runs(store, "loop-7", 50), 300)
        by_liveness = timed(lambda: runs_by_liveness(store, "plan_only", 50), 300)
        queries = (("latest 50 of a loop", "SELECT * FROM runs WHERE loop_id = 'loop-7' ORDER BY id DESC LIMIT 50"),
                   ("runs by liveness", "SELECT * FROM runs WHERE liveness = 'plan_only' ORDER BY id DESC LIMIT 50"))
        for label, sql in queries:
            plan = " / ".join(row[3] for row in store.rows(f"EXPLAIN QUERY PLAN {sql}"))
            print(f"plan, {label}: {plan}")
        store.close()
        print(f"latest 50 runs of loop-7:  {ms(latest)}")
        print(f"runs by liveness:          {ms(by_liveness)}")
        rss_empty = engine_rss(empty, 20)
        rss_big = engine_rss(big, 20)
        print(f"engine RSS after 20 snapshots: empty ledger {rss_empty / 1024:.1f} MiB, "
              f"{args.runs} runs {rss_big / 1024:.1f} MiB (difference {(rss_big - rss_empty) / 1024:+.1f} MiB)")
        fast = statistics.median(latest) < 0.010 and statistics.median(by_liveness) < 0.010
        flat = rss_big - rss_empty < 16 * 1024
        print(f"target: both queries under 10 ms: {'met' if fast else 'MISSED'}; "
              f"memory flat (< 16 MiB more): {'met' if flat else 'MISSED'}")
        return 0 if fast and flat else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
