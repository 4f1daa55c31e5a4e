"""Benchmark: encoding and decoding a snapshot of a busy host (1,000 loops, 200 sidecars, 50 runs, 50
events), today's code beside the code before records were msgspec Structs, paired in one run.

    .venv/bin/python tests/bench/bench_snapshot.py [--base c22de76] [--rounds 7]

The base is checked out with `git worktree` into a temporary directory; each side builds the same
snapshot in its own interpreter (its own `console` package on PYTHONPATH) and times `to_json` (what
the engine pays per snapshot request and per watcher push) and `from_json` (what an observing console
pays per push). The sides alternate, round by round, so load on the machine hits both alike.
Target (issue 18): encoding at 1,000 loops at least 3x faster than the base. Exit 1 if missed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Runs under either tree: the base's modules were console.engine.*, today's are by concept.
PROBE = r"""
import json, sys, time
try:
    from console.readmodel.snapshot import (EngineView, EventView, HostView, LoopView, RunView, SidecarView,
                                            Snapshot, ThingView, compose)
except ImportError:
    from console.engine.snapshot import (EngineView, EventView, HostView, LoopView, RunView, SidecarView,
                                         Snapshot, ThingView, compose)

LOOPS, SIDECARS = int(sys.argv[1]), int(sys.argv[2])
now = 1_790_000_000.0
sidecars = [SidecarView(name=f"side-{i}", state="ready", pid=1000 + i, started_at=now - 60, ready_at=now - 59,
                        port=20000 + i, health="tcp", command=["/usr/bin/python3", "-m", "http.server", str(i)],
                        output_tail=[f"line {n} of sidecar {i}" for n in range(8)]) for i in range(SIDECARS)]
loops = [LoopView(id=f"loop-{i}", state="active", objective="keep the docs in sync", interval_seconds=60.0,
                  run_timeout_seconds=1800.0, next_run_at=now + i % 60, provenance="managed",
                  token_expires_at=now + 3600, last_heartbeat="live", last_heartbeat_at=now - 5)
         for i in range(LOOPS)]
runs = [RunView(id=f"01JD{i:022d}", loop_id=f"loop-{i}", status="succeeded", pid=5000 + i, queued_at=now - 90,
                started_at=now - 89, finished_at=now - 30, exit_code=0, stop_reason="completed",
                liveness="advanced", liveness_reason="3 files changed", summary="updated the index")
        for i in range(50)]
things = [ThingView(kind="loop", name=f"loop-{i}", state="active", reason="", since=now - 100, detail={})
          for i in range(LOOPS)] + [ThingView(kind="sidecar", name=f"side-{i}", state="ready", reason="",
                                              since=now - 59, detail={"port": 20000 + i}) for i in range(SIDECARS)]
events = [EventView(id=i, at=now - i, kind="loop", name=f"loop-{i}", previous="active", new="active",
                    reason="heartbeat") for i in range(50)]
snap = compose(now=now, host=HostView("bench", "/var/lib/loopctl", "/etc/loopctl.toml", True, LOOPS + SIDECARS),
               engine=EngineView(running=True, source="owner", pid=4242, started_at=now - 3600),
               things=things, events=events, sidecars=sidecars, loops=loops, runs=runs)

def best_of(fn, repeat=15):
    samples = []
    for _ in range(repeat):
        start = time.perf_counter(); fn(); samples.append(time.perf_counter() - start)
    return min(samples)

encoded = snap.to_json()
assert Snapshot.from_json(encoded) == snap
decode_ms = best_of(lambda: Snapshot.from_json(encoded)) * 1000
print(json.dumps({"encode_ms": best_of(snap.to_json) * 1000, "decode_ms": decode_ms, "bytes": len(encoded)}))
"""


def side(tree: Path, loops: int, sidecars: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}
    out = subprocess.run([sys.executable, "-c", PROBE, str(loops), str(sidecars)], env=env, cwd=tree,
                         capture_output=True, text=True, check=True)
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", default="c22de76", help="the commit to compare with (before msgspec records)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--loops", type=int, default=1000)
    parser.add_argument("--sidecars", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="loopctl-bench-base-") as tmp:
        base = Path(tmp) / "base"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-q", str(base), args.base], check=True)
        try:
            now_runs, base_runs = [], []
            for _ in range(args.rounds):
                now_runs.append(side(REPO, args.loops, args.sidecars))
                base_runs.append(side(base, args.loops, args.sidecars))
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(base)], check=False)

    def median(runs: list[dict[str, float]], key: str) -> float:
        return statistics.median(r[key] for r in runs)

    ratios = [b["encode_ms"] / n["encode_ms"] for n, b in zip(now_runs, base_runs, strict=True)]
    print(f"snapshot of {args.loops} loops, {args.sidecars} sidecars, 50 runs, 50 events; {args.rounds} paired rounds")
    for name, runs in (("today", now_runs), (f"base {args.base}", base_runs)):
        print(f"  {name:>14}: encode {median(runs, 'encode_ms'):7.2f} ms   decode {median(runs, 'decode_ms'):7.2f} ms"
              f"   {median(runs, 'bytes') / 1000:7.1f} KB")
    ratio = statistics.median(ratios)
    print(f"  encode is {ratio:.1f}x faster than the base (paired median; target >= 3x)")
    return 0 if ratio >= 3 else 1


if __name__ == "__main__":
    sys.exit(main())
