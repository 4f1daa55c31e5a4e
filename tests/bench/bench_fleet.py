"""Benchmark: `loopctl fleet` over SSH on loopback, 20 hosts.

    .venv/bin/python tests/bench/bench_fleet.py [--hosts 20] [--trials 3]

Installs loopctl into a virtualenv of its own (a regular pip install, as the README's first command does),
starts a real sshd on 127.0.0.1 (tests/sshd.py: a throwaway host key and authorized key) and 20
`loopctl run` engines, each in its own state dir with one sidecar, named in a hosts.toml as 20 ssh
hosts. Then, per trial, in a 120x40 tmux:
1. first full table: from starting `loopctl fleet` to every host's row showing its state (target < 3 s);
2. a change on screen: from `kill -9` of one host's sidecar (it latches failed) to that host's row
   saying degraded (target < 0.5 s), on a different host each time;
3. idle CPU of the fleet console and its ssh children over 20 s (target < 2 % of a core).
Exit 1 if a target is missed.
"""

from __future__ import annotations

import argparse
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

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.bench.harness import REPO, make_venv, wait_for
from tests.conftest import free_port
from tests.sshd import start_sshd, stop_sshd

LOOPCTL = ""  # the benchmark's own install's, set in main()
SOCKET = f"loopctl-bench-fleet-{os.getpid()}"


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", "-L", SOCKET, *args], capture_output=True, text=True, check=False).stdout


def screen() -> str:
    return tmux("capture-pane", "-p", "-t", "fleet")


def row(text: str, name: str) -> str:
    return next((line for line in text.splitlines() if line.startswith(f" {name} ")), "")


def full(text: str, names: list[str]) -> bool:
    return all((r := row(text, n)) and "connecting" not in r for n in names)


def sidecar_pid(state: Path) -> int | None:
    out = subprocess.run([LOOPCTL, "--once", "--format", "json", "--state-dir", str(state)], capture_output=True,
                         text=True, check=False).stdout
    import json

    sidecars = json.loads(out)["snapshot"]["sidecars"] if out else []
    return sidecars[0]["pid"] if sidecars and sidecars[0]["state"] == "ready" else None


def ssh_floor(ssh: str, count: int) -> float:
    start = time.monotonic()
    sessions = [subprocess.Popen([*ssh.split(), "-o", "BatchMode=yes", "fleet-a", "true"]) for _ in range(count)]
    for session in sessions:
        session.wait(timeout=120)
    return time.monotonic() - start


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--kex", metavar="ALGORITHMS",
                        help="the ssh client's KexAlgorithms (default: OpenSSH's own, sntrup761x25519 first)")
    args = parser.parse_args()
    global LOOPCTL  # noqa: PLW0603  (the helpers below read it)
    work = Path(tempfile.mkdtemp(prefix="lt-fleet-"))
    # loopctl as the README installs it (a regular pip install: bytecode compiled, no editable finder),
    # on both ends: the far sides' 20 start-ups share this machine's cores too.
    bin_dir = make_venv(work / "venv", str(REPO))
    LOOPCTL = str(bin_dir / "loopctl")
    sshd = start_sshd(work / "sshd", free_port(), (f"KexAlgorithms {args.kex}",) if args.kex else (), bin_dir)
    engines: list[subprocess.Popen[bytes]] = []
    names = [f"host-{i:02d}" for i in range(args.hosts)]
    states = {n: work / n / "state" for n in names}
    firsts, changes, cpus, floors = [], [], [], []
    try:
        for n in names:
            config = work / n / "loopctl.toml"
            config.parent.mkdir(parents=True)
            config.write_text(f'[host]\nname = "{n}"\n\n[[sidecar]]\nname = "web"\ncommand = ["sleep", "86400"]\n'
                              f"max_restarts = 0\n")
            engines.append(subprocess.Popen([LOOPCTL, "run", "--state-dir", str(states[n]), "--config", str(config)],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for n in names:
            wait_for(lambda n=n: sidecar_pid(states[n]), 60, f"{n}'s sidecar ready")
        xdg = work / "xdg"
        (xdg / "loopctl").mkdir(parents=True)
        (xdg / "loopctl" / "hosts.toml").write_text(
            "".join(f'[[host]]\nname = "{n}"\nurl = "ssh://fleet-a{states[n]}"\n\n' for n in names))
        env = f"env XDG_CONFIG_HOME={xdg} HOME={os.environ.get('HOME', '/root')} LOOPCTL_SSH='{sshd.ssh}'"
        victims = iter(names)
        for trial in range(args.trials):
            tmux("kill-server")
            time.sleep(0.5)  # the last trial's sessions have ended (their ssh exits on EOF)
            start = time.monotonic()
            tmux("new-session", "-d", "-s", "fleet", "-x", "120", "-y", "40", f"{env} {LOOPCTL} fleet")
            while not full(screen(), names):
                if time.monotonic() - start > 60:
                    raise SystemExit(f"bench: no full table after 60 s:\n{screen()}")
                time.sleep(0.01)
            firsts.append(time.monotonic() - start)
            if trial == 0:  # the floor: the same number of bare ssh sessions at once, nothing of loopctl's
                floors.append(ssh_floor(sshd.ssh, len(names)))
            pane = psutil.Process(int(tmux("display-message", "-p", "-t", "fleet", "#{pane_pid}").strip()))
            for _ in range(2):
                victim = next(victims)
                pid = sidecar_pid(states[victim])
                assert pid is not None
                kill = time.monotonic()
                os.kill(pid, signal.SIGKILL)  # a sidecar of the engine this script started
                while "degraded" not in row(screen(), victim):
                    if time.monotonic() - kill > 10:
                        raise SystemExit(f"bench: {victim}'s change never showed:\n{screen()}")
                    time.sleep(0.005)
                changes.append(time.monotonic() - kill)
            time.sleep(2)  # the changes' toasts and pushes have settled
            procs = [pane, *pane.children(recursive=True)]
            before = {p.pid: sum(p.cpu_times()[:2]) for p in procs}
            t0 = time.monotonic()
            time.sleep(20)
            used = sum(sum(p.cpu_times()[:2]) - before[p.pid] for p in procs if p.is_running())
            cpus.append(used / (time.monotonic() - t0) * 100)
            print(f"trial {trial + 1}: first full table {firsts[-1]:.2f} s, changes "
                  f"{', '.join(f'{c * 1000:.0f} ms' for c in changes[-2:])}, idle CPU {cpus[-1]:.2f} %", flush=True)
            tmux("send-keys", "-t", "fleet", "q")
            pane.wait(timeout=20)
    finally:
        tmux("kill-server")
        for proc in engines:
            proc.send_signal(signal.SIGTERM)
        for proc in engines:
            proc.wait(timeout=30)
        stop_sshd(sshd)
        shutil.rmtree(work, ignore_errors=True)
    print(f"{args.hosts} hosts over ssh on loopback, {args.trials} trials, key exchange {args.kex or 'default'}")
    print(f"first full table: median {statistics.median(firsts):.2f} s, max {max(firsts):.2f} s (target < 3 s)")
    print(f"floor: {len(names)} concurrent `ssh fleet-a true` sessions {floors[0]:.2f} s")
    print(f"change on screen: median {statistics.median(changes) * 1000:.0f} ms, max {max(changes) * 1000:.0f} ms "
          f"(target < 0.5 s)")
    print(f"idle CPU: median {statistics.median(cpus):.2f} %, max {max(cpus):.2f} % of a core (target < 2 %)")
    return 0 if max(firsts) < 3 and max(changes) < 0.5 and max(cpus) < 2 else 1


if __name__ == "__main__":
    raise SystemExit(main())
