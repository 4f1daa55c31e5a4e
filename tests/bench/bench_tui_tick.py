"""Benchmark: the console's own CPU per 1 s tick and per snapshot push at 1,000 loops, Loops tab in
view, 120x40, in a headless Textual app (Pilot), today's code beside a base commit's, paired.

    .venv/bin/python tests/bench/bench_tui_tick.py [--base cde1fd9] [--loops 1000] [--rounds 3]

Each side runs in its own interpreter with its own `console` package on PYTHONPATH (the base checked
out with `git worktree`, as bench_snapshot.py does) over the same synthetic snapshot: loops whose next
runs are spread over a minute. A tick is the console's `_tick` at the next second, a push a snapshot in
which 20 loops started a run and 20 others ended theirs; each is timed in process CPU through the
frame it causes (Textual's idle pass and repaint). The sides alternate round by round. No target: the
figures of record are bench_tui_scale.py's, in tmux against a real engine; this one isolates the
console from the engine and the machine's load, and counts the cells a tick hands the table.
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

PROBE = r"""
import asyncio, json, sys, time
from console.core.fake_clock import FakeClock
from console.readmodel.snapshot import EngineView, HostView, LoopView, compose
from console.tui.app import LoopctlApp
from console.tui.source import FixedSource
from textual.widgets import DataTable

LOOPS, STEPS, CHANGED = int(sys.argv[1]), int(sys.argv[2]), 20
T0 = 1_790_000_000.0

def snap_at(k):
    loops = [LoopView(id=f"loop-{i}", state="active", objective="o", interval_seconds=60.0,
                      run_timeout_seconds=1800.0, next_run_at=T0 + 5 + (i * 7) % 60, provenance="managed",
                      current_run=(f"01JD{i:022d}" if (i // CHANGED) == k % (LOOPS // CHANGED) else None))
             for i in range(LOOPS)]
    return compose(now=T0, host=HostView("bench", "/var/lib/loopctl", "/etc/loopctl.toml", True, LOOPS),
                   engine=EngineView(running=True, source="owner", pid=4242, started_at=T0 - 3600),
                   things=[], events=[], sidecars=[], loops=loops, runs=[])

writes = [0]
real_update = DataTable.update_cell
def counted(self, *a, **k):
    writes[0] += 1
    return real_update(self, *a, **k)
DataTable.update_cell = counted

async def main():
    snaps = [snap_at(k) for k in range(STEPS + 1)]
    clock = FakeClock(start=T0)
    app = LoopctlApp(FixedSource(snaps[0]), paths=None, clock=clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("3")
        for _ in range(20):
            await pilot.pause(0.05)
        table = app.query_one("#table-loops")
        written = lambda: writes[0] + getattr(table, "cells_written", 0)
        before, tick_cpu = written(), 0.0
        for _ in range(STEPS):
            clock.advance(1.0)
            start = time.process_time()
            app._tick()
            await pilot.pause(); await pilot.pause()
            tick_cpu += time.process_time() - start
        tick_cells = (written() - before) / STEPS
        push_cpu = 0.0
        for snap in snaps[1:]:
            start = time.process_time()
            app.show_snapshot(snap)
            await pilot.pause(); await pilot.pause()
            push_cpu += time.process_time() - start
        print(json.dumps({"tick_ms": tick_cpu / STEPS * 1000, "tick_cells": tick_cells,
                          "push_ms": push_cpu / STEPS * 1000}))
asyncio.run(main())
"""


def side(tree: Path, loops: int, steps: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run([sys.executable, "-c", PROBE, str(loops), str(steps)], env=env, cwd=tree,
                         capture_output=True, text=True, check=True)
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", default="cde1fd9")
    parser.add_argument("--loops", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=20, help="ticks and pushes timed per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="loopctl-bench-base-") as tmp:
        base = Path(tmp) / "base"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-q", str(base), args.base], check=True)
        try:
            now_runs, base_runs = [], []
            for _ in range(args.rounds):
                now_runs.append(side(REPO, args.loops, args.steps))
                base_runs.append(side(base, args.loops, args.steps))
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(base)], check=False)

    def median(runs: list[dict[str, float]], key: str) -> float:
        return statistics.median(r[key] for r in runs)

    print(f"{args.loops} loops, Loops tab, 120x40 headless; {args.rounds} paired rounds of {args.steps} ticks "
          f"and {args.steps} pushes; load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    for name, runs in (("today", now_runs), (f"base {args.base}", base_runs)):
        print(f"  {name:>14}: tick {median(runs, 'tick_ms'):6.1f} ms CPU, {median(runs, 'tick_cells'):6.1f} cells "
              f"written   push {median(runs, 'push_ms'):6.1f} ms CPU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
