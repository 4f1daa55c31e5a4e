"""Benchmark: a real `loopctl run` at scale, 1,000 loops on a 60 s interval and 200 sidecars (each a tiny
TCP listener on its own loopback port), with supervisord beside it for the same 200 sidecars.

    .venv/bin/python tests/bench/bench_scale.py [--loops 1000] [--sidecars 200] [--bursts 3] [--interval 60]
        [--big-loops 2000] [--profile DIR]
    paired with a base commit's engine (the same host run by it first, sampled by this --once), and
    where each --once's time goes: [--base COMMIT] [--phases]
    short: .venv/bin/python tests/bench/bench_scale.py --loops 100 --sidecars 20 --bursts 1 --interval 10 \\
        --big-loops 200 --baseline 5 --requests 50

loopctl is installed the regular way into a throwaway virtualenv (as the README's first command does),
supervisor from PyPI into another (not a project dependency), as bench_once.py does. In order:
1. an empty host (a `loopctl run` with nothing configured): `--once --format json` sampled every 100 ms
   for `--baseline` seconds; the same again at the end, so both ends of the run are paired with it;
2. the 200 sidecars alone, loopctl and supervisord in turn: start to all ready (loopctl: every TCP
   health check passed; supervisord: every program RUNNING, i.e. up for its default startsecs=1), then
   `loopctl --once --format json` and `supervisorctl status` timed alternately, and the engine's threads;
3. the host: 1,000 loops and the 200 sidecars, `--once --format json` sampled every 100 ms (each starts
   100 ms after the previous one started, or when it ends if it took longer: one stall is one long
   sample, not a pile of them) from the engine's start, through its start-up (every sidecar ready,
   every loop's first run finished) and `--bursts` intervals after; the engine's threads at each sample;
   then the engine's CPU per snapshot request (psutil: its CPU over `--requests` socket requests, each
   on a new connection as `--once` makes them, minus its CPU while idle before and after, per request)
   and the bytes of one snapshot;
4. 2,000 loops and the sidecars, sampled the same way through start-up and one interval: never UNKNOWN.

Targets (issue 19): max < 300 ms and median <= 1.5x the empty host's through start-up and the bursts;
0 UNKNOWN (exit 3) at 2,000 loops; engine threads < 20 with 200 sidecars; engine CPU per snapshot request
at 1,000 loops <= 3 ms; a snapshot at 1,000 loops <= 221 KB (half of the 442 KB issue 19 measured).
Exit 1 while any is missed. `--profile DIR` records the engine with py-spy (if installed) through its
start-up and its first burst at 1,000 loops, and prints where its main thread spends its time.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import REPO, free_port, make_venv, stop_all, summary, supervisord_version, wait_for

HANDOFF = 'echo \'{"summary": "ok", "evidence": {"commits": ["abc"]}}\' > "$LOOPCTL_HANDOFF"'
# A sidecar: accepts on its port and hangs up, forever (perl: a 4 MiB process that starts in 5 ms).
LISTENER_PL = textwrap.dedent("""
    use IO::Socket::INET;
    my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1:$ARGV[0]", Listen => 128, ReuseAddr => 1) or die "$!";
    while (my $c = $s->accept) { close $c; }
""")
LISTENER_PY = textwrap.dedent("""
    import socket, sys
    s = socket.create_server(("127.0.0.1", int(sys.argv[1])), backlog=128)
    while True:
        s.accept()[0].close()
""")
BASELINE_KB = 442  # issue 19: a snapshot at 1,000 loops and 200 sidecars


@dataclass
class Sample:
    at: float  # seconds since the engine started
    seconds: float
    code: int
    running: int = 0  # loops with a run in progress
    ready: int = 0  # sidecars ready
    first_runs: int = 0  # loops with a finished run
    threads: int = 0
    socket: bool = False  # the engine's socket was there when the sample started
    owner: bool = False  # the answer came from the engine (not the offline view of a host without one)
    phases: dict[str, float] = field(default_factory=dict)  # --phases: ms each phase of `--once` took


@dataclass
class Host:
    name: str
    root: Path
    loopctl: str
    loops: int = 0
    sidecars: list[int] = field(default_factory=list)  # ports
    interval: float = 60.0
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    phases_out: Path | None = None  # --phases: `--once` runs under once_phases.py, which appends here
    engine: str = ""  # the `loopctl` whose `run` is the engine (--base: that commit's); else `loopctl`
    left_behind: int = 0  # processes found under its state dir after its engine exited

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def sock(self) -> Path:
        return self.state / "engine.sock"

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LOOPCTL_", "XDG_"))}
        return {**env, "LOOPCTL_HOME": str(self.state), "XDG_CONFIG_HOME": str(self.root / "config"),
                "HOME": str(self.root)}

    def write_config(self, listener: list[str]) -> None:
        lines = []
        for i, port in enumerate(self.sidecars):
            lines += ["[[sidecar]]", f'name = "side-{i}"', f"command = {json.dumps([*listener, str(port)])}",
                      f"port = {port}", 'health = "tcp"', ""]
        for i in range(self.loops):
            lines += ["[[loop]]", f'id = "loop-{i}"', f"command = {json.dumps(['sh', '-c', HANDOFF])}",
                      f"interval_seconds = {self.interval:g}", ""]
        (self.root / "config/loopctl").mkdir(parents=True, exist_ok=True)
        (self.root / "config/loopctl/loopctl.toml").write_text("\n".join(lines))

    def start(self) -> subprocess.Popen[bytes]:
        self.state.mkdir(parents=True, mode=0o700, exist_ok=True)
        log = (self.root / "engine.log").open("ab")
        self.started = time.monotonic()
        self.proc = subprocess.Popen([self.engine or self.loopctl, "run"], env=self.env, stdout=log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        return self.proc

    def stop(self) -> float:
        """SIGTERM and wait (the engine ends its runs and sidecars); seconds it took to exit. Then what
        the engine left behind is ended: its children as they were just before the SIGTERM, and any
        process whose command line names this host's scratch directory (its sidecars': the listener
        script is there). Never a process the bench did not start."""
        if self.proc is None or self.proc.poll() is not None:
            return 0.0
        children: list[psutil.Process] = []
        with contextlib.suppress(psutil.Error):
            children = psutil.Process(self.proc.pid).children(recursive=True)
        start = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            print(f"bench: the {self.name} engine did not exit within 60 s of SIGTERM: killed", flush=True)
            self.proc.kill()
            self.proc.wait()
        took = time.monotonic() - start
        self.left_behind += self.sweep(children)
        return took

    def sweep(self, children: list[psutil.Process]) -> int:
        _gone, alive = psutil.wait_procs(children, timeout=2)
        found = {p.pid: p for p in alive}
        scratch = str(self.root.parent)
        for proc in psutil.process_iter(["cmdline"]):
            with contextlib.suppress(psutil.Error):
                if proc.pid != os.getpid() and any(scratch in arg for arg in proc.info["cmdline"] or []) \
                        and proc.ppid() == 1:
                    found[proc.pid] = proc
        for proc in found.values():
            with contextlib.suppress(psutil.Error):
                proc.kill()
        psutil.wait_procs(list(found.values()), timeout=5)
        if found:
            print(f"bench: the {self.name} engine left {len(found)} processes behind (ended)", flush=True)
        return len(found)

    def once(self) -> tuple[float, int, bytes]:
        argv = [self.loopctl, "--once", "--format", "json"]
        if self.phases_out is not None:
            argv = [str(Path(self.loopctl).with_name("python")), str(PHASES), str(self.phases_out), *argv[1:]]
        spawned = time.time()
        start = time.perf_counter()
        out = subprocess.run(argv, env=self.env, capture_output=True, check=False)
        took = time.perf_counter() - start
        if self.phases_out is not None:
            self.last_phases = phases_of(self.phases_out, spawned, spawned + took)
        return took, out.returncode, out.stdout

    last_phases: dict[str, float] = field(default_factory=dict)


# once_phases.py's marks, in order: each phase is named by the mark that ends it.
PHASES = Path(__file__).resolve().with_name("once_phases.py")
PHASE_MARKS = ("main", "sent", "first_byte", "answer", "decoded", "snapshot", "rendered", "end", "exited")
PHASE_NAMES = {"main": "interpreter start", "sent": "imports+connect", "first_byte": "ENGINE (sent->1st byte)",
               "answer": "read answer", "decoded": "JSON decode", "snapshot": "typed Snapshot",
               "rendered": "render", "end": "write", "exited": "exit"}


def phases_of(path: Path, spawned: float, exited: float) -> dict[str, float]:
    """ms of each phase of the last `--once` (by the mark ending it), from once_phases.py's last line."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        marks = json.loads(path.read_text().splitlines()[-1]) | {"exited": exited}
        out, at = {}, spawned
        for name in PHASE_MARKS:
            if name in marks:
                out[name] = (marks[name] - at) * 1000
                at = marks[name]
        return out
    return {}


def phases_table(samples: list[Sample], worst: int = 12) -> str:
    """The slowest samples' phases and the median of each phase, in ms."""
    have = [s for s in samples if s.phases]
    if not have:
        return "  (no phases recorded)"
    head = f"  {'sample':<22}" + "".join(f"{PHASE_NAMES[m][:14]:>15}" for m in PHASE_MARKS)
    lines = [head]
    med = {m: statistics.median([s.phases.get(m, 0.0) for s in have]) for m in PHASE_MARKS}
    lines.append(f"  {'median of each':<22}" + "".join(f"{med[m]:15.1f}" for m in PHASE_MARKS))
    top = {m: max(s.phases.get(m, 0.0) for s in have) for m in PHASE_MARKS}
    lines.append(f"  {'max of each':<22}" + "".join(f"{top[m]:15.1f}" for m in PHASE_MARKS))
    for s in sorted(have, key=lambda x: -x.seconds)[:worst]:
        label = f"at {s.at:6.1f} s: {s.seconds * 1000:5.0f} ms"
        lines.append(f"  {label:<22}" + "".join(f"{s.phases.get(m, 0.0):15.1f}" for m in PHASE_MARKS))
    return "\n".join(lines)


def raw_snapshot(sock: Path, timeout: float = 10.0) -> bytes:
    """One `snapshot` request on a new connection, as `--once` makes it; the answer line, undecoded."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(sock))
        s.sendall(b'{"id": 1, "op": "snapshot", "schema": 2}\n')  # the tables, as --once asks
        chunks = []
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
            if chunk.endswith(b"\n"):
                break
    return b"".join(chunks)


def records(section: object) -> list[dict[str, object]]:
    """A snapshot's list of records as dicts: on the wire a table (`columns`, `rows`) since schema 2,
    a list of objects before it and in the `--format json` report."""
    if isinstance(section, dict) and "columns" in section:
        return [dict(zip(section["columns"], row, strict=True)) for row in section["rows"]]
    return section if isinstance(section, list) else []


def snapshot(sock: Path) -> dict[str, object] | None:
    """The engine's answer to one snapshot request, its tables as lists of dicts (as a report has them)."""
    with contextlib.suppress(OSError, ValueError):
        answer = json.loads(raw_snapshot(sock))
        if answer.get("ok"):
            snap: dict[str, object] = answer["snapshot"]
            return {key: records(value) if key in ("loops", "sidecars", "runs", "events") else value
                    for key, value in snap.items()}
    return None


def counts(snap: dict[str, object]) -> tuple[int, int, int]:
    """(loops running a run, sidecars ready, loops with a finished run)"""
    loops = snap.get("loops") or []
    sidecars = snap.get("sidecars") or []
    assert isinstance(loops, list) and isinstance(sidecars, list)
    return (sum(lp.get("current_run") is not None for lp in loops), sum(s.get("state") == "ready" for s in sidecars),
            sum(lp.get("last_finished_at") is not None for lp in loops))


def sample_until(host: Host, done: Callable[[list[Sample]], bool], every: float = 0.1,
                 on_sample: Callable[[list[Sample]], None] = lambda _s: None) -> list[Sample]:
    """`--once --format json` every `every` seconds (start to start; never two at once) until `done`."""
    engine = psutil.Process(host.proc.pid) if host.proc is not None else None
    samples: list[Sample] = []
    next_at = time.monotonic()
    while not samples or not done(samples):
        time.sleep(max(0.0, next_at - time.monotonic()))
        next_at = time.monotonic() + every
        at = time.monotonic() - host.started
        there = host.sock.exists()
        seconds, code, out = host.once()
        s = Sample(at, seconds, code, socket=there, phases=host.last_phases)
        with contextlib.suppress(ValueError, KeyError, AssertionError, TypeError):
            snap = json.loads(out)["snapshot"]
            s.running, s.ready, s.first_runs = counts(snap)
            s.owner = bool(snap["engine"]["running"])
        if engine is not None:
            with contextlib.suppress(psutil.NoSuchProcess):
                s.threads = engine.num_threads()
            if host.proc is not None and host.proc.poll() is not None:
                raise SystemExit(f"bench: the {host.name} engine exited {host.proc.returncode}; "
                                 f"see {host.root / 'engine.log'}")
        samples.append(s)
        on_sample(samples)
    return samples


def answered(samples: list[Sample]) -> list[Sample]:
    """The samples an engine answered or should have: those started once its socket was there (before,
    `--once` says at once that no engine owns the host, exit 2: not a latency of the engine)."""
    first = next((i for i, s in enumerate(samples) if s.socket), None)
    return samples[first:] if first is not None else []


def empty_baseline(host: Host, seconds: float) -> list[Sample]:
    end = time.monotonic() + seconds
    return sample_until(host, lambda _s: time.monotonic() > end)


def sections(answer: bytes) -> str:
    """Where a snapshot's bytes go: each top-level section's share, compactly encoded, biggest first."""
    snap = json.loads(answer)["snapshot"]
    sizes = {key: len(json.dumps(value, separators=(",", ":"))) for key, value in snap.items()}
    parts = []
    for key, size in sorted(sizes.items(), key=lambda kv: -kv[1])[:6]:
        items = len(records(snap[key]))
        each = f", {size / items:.0f} B each" if items else ""
        parts.append(f"{key} {size / 1000:.1f} KB ({items or '-'}{each})")
    return "; ".join(parts)


def cpu_per_request(host: Host, requests: int, idle: float = 3.0) -> tuple[float, float, bytes, int]:
    """(engine CPU ms per snapshot request, idle CPU % of a core, bytes of one answer, requests that
    got no answer within 10 s). Measured between bursts where there are any: it waits (at most an
    interval) for a moment with no run in progress."""
    assert host.proc is not None
    engine = psutil.Process(host.proc.pid)
    deadline = time.monotonic() + host.interval
    while time.monotonic() < deadline:
        snap = snapshot(host.sock)
        if snap is not None and counts(snap)[0] == 0:
            break
        time.sleep(0.2)

    def cpu() -> float:
        t = engine.cpu_times()
        return t.user + t.system

    def idle_rate() -> float:
        c, t = cpu(), time.monotonic()
        time.sleep(idle)
        return (cpu() - c) / (time.monotonic() - t)

    before = idle_rate()
    c, t = cpu(), time.monotonic()
    answer, unanswered = b"", 0
    for _ in range(requests):
        try:
            answer = raw_snapshot(host.sock)
        except TimeoutError:
            unanswered += 1
    used, spent = cpu() - c, time.monotonic() - t
    after = idle_rate()
    rate = (before + after) / 2
    return max(0.0, used - rate * spent) / requests * 1000, rate * 100, answer, unanswered


class Profiler:
    """py-spy recording the engine (all threads, idle ones too, without pausing it) until stopped."""

    def __init__(self, out_dir: Path | None) -> None:
        self.out_dir = out_dir
        exe = Path(sys.executable).with_name("py-spy")
        self.exe = str(exe) if exe.exists() else None
        self.proc: subprocess.Popen[bytes] | None = None
        self.files: list[Path] = []

    def start(self, pid: int, name: str) -> None:
        if self.out_dir is None or self.exe is None or self.proc is not None:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        out = self.out_dir / f"{name}.txt"
        self.files.append(out)
        self.proc = subprocess.Popen([self.exe, "record", "--pid", str(pid), "--idle", "--nonblocking",
                                      "--threads", "--rate", "100", "--format", "raw", "-o", str(out)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


def profile_summary(path: Path, top: int = 20) -> str:
    """The main thread's time by function, from py-spy's collapsed stacks: inclusive (the function or
    anything it calls) and self, as % of every sample of that thread (idle in the selector included)."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    own_lines: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if not count.isdigit() or not frames[0].endswith("MainThread"):
            continue
        n = int(count)
        total += n
        names = [frame.rpartition(":")[0] + ")" if ":" in frame else frame for frame in frames[1:]]
        for name in set(names):
            inclusive[name] += n
        if names:
            own[names[-1]] += n
            own_lines[frames[-1]] += n
    if not total:
        return f"  {path.name}: no samples of the main thread"
    lines = [f"  {path.name}: {total} samples of the main thread (100 Hz, idle included)", "    inclusive:"]
    below = [(name, n) for name, n in inclusive.most_common() if n < 0.98 * total]  # not the loop's frames
    lines += [f"    {100 * n / total:5.1f} %  {name}" for name, n in below[:top]]
    lines += ["    self (the last Python frame: time in C under it counts here):"]
    lines += [f"    {100 * n / total:5.1f} %  {name}" for name, n in own.most_common(top)]
    lines += ["    self, by line:"]
    lines += [f"    {100 * n / total:5.1f} %  {name}" for name, n in own_lines.most_common(top)]
    return "\n".join(lines)


def start_supervisord_many(work: Path, bin_dir: Path, listener: list[str],
                           ports: list[int]) -> tuple[subprocess.Popen[bytes], Path]:
    conf = work / "supervisord.conf"
    body = textwrap.dedent(f"""
        [unix_http_server]
        file={work}/supervisor.sock
        [supervisord]
        logfile={work}/supervisord.log
        pidfile={work}/supervisord.pid
        childlogdir={work}
        nodaemon=true
        [rpcinterface:supervisor]
        supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
        [supervisorctl]
        serverurl=unix://{work}/supervisor.sock
    """)
    for i, port in enumerate(ports):
        body += f"[program:side-{i}]\ncommand={' '.join([*listener, str(port)])}\n"
    conf.write_text(body)
    proc = subprocess.Popen([str(bin_dir / "supervisord"), "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    return proc, conf


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


@dataclass
class Row:
    measure: str
    figure: str
    target: str = ""
    ok: bool | None = None  # None: a figure beside the targets, not one

    def line(self) -> str:
        verdict = "" if self.ok is None else ("met" if self.ok else "MISSED")
        return f"{self.measure:<58} {self.figure:<40} {self.target:<22} {verdict}"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--loops", type=int, default=1000)
    parser.add_argument("--sidecars", type=int, default=200)
    parser.add_argument("--bursts", type=int, default=3, help="intervals sampled after start-up")
    parser.add_argument("--interval", type=float, default=60.0, help="each loop's interval_seconds")
    parser.add_argument("--big-loops", type=int, default=2000, help="the host that must never be UNKNOWN (0: skip)")
    parser.add_argument("--baseline", type=float, default=10.0, help="seconds of the empty host, at each end")
    parser.add_argument("--requests", type=int, default=200, help="snapshot requests for the CPU figure")
    parser.add_argument("--status-runs", type=int, default=20, help="status calls each, loopctl and supervisord")
    parser.add_argument("--no-supervisord", action="store_true")
    parser.add_argument("--samples-json", type=Path, help="write every --once sample here")
    parser.add_argument("--profile", type=Path, help="py-spy the 1,000-loop engine's start-up and first burst here")
    parser.add_argument("--base", help="a commit whose engine runs the same host first, sampled by this --once")
    parser.add_argument("--phases", action="store_true",
                        help="time each phase of every --once (once_phases.py) and print the slowest samples' phases")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="loopctl-bench-"))
    procs: list[subprocess.Popen[bytes]] = []
    hosts: list[Host] = []
    profiler = Profiler(args.profile)
    rows: list[Row] = []
    try:
        print("bench: installing loopctl (and supervisor) into temporary virtualenvs ...", flush=True)
        loopctl = str(make_venv(work / "lc", str(REPO)) / "loopctl")
        base_loopctl = None
        if args.base:
            tree = work / "base-tree"
            subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-q", str(tree), args.base],
                           check=True)
            try:
                base_loopctl = str(make_venv(work / "base-venv", str(tree)) / "loopctl")
            finally:
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], check=False)
        sv = None if args.no_supervisord else make_venv(work / "sv", "supervisor")
        script = work / ("listener.pl" if _has_perl() else "listener.py")
        script.write_text(LISTENER_PL if script.suffix == ".pl" else LISTENER_PY)
        listener = ["perl", str(script)] if script.suffix == ".pl" else [sys.executable, str(script)]
        ports = distinct_ports(args.sidecars)

        empty = Host("empty", work / "empty", loopctl, phases_out=work / "empty.phases" if args.phases else None)
        hosts.append(empty)
        procs.append(empty.start())
        wait_for(empty.sock.exists, 30, "the empty host's engine")
        print(f"bench: empty host, {args.baseline:g} s of --once ...", flush=True)
        base_before = empty_baseline(empty, args.baseline)

        # -- the sidecars alone: loopctl, then supervisord ---------------------------------------------
        side = Host("sidecars", work / "sidecars", loopctl, sidecars=ports)
        side.write_config(listener)
        hosts.append(side)
        print(f"bench: {args.sidecars} sidecars alone under loopctl ...", flush=True)
        procs.append(side.start())

        def all_ready() -> bool:
            snap = snapshot(side.sock)
            return snap is not None and counts(snap)[1] == args.sidecars

        wait_for(all_ready, 300, "every sidecar ready", step=0.1)
        lc_ready = time.monotonic() - side.started
        assert side.proc is not None
        lc_threads = psutil.Process(side.proc.pid).num_threads()
        lc_status, sv_status = [], []
        sv_ready = None
        sv_version = ""
        if sv is not None:
            for _ in range(args.status_runs // 2):
                lc_status.append(side.once()[0])
            side.stop()
            print(f"bench: {args.sidecars} sidecars alone under supervisord ...", flush=True)
            sv_version = supervisord_version(sv)
            sv_work = work / "sv-run"
            sv_work.mkdir()
            started = time.monotonic()
            supervisord, conf = start_supervisord_many(sv_work, sv, listener, ports)
            procs.append(supervisord)
            ctl = [str(sv / "supervisorctl"), "-c", str(conf), "status"]

            def sv_all_running() -> bool:
                out = subprocess.run(ctl, capture_output=True, text=True, check=False).stdout
                return bool(out.count(" RUNNING ") == args.sidecars)

            wait_for(sv_all_running, 300, "every supervisord program RUNNING", step=0.1)
            sv_ready = time.monotonic() - started
            for _ in range(args.status_runs):
                start = time.perf_counter()
                subprocess.run(ctl, capture_output=True, check=False)
                sv_status.append(time.perf_counter() - start)
            supervisord.send_signal(signal.SIGTERM)
            supervisord.wait(timeout=60)
            # loopctl's status calls alternated with supervisord's would need both on the same ports at
            # once: the second half of loopctl's runs after supervisord's, so drift hits both sides.
            procs.append(side.start())
            wait_for(all_ready, 300, "every sidecar ready again", step=0.1)
            for _ in range(args.status_runs - len(lc_status)):
                lc_status.append(side.once()[0])
        else:
            for _ in range(args.status_runs):
                lc_status.append(side.once()[0])
        side.stop()

        # -- the host at scale ----------------------------------------------------------------------
        def run_host(name: str, loops: int, bursts: int, profile: bool,
                     engine: str = "") -> tuple[Host, list[Sample], float]:
            host = Host(name, work / name, loopctl, loops=loops, sidecars=ports, interval=args.interval,
                        phases_out=work / f"{name}.phases" if args.phases else None, engine=engine)
            host.write_config(listener)
            hosts.append(host)
            print(f"bench: {loops} loops and {len(ports)} sidecars, start-up and {bursts} interval(s) "
                  f"of {args.interval:g} s ...", flush=True)
            procs.append(host.start())
            assert host.proc is not None
            if profile:
                profiler.start(host.proc.pid, f"{name}-startup")
            startup_end: list[float] = []
            burst_seen = [False]

            def on_sample(samples: list[Sample]) -> None:
                s = samples[-1]
                if not startup_end and s.ready == len(ports) and s.first_runs == loops:
                    startup_end.append(s.at)
                    print(f"bench:   start-up done at {s.at:.1f} s", flush=True)
                    if profile:
                        profiler.stop()
                if profile and startup_end and not burst_seen[0] and s.running > 0 \
                        and s.at > startup_end[0] + args.interval / 4:
                    burst_seen[0] = True
                    assert host.proc is not None
                    profiler.start(host.proc.pid, f"{name}-burst")
                if profile and burst_seen[0] and s.running == 0 and profiler.proc is not None \
                        and samples[-2].running == 0:
                    profiler.stop()

            def done(samples: list[Sample]) -> bool:
                if samples[-1].at > 1800:
                    raise SystemExit(f"bench: {name} never finished its start-up")
                return bool(startup_end) and samples[-1].at > startup_end[0] + bursts * args.interval + 5

            samples = sample_until(host, done, on_sample=on_sample)
            profiler.stop()
            return host, samples, startup_end[0]

        base_seen: list[Sample] = []
        if base_loopctl is not None:  # the base commit's engine first, sampled by this checkout's --once
            base_host, base_samples, _ = run_host("base", args.loops, args.bursts, False, base_loopctl)
            base_host.stop()
            base_seen = answered(base_samples)
        host, samples, startup = run_host("host", args.loops, args.bursts, args.profile is not None)
        cpu_ms, idle_pct, answer, unanswered = cpu_per_request(host, args.requests)
        size = len(answer)
        stop_mid = host.stop()
        if args.samples_json is not None:
            args.samples_json.write_text(json.dumps({"host": [x.__dict__ for x in samples], "startup": startup}))
        big_samples: list[Sample] = []
        big_startup = 0.0
        big = None
        if args.big_loops:
            big, big_samples, big_startup = run_host("big", args.big_loops, 1, False)
            big.stop()
        print(f"bench: empty host again, {args.baseline:g} s of --once ...", flush=True)
        base_after = empty_baseline(empty, args.baseline)

        # -- the table ----------------------------------------------------------------------------------
        base = [s.seconds for s in base_before + base_after]
        base_median = statistics.median(base)
        seen = answered(samples)
        lat = [s.seconds for s in seen]
        in_startup = [s.seconds for s in seen if s.at <= startup]
        in_bursts = [s.seconds for s in seen if s.at > startup]
        threads = max(s.threads for s in samples)
        print()
        print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, load average "
              f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} at the end; {args.loops} loops every "
              f"{args.interval:g} s, {args.sidecars} sidecars (tiny {script.suffix[1:]} TCP listeners), "
              f"{args.bursts} interval(s) after start-up")
        print(f"empty host --once          before: {summary([s.seconds for s in base_before])}")
        print(f"                           after:  {summary([s.seconds for s in base_after])}")
        print(f"host --once, start-up      {summary(in_startup)}  ({len(in_startup)} samples, {startup:.1f} s)")
        if in_bursts:
            print(f"host --once, intervals     {summary(in_bursts)}  ({len(in_bursts)} samples, "
                  f"{max(s.running for s in seen if s.at > startup)} loops running at most)")
        rows.append(Row(f"--once max, start-up + bursts ({len(lat)} samples)", ms(max(lat)), "< 300 ms",
                        max(lat) < 0.3))
        rows.append(Row("--once median / empty host's median (paired)",
                        f"{statistics.median(lat) * 1000:.0f} / {base_median * 1000:.0f} ms = "
                        f"{statistics.median(lat) / base_median:.2f}x", "<= 1.5x",
                        statistics.median(lat) <= 1.5 * base_median))
        if base_seen:
            base_lat = [s.seconds for s in base_seen]
            rows.append(Row(f"  base {args.base}'s engine: max, median / empty host's ({len(base_lat)} samples)",
                            f"{ms(max(base_lat))}, {statistics.median(base_lat) * 1000:.0f} ms = "
                            f"{statistics.median(base_lat) / base_median:.2f}x", "(beside it)", None))
        rows.append(Row("--once UNKNOWN (exit 3) samples", f"{sum(s.code == 3 for s in seen)}", "(figure)", None))
        first_answer = next((s for s in seen if s.owner), None)
        if first_answer is not None and seen:
            rows.append(Row("first answer after the socket appeared",
                            ms(first_answer.at + first_answer.seconds - seen[0].at), "(figure)", None))
        rows.append(Row(f"engine threads, most seen ({args.sidecars} sidecars + loops)", str(threads), "< 20",
                        threads < 20))
        rows.append(Row(f"engine CPU per snapshot request ({args.loops} loops)",
                        f"{cpu_ms:.2f} ms (idle {idle_pct:.1f} % of a core)", "<= 3 ms", cpu_ms <= 3.0))
        rows.append(Row(f"  of those {args.requests} requests, unanswered within 10 s", str(unanswered), "0",
                        unanswered == 0))
        rows.append(Row(f"snapshot bytes ({args.loops} loops, {args.sidecars} sidecars)", f"{size / 1000:.1f} KB",
                        f"<= {BASELINE_KB / 2:.0f} KB", size <= BASELINE_KB / 2 * 1000))
        if answer:
            print(f"snapshot by section: {sections(answer)}")
        rows.append(Row("SIGTERM to exit, after the bursts", f"{stop_mid:.1f} s", "(figure)", None))
        rows.append(Row("processes left behind by stopped engines", str(sum(h.left_behind for h in hosts)), "0",
                        sum(h.left_behind for h in hosts) == 0))
        if big is not None:
            big_seen = answered(big_samples)
            unknown = sum(s.code == 3 for s in big_seen)
            rows.append(Row(f"{args.big_loops} loops: UNKNOWN samples of {len(big_seen)}", str(unknown), "0",
                            unknown == 0))
            rows.append(Row(f"{args.big_loops} loops: --once max / median",
                            f"{ms(max(s.seconds for s in big_seen))} / "
                            f"{ms(statistics.median(s.seconds for s in big_seen))} (start-up {big_startup:.0f} s)",
                            "(figure)", None))
        rows.append(Row(f"{args.sidecars} sidecars alone: loopctl start to all ready", f"{lc_ready:.2f} s", "(figure)",
                        None))
        if sv_ready is not None:
            rows.append(Row(f"  supervisord {sv_version}: start to all RUNNING (startsecs=1)", f"{sv_ready:.2f} s",
                            "(beside it)", None))
        rows.append(Row(f"{args.sidecars} sidecars alone: loopctl --once --format json",
                        f"median {ms(statistics.median(lc_status))}, max {ms(max(lc_status))}", "(figure)", None))
        if sv_status:
            rows.append(Row(f"  supervisorctl status ({sv_version})",
                            f"median {ms(statistics.median(sv_status))}, max {ms(max(sv_status))}", "(beside it)",
                            None))
        rows.append(Row(f"{args.sidecars} sidecars alone: engine threads", str(lc_threads), "< 20", lc_threads < 20))
        print(f"{'measure':<58} {'figure':<40} {'target':<22} result")
        for row in rows:
            print(row.line())
        for path in profiler.files:
            if path.exists():
                print(profile_summary(path))
        if args.phases:
            print("--once phases, ms (each named by what ends it), empty host:")
            print(phases_table(base_before + base_after, worst=3))
            if base_seen:
                print(f"--once phases, ms, {args.loops} loops, base {args.base}'s engine (start-up and bursts):")
                print(phases_table(base_seen))
            print(f"--once phases, ms, {args.loops} loops (start-up and bursts):")
            print(phases_table(seen))
        missed = [r for r in rows if r.ok is False]
        print(f"targets: {'met' if not missed else 'MISSED: ' + ', '.join(r.measure for r in missed)}")
        return 0 if not missed else 1
    finally:
        profiler.stop()
        for host in hosts:
            host.stop()
        stop_all(procs, work)


def distinct_ports(count: int) -> list[int]:
    """`count` loopback ports nothing listens on, no two alike (free_port may hand one out twice)."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


def _has_perl() -> bool:
    with contextlib.suppress(OSError):
        found = subprocess.run(["perl", "-MIO::Socket::INET", "-e", "1"], capture_output=True, check=False)
        return bool(found.returncode == 0)
    return False


if __name__ == "__main__":
    sys.exit(main())
