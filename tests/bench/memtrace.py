"""Run `python -m console ...` with tracemalloc on, dumping a snapshot every `--every` seconds, for
finding what an engine's RSS is made of when a soak sees it grow (tests/bench/soak_retention.py
--tracemalloc DIR runs the engine through this). Not a product path: the engine knows nothing of it.

    python tests/bench/memtrace.py DIR [--every 300] -- --config C run
    python tests/bench/memtrace.py --compare DIR/00600.snap DIR/03600.snap [--top 20]

Each dump is `DIR/<seconds>.snap` (tracemalloc's own format) with a line in `DIR/traced.tsv`:
seconds, traced bytes now, traced peak, RSS; Python's heap against the process's says whether growth
is Python objects or what sits under them (allocator, SQLite's page cache, thread stacks).
"""

from __future__ import annotations

import argparse
import runpy
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import psutil

FRAMES = 12


def dumper(out: Path, every: float, started: float) -> None:
    me = psutil.Process()  # the RSS as the soak reads it
    while True:
        at = round(time.monotonic() - started)
        tracemalloc.take_snapshot().dump(str(out / f"{at:05d}.snap"))
        now, peak = tracemalloc.get_traced_memory()
        with (out / "traced.tsv").open("a") as f:
            f.write(f"{at}\t{now}\t{peak}\t{me.memory_info().rss}\n")
        time.sleep(every)


def compare(before: Path, after: Path, top: int) -> None:
    old, new = tracemalloc.Snapshot.load(str(before)), tracemalloc.Snapshot.load(str(after))
    skip = [tracemalloc.Filter(False, tracemalloc.__file__),
            tracemalloc.Filter(False, "<frozen importlib._bootstrap*>")]
    old, new = old.filter_traces(skip), new.filter_traces(skip)
    total = sum(s.size for s in new.statistics("filename")) - sum(s.size for s in old.statistics("filename"))
    print(f"traced growth {before.name} -> {after.name}: {total / 1024:+.1f} KiB")
    for stat in new.compare_to(old, "traceback")[:top]:
        print(f"\n{stat.size_diff / 1024:+9.1f} KiB  {stat.count_diff:+7d} blocks  (now {stat.size / 1024:.1f} KiB)")
        for line in stat.traceback.format(limit=FRAMES, most_recent_first=True):
            print(f"    {line}")


def main() -> None:
    if "--compare" in sys.argv:
        parser = argparse.ArgumentParser()
        parser.add_argument("--compare", nargs=2, type=Path, required=True)
        parser.add_argument("--top", type=int, default=15)
        args = parser.parse_args()
        compare(*args.compare, args.top)
        return
    split = sys.argv.index("--")
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--every", type=float, default=300.0)
    args = parser.parse_args(sys.argv[1:split])
    args.out.mkdir(parents=True, exist_ok=True)
    tracemalloc.start(FRAMES)
    threading.Thread(target=dumper, args=(args.out, args.every, time.monotonic()), daemon=True,
                     name="memtrace").start()
    sys.argv = ["console", *sys.argv[split + 1:]]
    runpy.run_module("console", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
