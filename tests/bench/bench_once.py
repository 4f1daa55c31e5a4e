"""Benchmark: `loopctl --once --format json` against a running `loopctl run`, side by side with
`supervisorctl status` against a running supervisord, on the same machine in the same run.

    .venv/bin/python tests/bench/bench_once.py [--runs 40] [--base COMMIT]

Both tools are installed the same way, each into a throwaway virtualenv made by this script: a
regular (non-editable) `pip install` of this checkout, and supervisor from PyPI (not a project
dependency). The two commands are timed alternately so load on the machine hits both alike.
Target (issue 2): loopctl's median no slower than supervisorctl's. Exit 1 if missed.

With `--base COMMIT` (for issue 18: `c22de76`, the code before records were msgspec Structs) that
commit is installed too (from a `git worktree`), runs its own engine on its own empty host, and its
`--once` is timed in the same alternation. Target: this checkout's median no slower than the base's
(within 2 %, the spread of a median of alternated runs here). Exit 1 if missed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import (
    REPO,
    make_venv,
    start_supervisord,
    stop_all,
    summary,
    supervisord_version,
    wait_for,
)


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(argv, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - start
    if result.returncode not in (0,):
        raise SystemExit(f"bench: {argv[0]} failed ({result.returncode}): {result.stderr.decode()[:300]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--base", default="", help="a commit whose --once is timed beside this checkout's")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="loopctl-bench-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        print("bench: installing supervisor and loopctl into temporary virtualenvs ...", flush=True)
        sv = make_venv(work / "sv", "supervisor")
        make_venv(work / "lc", str(REPO))
        base_once: list[str] = []
        base_env: dict[str, str] = {}
        if args.base:
            tree = work / "base-tree"
            subprocess.run(["git", "-C", str(REPO), "worktree", "add", "-q", "--detach", str(tree), args.base],
                           check=True)
            try:
                make_venv(work / "base", str(tree))
            finally:
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], check=False)
            base_env = {**os.environ, "LOOPCTL_HOME": str(work / "base-home"),
                        "XDG_CONFIG_HOME": str(work / "base-config")}
            base_loopctl = str(work / "base/bin/loopctl")
            procs.append(subprocess.Popen([base_loopctl, "run"], env=base_env, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL))
            wait_for((work / "base-home/engine.sock").exists, 20, "the base's loopctl run")
            base_once = [base_loopctl, "--once", "--format", "json"]
        version = supervisord_version(sv)
        supervisord, conf = start_supervisord(work, sv, "sleeper", "sleep 3600")
        procs.append(supervisord)

        env = {**os.environ, "LOOPCTL_HOME": str(work / "loopctl"), "XDG_CONFIG_HOME": str(work / "config")}
        loopctl = str(work / "lc/bin/loopctl")
        procs.append(subprocess.Popen([loopctl, "run"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_for((work / "loopctl/engine.sock").exists, 20, "loopctl run")

        ctl = [str(work / "sv/bin/supervisorctl"), "-c", str(conf), "status"]
        once = [loopctl, "--once", "--format", "json"]
        wait_for(lambda: b"RUNNING" in subprocess.run(ctl, capture_output=True, check=False).stdout, 20,
                 "supervisord's program to run")
        for _ in range(3):  # warm the page cache for each
            timed(ctl, env)
            timed(once, env)
            if base_once:
                timed(base_once, base_env)
        ours, theirs, base = [], [], []
        for _ in range(args.runs):
            ours.append(timed(once, env))
            theirs.append(timed(ctl, env))
            if base_once:
                base.append(timed(base_once, base_env))
        print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, {args.runs} runs each, alternated")
        print(f"loopctl --once --format json   {summary(ours)}")
        print(f"supervisorctl status ({version:>6})  {summary(theirs)}")
        ok = statistics.median(ours) <= statistics.median(theirs)
        print(f"target (loopctl median <= supervisorctl median): {'met' if ok else 'MISSED'}")
        if base_once:
            print(f"loopctl --once at {args.base:<10}     {summary(base)}")
            kept = statistics.median(ours) <= statistics.median(base) * 1.02
            print(f"target (median no slower than {args.base}'s, within 2 %): {'met' if kept else 'MISSED'}")
            ok = ok and kept
        return 0 if ok else 1
    finally:
        stop_all(procs, work)


if __name__ == "__main__":
    sys.exit(main())
