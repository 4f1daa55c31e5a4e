"""Benchmark: the console over tmux, on a busy host.

    .venv/bin/python tests/bench/bench_tui.py

Builds a host with 10 sidecars, 100 loops and a ledger of 10,000 runs, runs `loopctl run`, then:
1. first frame: from starting `loopctl` in a 120x40 tmux to the tray on screen (target < 0.5 s), 11 times,
   interleaved with a bare Textual app (the floor) and with a console that owns an empty host (what the
   README's first command opens: the engine starts in the console, no engine to observe);
2. idle CPU of the console process over 20 s, with its 1 Hz countdown tick (target < 2 % of a core);
3. a state change on screen: from `kill -9` of a sidecar's process to the console showing it
   (target < 0.5 s).
Exit 1 if a target is missed.

The console is started as the README installs it: a virtualenv of its own made by this script with a
regular `pip install` of this checkout (which compiles loopctl's bytecode, as it does Textual's), and
`loopctl` from that virtualenv's bin/, run from a directory of its own.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench_ledger import fill
from harness import REPO, make_venv, wait_for

LOOPCTL = [sys.executable, "-m", "console"]
FLOOR_APP = """
from textual.app import App
from textual.widgets import Static
class Hello(App):
    def compose(self):
        yield Static("hello floor")
Hello().run()
"""
SOCKET = f"loopctl-bench-{os.getpid()}"  # a tmux server of our own, never a stale one


def tmux(*args: str, check: bool = False) -> str:
    result = subprocess.run(["tmux", "-L", SOCKET, *args], capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise SystemExit(f"bench: tmux {args[0]} failed: {result.stderr.strip()}")
    return result.stdout


def screen() -> str:
    return tmux("capture-pane", "-p", "-t", "console")


def first_frame(command: str, marker: str) -> float:
    """Seconds from starting `command` in a fresh 120x40 tmux session to `marker` on its screen."""
    # The previous program must be gone first, or its exit competes with this start for the CPU.
    previous: list[psutil.Process] = []
    pane = tmux("display-message", "-p", "-t", "console", "#{pane_pid}").strip()
    if pane.isdigit():
        with contextlib.suppress(psutil.NoSuchProcess):
            previous = [psutil.Process(int(pane)), *psutil.Process(int(pane)).children(recursive=True)]
    tmux("kill-session", "-t", "console")
    psutil.wait_procs(previous, timeout=10)
    start = time.perf_counter()
    tmux("new-session", "-d", "-s", "console", "-x", "120", "-y", "40", command, check=True)
    while marker not in screen():
        time.sleep(0.005)
        if time.perf_counter() - start > 30:
            raise SystemExit(f"bench: no first frame from {command!r}; screen:\n{screen()}")
    return time.perf_counter() - start


def config(path: Path) -> None:
    lines = []
    for i in range(10):
        lines += ["[[sidecar]]", f'name = "side-{i}"', 'command = ["sleep", "86400"]', ""]
    handoff = 'echo \'{"summary": "ok", "evidence": {"commits": ["abc"]}}\' > "$LOOPCTL_HANDOFF"'
    for i in range(100):
        lines += ["[[loop]]", f'id = "loop-{i}"', f"command = {json.dumps(['sh', '-c', handoff])}",
                  "interval_seconds = 86400", ""]
    path.write_text("\n".join(lines))


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="loopctl-tui-bench-"))
    state = work / "state"
    state.mkdir(mode=0o700)
    engine = None
    try:
        fill(state / "loopctl.db", 10_000, 100)
        cfg = work / "loopctl.toml"
        config(cfg)
        env = {**os.environ, "LOOPCTL_HOME": str(state)}
        engine = subprocess.Popen([*LOOPCTL, "--config", str(cfg), "run"], env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        wait_for((state / "engine.sock").exists, 30, "the engine")

        def snapshot() -> dict:
            out = subprocess.run([*LOOPCTL, "--config", str(cfg), "--once", "--format", "json"], env=env,
                                 capture_output=True, text=True, check=False).stdout
            return json.loads(out)["snapshot"]

        wait_for(lambda: sum(s["state"] == "ready" for s in snapshot()["sidecars"]) == 10, 60, "10 ready sidecars")
        wait_for(lambda: all(lp["current_run"] is None for lp in snapshot()["loops"]), 60, "first runs done")

        # Killing tmux's last session stops its server, and a new session started right then races the
        # dying server ("server exited unexpectedly"). A keeper session holds the server up throughout.
        tmux("new-session", "-d", "-s", "keeper", "sleep 86400", check=True)
        # As an operator starts it (README): installed the regular way, from a directory of its own.
        bin_dir = make_venv(work / "venv", str(REPO))
        console_cmd = f"env -C {work} LOOPCTL_HOME={state} {bin_dir / 'loopctl'} --config {cfg}"
        floor_script = work / "floor.py"
        floor_script.write_text(FLOOR_APP)
        # A new user's host: nothing configured, no engine; a HOME of its own so no config file is found.
        empty = work / "empty-home"
        empty.mkdir()
        owner_cmd = f"env -C {empty} HOME={empty} LOOPCTL_HOME={empty / 'state'} {bin_dir / 'loopctl'}"
        firsts, floors, owners = [], [], []
        for _ in range(11):  # interleaved: this machine's speed drifts, and all must see the same drift
            firsts.append(first_frame(console_cmd, "observer of pid"))
            floors.append(first_frame(f"{bin_dir / 'python'} {floor_script}", "hello floor"))
            owners.append(first_frame(owner_cmd, "nothing_configured"))
        first_frame(console_cmd, "observer of pid")  # the console whose idle CPU is measured
        # The pane's own process (`env` execs the console): not a console of an earlier round still exiting.
        console = psutil.Process(int(tmux("display-message", "-p", "-t", "console", "#{pane_pid}").strip()))
        assert console.cmdline()[-2:] == ["--config", str(cfg)], console.cmdline()
        time.sleep(3)  # settle
        before = console.cpu_times()
        time.sleep(20)
        after = console.cpu_times()
        idle = (after.user + after.system - before.user - before.system) / 20 * 100

        latencies = []
        for i in range(5):
            victim = snapshot()["sidecars"][i]["pid"]
            start = time.perf_counter()
            os.kill(victim, signal.SIGKILL)
            while "starting" not in screen() and "backoff" not in screen():
                time.sleep(0.005)
                if time.perf_counter() - start > 10:
                    raise SystemExit("bench: the change never reached the screen")
            latencies.append(time.perf_counter() - start)
            wait_for(lambda: "starting" not in screen() and "backoff" not in screen(), 30, "settle again")

        print(f"host: 10 sidecars, 100 loops, 10,000 runs; {os.cpu_count()} cores, Python {sys.version.split()[0]}")
        print(f"first frame (120x40, observer):  median {statistics.median(firsts) * 1000:6.0f} ms, "
              f"max {max(firsts) * 1000:6.0f} ms")
        print(f"floor: a bare Textual app:       median {statistics.median(floors) * 1000:6.0f} ms, "
              f"max {max(floors) * 1000:6.0f} ms")
        over = statistics.median(c - f for c, f in zip(firsts, floors, strict=True))
        print(f"console over the floor, paired:  median {over * 1000:6.0f} ms")
        print(f"first frame (owner, empty host): median {statistics.median(owners) * 1000:6.0f} ms, "
              f"max {max(owners) * 1000:6.0f} ms")
        owner_over = statistics.median(o - f for o, f in zip(owners, floors, strict=True))
        print(f"owner over the floor, paired:    median {owner_over * 1000:6.0f} ms")
        print(f"console idle CPU over 20 s:      {idle:5.2f} % of one core")
        print(f"kill -9 to change on screen:     median {statistics.median(latencies) * 1000:6.0f} ms, "
              f"max {max(latencies) * 1000:6.0f} ms")
        ok = max(statistics.median(firsts), statistics.median(owners)) < 0.5 and idle < 2.0 and max(latencies) < 0.5
        print(f"targets (first frame < 0.5 s, idle < 2 %, change < 0.5 s): {'met' if ok else 'MISSED'}")
        return 0 if ok else 1
    finally:
        tmux("kill-server")
        if engine is not None:
            engine.send_signal(signal.SIGTERM)
            engine.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
