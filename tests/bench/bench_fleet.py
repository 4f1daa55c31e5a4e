"""Benchmark: `loopctl fleet` over SSH on loopback, 20 hosts.

    .venv/bin/python tests/bench/bench_fleet.py [--hosts 20] [--trials 3] [--source DIR]

Installs loopctl into a virtualenv of its own (a regular pip install, as the README's first command does;
`--source` installs another checkout, say the code before a change, for the same measurements), starts a
real sshd on 127.0.0.1 (tests/sshd.py: a throwaway host key and authorized key) and 20 `loopctl run`
engines, each in its own state dir with one sidecar, named in a hosts.toml as 20 ssh hosts, each under a
name of its own (fleet-00 to fleet-19, all 127.0.0.1 in the client config): loopctl keeps one ssh master
per host as written (host/mux.py), so the 20 log in 20 times as 20 machines would, where one name would
let 19 sessions ride on the first one's connection. Then, per trial, in a 120x40 tmux:
1. first full table, cold: with no ssh master left from before (each ended by its control socket), from
   starting `loopctl fleet` to every host's row showing its state (target < 3 s), and the CPU the near side
   (the console, its ssh clients and masters) had used by then: what a console's own machine pays for the
   table when the 20 far sides are 20 other machines;
2. a change on screen: from `kill -9` of one host's sidecar (it latches failed) to that host's row
   saying degraded (target < 0.5 s), on a different host each time;
3. idle CPU of the fleet console, its ssh children and masters over 20 s (target < 2 % of a core);
4. first full table, warm: the fleet quit and started again at once, its masters still up (ControlPersist).
Exit 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import contextlib
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

    report = json.loads(out) if out else {}
    sidecars = report.get("snapshot", {}).get("sidecars", [])  # none while the engine is not answering yet
    return sidecars[0]["pid"] if sidecars and sidecars[0]["state"] == "ready" else None


def masters(runtime: Path) -> list[psutil.Process]:
    """The ssh masters of this benchmark's control dir (daemons of their own: not the pane's children).
    A master retitles itself `ssh: SOCKET [mux]`; the sessions' own ssh name the socket too, in an option."""
    mark = f"ssh: {runtime / 'loopctl-ssh'}/"
    return [p for p in psutil.process_iter(["cmdline"]) if " ".join(p.info["cmdline"] or []).startswith(mark)]


def near_side(pane: psutil.Process, runtime: Path) -> list[psutil.Process]:
    procs = {p.pid: p for p in [pane, *pane.children(recursive=True), *masters(runtime)]}  # each counted once
    return list(procs.values())


def cpu_of(procs: list[psutil.Process]) -> float:
    total = 0.0
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


def end_masters(runtime: Path) -> None:
    """Each master by its own control socket: only the ones this benchmark's fleets started."""
    control = runtime / "loopctl-ssh"
    for sock in (p for p in control.iterdir() if p.is_socket()) if control.is_dir() else ():
        subprocess.run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "bench"], capture_output=True,
                       check=False, timeout=10)
    wait_for(lambda: not masters(runtime), 10, "the masters to exit")


def launch(env: str, names: list[str]) -> tuple[float, psutil.Process]:
    """`loopctl fleet` in a fresh tmux, to the first full table: (seconds, the pane's process)."""
    tmux("kill-server")
    time.sleep(0.5)  # the last trial's sessions have ended (their ssh exits on EOF)
    start = time.monotonic()
    tmux("new-session", "-d", "-s", "fleet", "-x", "120", "-y", "40", f"{env} {LOOPCTL} fleet")
    while not full(screen(), names):
        if time.monotonic() - start > 60:
            raise SystemExit(f"bench: no full table after 60 s:\n{screen()}")
        time.sleep(0.01)
    took = time.monotonic() - start
    return took, psutil.Process(int(tmux("display-message", "-p", "-t", "fleet", "#{pane_pid}").strip()))


def quit_fleet(pane: psutil.Process) -> None:
    tmux("send-keys", "-t", "fleet", "q")
    pane.wait(timeout=20)


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
    parser.add_argument("--source", metavar="DIR", default=str(REPO),
                        help="the loopctl checkout to install and measure (default: this one)")
    args = parser.parse_args()
    global LOOPCTL  # noqa: PLW0603  (the helpers below read it)
    work = Path(tempfile.mkdtemp(prefix="lt-fleet-"))
    # loopctl as the README installs it (a regular pip install: bytecode compiled, no editable finder),
    # on both ends: the far sides' 20 start-ups share this machine's cores too.
    bin_dir = make_venv(work / "venv", args.source)
    LOOPCTL = str(bin_dir / "loopctl")
    names = [f"host-{i:02d}" for i in range(args.hosts)]
    sshd = start_sshd(work / "sshd", free_port(), (f"KexAlgorithms {args.kex}",) if args.kex else (), bin_dir)
    engines: list[subprocess.Popen[bytes]] = []
    states = {n: work / n / "state" for n in names}
    runtime = work / "run"  # the fleet's XDG_RUNTIME_DIR: its ssh masters' control dir is under it
    runtime.mkdir(mode=0o700)
    firsts, warms, near_cpus, changes, cpus, floors = [], [], [], [], [], []
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
            "".join(f'[[host]]\nname = "{n}"\nurl = "ssh://fleet-{i:02d}{states[n]}"\n\n' for i, n in enumerate(names)))
        env = (f"env XDG_CONFIG_HOME={xdg} XDG_RUNTIME_DIR={runtime} HOME={os.environ.get('HOME', '/root')} "
               f"LOOPCTL_SSH='{sshd.ssh}'")
        victims = iter(names)
        for trial in range(args.trials):
            end_masters(runtime)  # cold: every session to come is a key exchange and a login
            took, pane = launch(env, names)
            firsts.append(took)
            near_cpus.append(cpu_of(near_side(pane, runtime)))
            if trial == 0:  # the floor: the same number of bare ssh sessions at once, nothing of loopctl's
                floors.append(ssh_floor(sshd.ssh, len(names)))
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
            procs = near_side(pane, runtime)
            before = {p.pid: sum(p.cpu_times()[:2]) for p in procs}
            t0 = time.monotonic()
            time.sleep(20)
            used = sum(sum(p.cpu_times()[:2]) - before[p.pid] for p in procs if p.is_running())
            cpus.append(used / (time.monotonic() - t0) * 100)
            quit_fleet(pane)
            took, pane = launch(env, names)  # warm: the masters the last fleet left (none without multiplexing)
            warms.append(took)
            quit_fleet(pane)
            print(f"trial {trial + 1}: first full table {firsts[-1]:.2f} s cold ({near_cpus[-1]:.2f} s of near-side "
                  f"CPU), {warms[-1]:.2f} s warm, changes {', '.join(f'{c * 1000:.0f} ms' for c in changes[-2:])}, "
                  f"idle CPU {cpus[-1]:.2f} %", flush=True)
    finally:
        tmux("kill-server")
        end_masters(runtime)
        for proc in engines:
            proc.send_signal(signal.SIGTERM)
        for proc in engines:
            proc.wait(timeout=30)
        stop_sshd(sshd)
        shutil.rmtree(work, ignore_errors=True)
    print(f"{args.hosts} hosts over ssh on loopback, {args.trials} trials, key exchange {args.kex or 'default'}, "
          f"loopctl from {args.source}")
    print(f"first full table, cold: median {statistics.median(firsts):.2f} s, max {max(firsts):.2f} s (target < 3 s)")
    print(f"near-side CPU by then: median {statistics.median(near_cpus):.2f} s")
    print(f"first full table, warm: median {statistics.median(warms):.2f} s, max {max(warms):.2f} s")
    print(f"floor: {len(names)} concurrent `ssh fleet-a true` sessions {floors[0]:.2f} s")
    print(f"change on screen: median {statistics.median(changes) * 1000:.0f} ms, max {max(changes) * 1000:.0f} ms "
          f"(target < 0.5 s)")
    print(f"idle CPU: median {statistics.median(cpus):.2f} %, max {max(cpus):.2f} % of a core (target < 2 %)")
    return 0 if max(firsts) < 3 and max(changes) < 0.5 and max(cpus) < 2 else 1


if __name__ == "__main__":
    raise SystemExit(main())
