"""Benchmark: the console observing a host at scale (1,000 loops on a 60 s interval, 200 sidecars), Loops
tab in view, in a 120x40 tmux.

    .venv/bin/python tests/bench/bench_tui_scale.py [--loops 1000] [--sidecars 200] [--interval 60] [--window 60]
                                                     [--base COMMIT]
    short: .venv/bin/python tests/bench/bench_tui_scale.py --loops 100 --sidecars 20 --interval 10 --window 15

The host is bench_scale.py's (a real `loopctl run`, each sidecar a tiny TCP listener on a loopback port,
each loop a `sh` writing its handoff), run until its start-up is done (every sidecar ready, every loop's
first run finished). Then:
1. first frame: from starting `loopctl` in a fresh 120x40 tmux session to the tray with the owner's data
   on screen (target: median < 0.5 s), `--frames` times, interleaved with a bare Textual app (the floor);
2. the console's CPU over `--window` seconds (default 60, the loops' interval, so the window spans one of
   their bursts: the bench checks it saw loops running in it) with the Loops tab in view (target < 5 %
   of a core).
Exit 1 while a target is missed. `--base COMMIT` also installs that commit (checked out with `git
worktree`, as bench_snapshot.py does) and runs its console beside this checkout's: first frames
interleaved with both, and both consoles observing the host through the same CPU window, each in a
tmux session of its own (a pair no drift of the machine's speed can split). `--profile DIR` records the
console with py-spy (if installed) through the CPU window (the figure is then the console's with py-spy
reading it) and prints where its main thread spends its time.

The console is started as the README installs it: a virtualenv of its own made by this script with a
regular `pip install` of this checkout, `loopctl` from its bin/, run from a directory of its own, as in
bench_tui.py. The tmux server is the bench's own (`-L`), its sessions named by `--tmux-prefix`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_scale import (
    LISTENER_PL,
    LISTENER_PY,
    Host,
    Profiler,
    _has_perl,
    counts,
    distinct_ports,
    profile_summary,
    snapshot,
)
from bench_tui import FLOOR_APP
from harness import REPO, make_venv, stop_all, wait_for


class Tmux:
    """A tmux server of the bench's own, never a stale one, with a keeper session that holds it up."""

    def __init__(self, prefix: str) -> None:
        self.socket = f"{prefix}-{os.getpid()}"
        self.pane = f"{prefix}-console"
        self.keeper = f"{prefix}-keeper"

    def __call__(self, *args: str, check: bool = False) -> str:
        result = subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=False)
        if check and result.returncode != 0:
            raise SystemExit(f"bench: tmux {args[0]} failed: {result.stderr.strip()}")
        return result.stdout

    def screen(self, pane: str | None = None) -> str:
        return self("capture-pane", "-p", "-t", pane or self.pane)

    def pane_pid(self, pane: str | None = None) -> int | None:
        pid = self("display-message", "-p", "-t", pane or self.pane, "#{pane_pid}").strip()
        return int(pid) if pid.isdigit() else None

    def first_frame(self, command: str, marker: str, pane: str | None = None) -> float:
        """Seconds from starting `command` in a fresh 120x40 session to `marker` on its screen."""
        pane = pane or self.pane
        previous: list[psutil.Process] = []
        pid = self.pane_pid(pane)
        if pid is not None:
            with contextlib.suppress(psutil.NoSuchProcess):
                previous = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
        self("kill-session", "-t", pane)
        psutil.wait_procs(previous, timeout=10)  # its exit must not compete with this start
        start = time.perf_counter()
        self("new-session", "-d", "-s", pane, "-x", "120", "-y", "40", command, check=True)
        while marker not in self.screen(pane):
            time.sleep(0.005)
            if time.perf_counter() - start > 30:
                raise SystemExit(f"bench: no first frame from {command!r}; screen:\n{self.screen(pane)}")
        return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--loops", type=int, default=1000)
    parser.add_argument("--sidecars", type=int, default=200)
    parser.add_argument("--interval", type=float, default=60.0)
    parser.add_argument("--window", type=float, default=60.0, help="seconds of console CPU measured")
    parser.add_argument("--frames", type=int, default=7, help="first frames measured (each beside the floor's)")
    parser.add_argument("--tmux-prefix", default="loopctl-bench")
    parser.add_argument("--profile", type=Path, help="py-spy the console through the CPU window, into this directory")
    parser.add_argument("--base", help="a commit whose console runs beside this checkout's (paired)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="loopctl-tui-scale-"))
    tmux = Tmux(args.tmux_prefix)
    procs: list[subprocess.Popen[bytes]] = []
    host = None
    profiler = Profiler(args.profile)
    try:
        print("bench: installing loopctl into a temporary virtualenv ...", flush=True)
        bin_dir = make_venv(work / "venv", str(REPO))
        base_bin = None
        if args.base:
            tree = work / "base-tree"
            subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-q", str(tree), args.base],
                           check=True)
            try:
                base_bin = make_venv(work / "base-venv", str(tree))
            finally:
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], check=False)
        script = work / ("listener.pl" if _has_perl() else "listener.py")
        script.write_text(LISTENER_PL if script.suffix == ".pl" else LISTENER_PY)
        listener = ["perl", str(script)] if script.suffix == ".pl" else [sys.executable, str(script)]
        host = Host("host", work / "host", str(bin_dir / "loopctl"), loops=args.loops,
                    sidecars=distinct_ports(args.sidecars), interval=args.interval)
        host.write_config(listener)
        print(f"bench: {args.loops} loops every {args.interval:g} s and {args.sidecars} sidecars, start-up ...",
              flush=True)
        procs.append(host.start())

        def started_up() -> bool:
            if host.proc is not None and host.proc.poll() is not None:
                raise SystemExit(f"bench: the engine exited {host.proc.returncode}: {host.root / 'engine.log'}")
            snap = snapshot(host.sock)
            if snap is None:
                return False
            _running, ready, first_runs = counts(snap)
            return bool(ready == args.sidecars and first_runs == args.loops)

        wait_for(started_up, 1800, "the host's start-up", step=0.5)
        print(f"bench: start-up done at {time.monotonic() - host.started:.1f} s", flush=True)

        tmux("new-session", "-d", "-s", tmux.keeper, "sleep 86400", check=True)
        env = " ".join(f"{k}={v}" for k, v in host.env.items() if k in ("LOOPCTL_HOME", "XDG_CONFIG_HOME", "HOME"))
        console_cmd = f"env -C {work} {env} {bin_dir / 'loopctl'}"
        floor = work / "floor.py"
        floor.write_text(FLOOR_APP)
        base_cmd = f"env -C {work} {env} {base_bin / 'loopctl'}" if base_bin is not None else None
        base_pane = f"{args.tmux_prefix}-base"
        firsts, floors, base_firsts = [], [], []
        for _ in range(args.frames):  # interleaved: the machine's speed drifts, all see the same drift
            firsts.append(tmux.first_frame(console_cmd, "observer of pid"))
            if base_cmd is not None:
                base_firsts.append(tmux.first_frame(base_cmd, "observer of pid", base_pane))
            floors.append(tmux.first_frame(f"{bin_dir / 'python'} {floor}", "hello floor"))
        panes = [tmux.pane] + ([base_pane] if base_cmd is not None else [])
        tmux.first_frame(console_cmd, "observer of pid")  # the consoles whose CPU is measured
        if base_cmd is not None:
            tmux.first_frame(base_cmd, "observer of pid", base_pane)
        consoles = []
        for pane in panes:
            pid = tmux.pane_pid(pane)
            assert pid is not None
            consoles.append(psutil.Process(pid))
            assert consoles[-1].cmdline()[-1].endswith("loopctl"), consoles[-1].cmdline()
            tmux("send-keys", "-t", pane, "3")
        for pane in panes:
            wait_for(lambda pane=pane: "loop-0" in tmux.screen(pane) or "loop-1" in tmux.screen(pane), 30,
                     "the Loops tab")
        console = consoles[0]
        time.sleep(3)  # settle

        running: list[int] = []
        stop = threading.Event()

        def watch_host() -> None:  # what the engine was doing in the window: a burst must be in it
            while not stop.wait(1.0):
                snap = snapshot(host.sock)
                if snap is not None:
                    running.append(counts(snap)[0])

        watcher = threading.Thread(target=watch_host, daemon=True)
        watcher.start()
        profiler.start(console.pid, "console-window")
        before = [c.cpu_times() for c in consoles]
        time.sleep(args.window)
        after = [c.cpu_times() for c in consoles]
        profiler.stop()
        stop.set()
        watcher.join()
        cpu, *base_cpu = [(a.user + a.system - b.user - b.system) / args.window * 100
                          for b, a in zip(before, after, strict=True)]
        on_screen = "loop-" in tmux.screen()

        print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, load average "
              f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}; host: {args.loops} loops every {args.interval:g} s, "
              f"{args.sidecars} sidecars")
        over = statistics.median(c - f for c, f in zip(firsts, floors, strict=True))
        base_over = statistics.median(b - f for b, f in zip(base_firsts, floors, strict=True)) if base_firsts else 0
        rows = [
            ("first frame, observing (120x40)", f"median {statistics.median(firsts) * 1000:.0f} ms, "
             f"max {max(firsts) * 1000:.0f} ms", "median < 0.5 s", statistics.median(firsts) < 0.5),
            ("  floor: a bare Textual app", f"median {statistics.median(floors) * 1000:.0f} ms, "
             f"max {max(floors) * 1000:.0f} ms", "", None),
            ("  console over the floor, paired", f"median {over * 1000:.0f} ms", "", None),
            *([(f"  base {args.base}: first frame", f"median {statistics.median(base_firsts) * 1000:.0f} ms, "
                f"over the floor {base_over * 1000:.0f} ms", "", None)] if base_firsts else []),
            (f"console CPU over {args.window:g} s, Loops tab", f"{cpu:.1f} % of a core", "< 5 %", cpu < 5.0),
            *([(f"  base {args.base}, same window", f"{base_cpu[0]:.1f} % of a core", "", None)] if base_cpu else []),
            ("  loops running in that window (1 s samples)", f"max {max(running, default=0)}",
             "a burst: > 0", max(running, default=0) > 0),
            ("  Loops tab still on screen at the end", str(on_screen), "True", on_screen),
        ]
        for name, figure, target, ok in rows:
            verdict = "" if ok is None else ("met" if ok else "MISSED")
            print(f"{name:<46} {figure:<34} {target:<16} {verdict}")
        for path in profiler.files:
            if path.exists():
                print(profile_summary(path))
        missed = [name for name, _f, _t, ok in rows if ok is False]
        print(f"targets: {'met' if not missed else 'MISSED: ' + ', '.join(missed)}")
        return 0 if not missed else 1
    finally:
        profiler.stop()
        tmux("kill-server")
        if host is not None:
            host.stop()
        stop_all(procs, work)


if __name__ == "__main__":
    sys.exit(main())
