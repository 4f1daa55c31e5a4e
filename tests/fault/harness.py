"""A seeded, bounded chaos harness: a real engine (`loopctl run`) with several loops and sidecars is
SIGKILLed at random moments (the spawn windows of runs and sidecars included, through the crash
points), booted again, and after every boot the promises are checked:

- at most one live run per loop (processes scanned by LOOPCTL_LOOP_ID), and no run spawned twice;
- every live sidecar process is named by a PID file the current engine wrote;
- continuation chains stay within 2, process-loss retries within 1;
- every finished run has a stop reason;
- `PRAGMA integrity_check` is ok; an active remote-config slot (if any) is intact.

The seed decides every choice the harness makes (how long the engine lives, where it is killed);
what the agents do is drawn from the seed and their run id. Real time passes here on purpose: the
moments of a kill are the point.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from console.host.client import request
from console.readmodel.snapshot import Snapshot
from console.remote.slots import Slots

AGENT = """
import json, os, random, sys, time
run, mode, seed = os.environ["LOOPCTL_RUN_ID"], sys.argv[1], sys.argv[2]
with open(sys.argv[3], "a") as log:
    log.write(json.dumps({"run": run, "loop": os.environ["LOOPCTL_LOOP_ID"], "pid": os.getpid()}) + "\\n")
rng = random.Random(f"{seed}:{run}")
time.sleep(rng.uniform(0.5, 4.0) if mode == "slow" else rng.uniform(0.05, 0.5))
handoff = {"summary": "worked", "evidence": {"files_changed": ["a.py"]}}
if mode == "plan":  # plans without acting: continued twice, then the loop escalates
    handoff = {"summary": "a plan", "next_action": "edit a.py", "actionability": "runnable"}
with open(os.environ["LOOPCTL_HANDOFF"], "w") as f:
    json.dump(handoff, f)
"""
SLEEPER = "import time\nwhile True: time.sleep(60)"
LOOPS = {"docs": "advance", "triage": "plan", "build": "slow"}
SIDECARS = ("cache", "index", "proxy")
CRASH_POINTS = ("run_after_spawn", "sidecar_after_spawn")
SETTLE = 3.0  # how long a booted engine may take to bring what it found in line (a sidecar's PID file)


@dataclass
class Figures:
    cycles: int = 0
    kills_at_random: int = 0
    kills_in_spawn_windows: int = 0
    runs: int = 0
    reclaimed_sidecars: int = 0
    adopted_runs: int = 0
    lost_runs: int = 0
    operator_retries: int = 0
    seconds: float = 0.0
    violations: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (f"{self.cycles} cycles ({self.kills_at_random} SIGKILLs at random moments, "
                f"{self.kills_in_spawn_windows} in spawn windows), {self.runs} runs, {self.adopted_runs} adopted, "
                f"{self.lost_runs} lost, {self.operator_retries} escalations retried, "
                f"{self.reclaimed_sidecars} sidecars reclaimed, "
                f"{len(self.violations)} violations, {self.seconds:.0f} s")


class Chaos:
    def __init__(self, root: Path, seed: int) -> None:
        self.root = root
        self.seed = seed
        self.rng = random.Random(seed)
        self.state = root / "state"
        self.seen = root / "seen.jsonl"
        self.config = root / "loopctl.toml"
        self.engine: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self.figures = Figures()
        root.mkdir(parents=True, exist_ok=True)
        agent = root / "agent.py"
        agent.write_text(textwrap.dedent(AGENT))
        body = ""
        for loop_id, mode in LOOPS.items():
            command = [sys.executable, str(agent), mode, str(seed), str(self.seen)]
            body += f"[[loop]]\nid = \"{loop_id}\"\ncommand = {json.dumps(command)}\ninterval_seconds = 0.2\n\n"
        for name in SIDECARS:
            body += f"[[sidecar]]\nname = \"{name}\"\ncommand = {json.dumps([sys.executable, '-c', SLEEPER])}\n\n"
        self.config.write_text(body)

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LOOPCTL_", "XDG_"))}
        return {**env, "LOOPCTL_HOME": str(self.state), "HOME": str(self.root), "XDG_CONFIG_HOME": str(self.root)}

    # -- the engine -------------------------------------------------------------------------------------

    def start(self, crash_at: str = "") -> None:
        env = self.env | ({"LOOPCTL_TESTING": "1", "LOOPCTL_CRASH_AT": crash_at} if crash_at else {})
        log = (self.root / "engine.log").open("ab")
        self.started_at = time.time()
        self.engine = subprocess.Popen([sys.executable, "-m", "console", "run", "--config", str(self.config)],
                                       env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def serving(self) -> bool:
        """The new engine answers on its socket: its boot (reap, reclaim) is done."""
        assert self.engine is not None
        if self.engine.poll() is not None:
            raise AssertionError(f"the engine exited {self.engine.returncode}: see {self.root / 'engine.log'}")
        with contextlib.suppress(Exception):
            answer = request(self.state / "engine.sock", "hello", timeout=2.0)
            return bool(answer and answer.get("engine", {}).get("pid") == self.engine.pid)
        return False

    def kill(self) -> None:
        assert self.engine is not None
        self.engine.send_signal(signal.SIGKILL)
        self.engine.wait(timeout=10)

    def stop(self) -> None:
        if self.engine is not None and self.engine.poll() is None:
            self.engine.send_signal(signal.SIGTERM)
            try:
                self.engine.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.engine.kill()
                self.engine.wait()

    # -- one cycle ------------------------------------------------------------------------------------------

    def cycle(self) -> None:
        # The first cycles kill in each spawn window once; later ones there now and then, else at random.
        crash_at = CRASH_POINTS[self.figures.cycles] if self.figures.cycles < len(CRASH_POINTS) else \
            self.rng.choice(CRASH_POINTS) if self.rng.random() < 0.3 else ""
        self.start(crash_at)
        marker = self.state / "crashpoint"
        deadline = time.monotonic() + 60
        # With a crash point, the engine is killed there: first runs start spread out (runs/pacing.py),
        # so the window may come after the socket answers, and that is waited for too.
        while not (marker.exists() if crash_at else self.serving()):
            if crash_at and self.engine is not None and self.engine.poll() is not None:
                raise AssertionError(f"the engine exited {self.engine.returncode}: see {self.root / 'engine.log'}")
            if time.monotonic() > deadline:
                raise AssertionError(f"the engine did not come up within 60 s: see {self.root / 'engine.log'}")
            time.sleep(0.02)
        if crash_at and marker.exists():
            self.kill()  # frozen in the spawn window: the child exists, its record does not
            marker.unlink()
            self.figures.kills_in_spawn_windows += 1
        else:
            self.check_settled()
            self.retry_escalated()
            time.sleep(self.rng.uniform(0.0, 2.0))  # a random moment of the engine's life
            self.check_now()
            self.kill()
            self.figures.kills_at_random += 1
        self.figures.cycles += 1

    def check_settled(self) -> None:
        """The invariants, at a boot just done. Only the sidecar one may take SETTLE seconds to hold (a PID
        file is written just after its spawn); the others hold at once, and a later recovery excuses nothing."""
        self.check_now()
        deadline = time.monotonic() + SETTLE
        while True:
            problems = [p for p in self.violations() if "named by no PID file" in p]
            if not problems or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.figures.violations.extend(f"cycle {self.figures.cycles}: {p}" for p in problems)

    def retry_escalated(self) -> None:
        """As an operator would: a loop the kills escalated (a second process loss) is retried, so the
        loops keep running runs into the kills for the whole run, not only its first cycles."""
        with contextlib.suppress(Exception):
            answer = request(self.state / "engine.sock", "snapshot", timeout=5.0) or {}
            for loop in Snapshot.from_dict(answer["snapshot"]).loops:
                if loop.state == "escalated":
                    request(self.state / "engine.sock", "action", timeout=10.0, verb="retry",
                            target=f"loop:{loop.id}")
                    self.figures.operator_retries += 1

    def check_now(self) -> None:
        """The invariants that hold at every instant (not the sidecar one: a PID file follows its spawn)."""
        problems = [p for p in self.violations() if "named by no PID file" not in p]
        self.figures.violations.extend(f"cycle {self.figures.cycles}: {p}" for p in problems)

    # -- the invariants -------------------------------------------------------------------------------------------

    def violations(self) -> list[str]:
        found: list[str] = []
        runs_by_loop: Counter[str] = Counter()
        sidecar_pids: dict[int, str] = {}
        for proc in psutil.process_iter(["pid"]):
            with contextlib.suppress(psutil.Error):
                env = proc.environ()
                if env.get("LOOPCTL_HOME") != str(self.state) or proc.status() == psutil.STATUS_ZOMBIE:
                    continue
                if "LOOPCTL_LOOP_ID" in env and os.getpgid(proc.pid) == proc.pid:  # a run's leader
                    runs_by_loop[env["LOOPCTL_LOOP_ID"]] += 1
                if "LOOPCTL_SIDECAR_TOKEN" in env and os.getpgid(proc.pid) == proc.pid:
                    sidecar_pids[proc.pid] = env["LOOPCTL_SIDECAR_TOKEN"]
        found += [f"loop {loop} has {n} live runs" for loop, n in runs_by_loop.items() if n > 1]
        recorded = {}
        for pidfile in (self.state / "sidecars").glob("*.pid"):
            with contextlib.suppress(OSError, ValueError):
                record = json.loads(pidfile.read_text())
                if record["written_at"] >= self.started_at - 1.0:  # written by the current engine
                    recorded[record["pid"]] = record["session_token"]
        found += [f"sidecar process {pid} is named by no PID file of the current engine"
                  for pid, token in sidecar_pids.items() if recorded.get(pid) != token]
        spawned = Counter(json.loads(line)["run"] for line in self.seen.read_text().splitlines()) \
            if self.seen.exists() else Counter()
        found += [f"run {run} was spawned {n} times" for run, n in spawned.items() if n > 1]
        found += self.ledger_violations()
        slots = Slots(self.state / "config")
        active = slots.active_name()
        if active is not None:
            read = slots.read(active)
            if read is None or not read[0].intact:
                found.append(f"the active config slot {active} is not intact")
        return found

    def ledger_violations(self) -> list[str]:
        database = self.state / "loopctl.db"
        if not database.exists():
            return []
        conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10)
        try:
            found = []
            (check,) = conn.execute("PRAGMA integrity_check").fetchone()
            if check != "ok":
                found.append(f"integrity_check: {check}")
            for chain, attempts in conn.execute(
                    "SELECT chain_id, COUNT(DISTINCT continuation_attempt) - 1 FROM runs GROUP BY chain_id"):
                if attempts > 2:
                    found.append(f"chain {chain} has {attempts} continuations")
            for run_id, retries in conn.execute(
                    "SELECT retry_of_run_id, COUNT(*) FROM runs WHERE process_loss_retry_count > 0 "
                    "GROUP BY retry_of_run_id"):
                if retries > 1:
                    found.append(f"run {run_id} was retried {retries} times after losing its process")
            (deepest,) = conn.execute("SELECT COALESCE(MAX(process_loss_retry_count), 0) FROM runs").fetchone()
            if deepest > 1:
                found.append(f"a process-loss retry chain is {deepest} deep")
            for (run_id,) in conn.execute("SELECT id FROM runs WHERE status IN ('succeeded', 'failed', 'cancelled', "
                                          "'timed_out') AND stop_reason IS NULL"):
                found.append(f"run {run_id} finished without a stop reason")
            return found
        finally:
            conn.close()

    def tally(self) -> None:
        database = self.state / "loopctl.db"
        conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10)
        try:
            self.figures.runs = conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
            self.figures.lost_runs = conn.execute(
                "SELECT COUNT(*) FROM runs WHERE stop_reason = 'process_lost'").fetchone()[0]
            self.figures.adopted_runs = conn.execute(
                "SELECT COUNT(DISTINCT name) FROM events WHERE kind = 'run' AND (reason LIKE 'process detached%' "
                "OR reason LIKE 'found pid%')").fetchone()[0]
            self.figures.reclaimed_sidecars = conn.execute(
                "SELECT COUNT(*) FROM events WHERE kind = 'sidecar' AND reason LIKE 'reclaimed%'").fetchone()[0]
        finally:
            conn.close()

    def leftovers(self) -> dict[int, str]:
        """After the final clean stop: any process of this host still alive is a leak (pid: what it is)."""
        found = {}
        for proc in psutil.process_iter(["pid"]):
            with contextlib.suppress(psutil.Error):
                env = proc.environ()
                if env.get("LOOPCTL_HOME") == str(self.state) and proc.status() != psutil.STATUS_ZOMBIE:
                    if "LOOPCTL_RUN_ID" in env:
                        found[proc.pid] = f"run {env['LOOPCTL_RUN_ID']} of loop {env.get('LOOPCTL_LOOP_ID')}"
                    elif "LOOPCTL_SIDECAR_TOKEN" in env:
                        found[proc.pid] = f"sidecar {env['LOOPCTL_SIDECAR_TOKEN'].split(':')[1]}"
                    else:
                        found[proc.pid] = " ".join(proc.cmdline())[:80]
        return found

    def cleanup(self) -> None:
        for pid in self.leftovers():
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).kill()


def run(root: Path, seed: int, cycles: int) -> Figures:
    """`cycles` kills and boots, then a last boot checked and stopped cleanly: nothing may be left."""
    chaos = Chaos(root, seed)
    began = time.monotonic()
    try:
        for _ in range(cycles):
            chaos.cycle()
        chaos.start()
        deadline = time.monotonic() + 60
        while not chaos.serving():
            if time.monotonic() > deadline:
                raise AssertionError("the last engine did not come up")
            time.sleep(0.02)
        chaos.check_settled()
        chaos.stop()
        left = chaos.leftovers()
        if left:
            chaos.figures.violations.append(f"after a clean stop, processes {left} still run")
        chaos.tally()
    finally:
        chaos.stop()
        chaos.cleanup()
    chaos.figures.seconds = time.monotonic() - began
    return chaos.figures
