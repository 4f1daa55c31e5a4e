"""`loopctl demo [--state-dir D] [--once]`: a host that shows every state loopctl knows, in a minute.

It starts the reference control plane on a free loopback port, joins a demo host to it, and stages
what a real host's history would hold: a previous engine's remote config that failed its probation
(rolled back at boot, with its reason), a run whose process died with that engine (lost, retried
once). The served config then applies and sits on probation with its timer running; a foreign
process holds one sidecar's port; a managed loop's token goes stale and is revived by proof of
possession; a user loop's token is refused; runs advance, plan without acting and continue, and
time out. Then the console opens (it owns the engine), or with --once the report is printed. Every
process the demo started ends with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from console.core.errors import LoopctlError

AGENTS = {
    # Writes a handoff with evidence: the run advanced.
    "advance.py": """import json, os
json.dump({"summary": "updated the install section", "next_action": "review the changelog",
           "actionability": "runnable", "evidence": {"files_changed": ["README.md"], "commits": [], "artifacts": []}},
          open(os.environ["LOOPCTL_HANDOFF"], "w"))
""",
    # Plans without acting: plan_only, so the engine continues it (twice, then escalates).
    "plan.py": """import json, os
json.dump({"summary": "triaged the queue", "next_action": "label #812 as bug", "actionability": "runnable",
           "evidence": {"files_changed": [], "commits": [], "artifacts": []}}, open(os.environ["LOOPCTL_HANDOFF"], "w"))
""",
    # Outlives its timeout.
    "slow.py": "import time\ntime.sleep(120)\n",
    # A foreign process holding a port (no loopctl token in its environment).
    "foreign.py": """import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(); time.sleep(3600)
""",
}
DESIGNED_WITHIN = 75.0
DEMO_VARIABLE = "LOOPCTL_DEMO"  # the demo's directory, in the environment of everything it starts


def free_port() -> int:
    import socket  # noqa: PLC0415

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Demo:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.state = root / "state"
        self.config = root / "loopctl.toml"
        self.agents = root / "agents"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.plane = ""
        self.host_id = ""
        self.ports = {name: free_port() for name in ("plane", "web", "monitor", "metrics")}
        self.user_loop = ""
        self._stop = threading.Event()
        os.environ[DEMO_VARIABLE] = str(root)  # before anything starts: what `sweep` proves ownership by

    # -- processes the demo owns ---------------------------------------------------------------------

    def _spawn(self, *args: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([sys.executable, *args], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        """End what the demo started. Its own children are certainly ours (unwaited Popen handles: the
        pid cannot have been reused); anything an engine left is swept by `sweep`."""
        from console.core.processes import signal_group  # noqa: PLC0415

        self._stop.set()
        for proc in self.procs:
            if proc.poll() is None:
                signal_group(proc.pid, signal.SIGTERM)  # each runs in its own session: pgid == pid
        for proc in self.procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                signal_group(proc.pid, signal.SIGKILL)
                proc.wait()
        self.sweep()

    def sweep(self) -> None:
        """Processes left by an engine that did not stop cleanly (a killed console). Ours, proven: the
        demo's own directory in their environment (LOOPCTL_DEMO, set before anything was started, so
        every descendant carries it). A parent (`timeout`, a CI runner, a Python subprocess) may name the
        directory too, and shares our process group: naming it proves nothing, and it is never touched."""
        import psutil  # noqa: PLC0415

        from console.core.processes import signal_pid  # noqa: PLC0415

        own_group = os.getpgrp()
        for proc in psutil.process_iter(["pid"]):
            with contextlib.suppress(psutil.Error, OSError):
                if proc.pid == os.getpid() or proc.environ().get(DEMO_VARIABLE) != str(self.root):
                    continue
                if os.getpgid(proc.pid) == own_group:
                    continue  # nothing of the engine's runs in our group (each has its own session)
                signal_pid(proc.pid, signal.SIGKILL)

    def _admin(self, what: str, **body: Any) -> dict[str, Any]:
        import httpx  # noqa: PLC0415

        response = httpx.post(f"{self.plane}/admin/{what}", json=body, timeout=5, trust_env=False)
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    def start_plane(self) -> None:
        import httpx  # noqa: PLC0415

        port = self.ports["plane"]
        self._spawn("-m", "console", "controlplane", "serve", "--port", str(port),
                    "--state", str(self.root / "plane.json"))
        self.plane = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.post(f"{self.plane}/admin/join-tokens", timeout=1, trust_env=False).status_code == 201:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise LoopctlError(f"demo: the reference control plane did not start on port {port}")
            time.sleep(0.1)

    # -- the staged host -------------------------------------------------------------------------------

    def prepare(self) -> None:
        from console.core.paths import Paths, ensure_state_dir  # noqa: PLC0415

        self.root.mkdir(parents=True, exist_ok=True)
        self.agents.mkdir(exist_ok=True)
        (self.root / "www").mkdir(exist_ok=True)
        for name, text in AGENTS.items():
            (self.agents / name).write_text(text)
        ensure_state_dir(Paths(self.state, self.config, True))
        self.start_plane()
        self._spawn(str(self.agents / "foreign.py"), str(self.ports["monitor"]))
        self._join()
        self._stage_history()
        threading.Thread(target=self._stale_the_managed_token, name="demo-stale-token", daemon=True).start()

    def _join(self) -> None:
        from console.controlplane.answers import Joined  # noqa: PLC0415
        from console.controlplane.client import ControlPlaneClient  # noqa: PLC0415
        from console.controlplane.identity import load_or_create_key, store_refresh_token  # noqa: PLC0415
        from console.core.atomic import atomic_write_text  # noqa: PLC0415

        key = load_or_create_key(self.state)
        token = self._admin("join-tokens")["join_token"]

        async def exchange() -> Joined:
            client = ControlPlaneClient(self.plane, key)
            try:
                joined = (await client.join(token, "demo-host")).record
            finally:
                await client.close()
            if joined is None:
                raise RuntimeError("the demo's control plane did not answer the join")
            return joined

        joined = asyncio.run(exchange())
        self.host_id = joined.host_id
        store_refresh_token(self.state, joined.refresh_token)
        user_loop = self._admin("create-loop", host_id=self.host_id, name="ci-bot")["loop_id"]
        secrets = self.state / "secrets"
        atomic_write_text(secrets / "ci-bot.token", "rk_not-the-token-the-control-plane-issued\n", mode=0o600)
        self.user_loop = user_loop
        atomic_write_text(self.config, f'[host]\nname = "demo-host"\n\n[control_plane]\nurl = "{self.plane}"\n'
                                       f'host_id = "{self.host_id}"\nheartbeat_interval_seconds = 5\n'
                                       f"loop_heartbeat_seconds = 5\npoll_interval_seconds = 3600\n", mode=0o600)

    def publish_plugin(self) -> dict[str, str]:
        """A small tool plugin, served by the control plane, pinned by its sha256."""
        import base64  # noqa: PLC0415
        import io  # noqa: PLC0415
        import tarfile  # noqa: PLC0415

        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
            for name, data in (("bin/lint", b"#!/bin/sh\necho lint ok\n"),
                               ("plugin.json", b'{"name": "repo-tools", "version": "2.4.1"}')):
                info = tarfile.TarInfo(name)
                info.size, info.mode = len(data), 0o755
                archive.addfile(info, io.BytesIO(data))
        published = self._admin("publish", name="repo-tools-2.4.1.tgz",
                                content_b64=base64.b64encode(buffer.getvalue()).decode())
        return {"name": "repo-tools", "version": "2.4.1", "source": published["url"],
                "artifact_hash": "sha256:" + published["sha256"]}

    def document(self, *, extra_sidecar: bool = False, triage_interval: float = 5,
                 plugin: dict[str, str] | None = None) -> dict[str, Any]:
        py = sys.executable

        def serve(port: str) -> list[str]:  # the demo's directory in every command line (see sweep)
            return [py, "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(self.root / "www"),
                    str(self.ports[port])]

        sidecars: list[dict[str, Any]] = [
            {"name": "web", "command": serve("web"), "port": self.ports["web"]},
            {"name": "agent-monitor", "command": serve("monitor"), "port": self.ports["monitor"], "max_restarts": 0},
        ]
        if extra_sidecar:
            sidecars.append({"name": "metrics", "command": serve("metrics"), "port": self.ports["metrics"]})
        agent = str(self.agents)
        return {
            "poll_interval_seconds": 3600,
            "plugin": [plugin] if plugin else [],
            "sidecar": sidecars,
            "loop": [
                {"id": "docs", "command": [py, f"{agent}/advance.py"], "interval_seconds": 20,
                 "objective": "keep the README true"},
                {"id": "triage", "command": [py, f"{agent}/plan.py"], "interval_seconds": triage_interval,
                 "objective": "label new issues"},
                {"id": "refactor", "command": [py, f"{agent}/slow.py"], "run_timeout_seconds": 3,
                 "interval_seconds": 3600},
                {"id": "ci-bot", "command": [py, f"{agent}/advance.py"], "provenance": "user",
                 "token_file": str(self.state / "secrets" / "ci-bot.token"), "remote_id": self.user_loop,
                 "interval_seconds": 3600},
            ],
        }

    def _stage_history(self) -> None:
        """What an earlier engine would have left: document A proven, document B applied and then the
        engine died inside B's probation (its window now past), and a run whose process died with it."""
        from console.core.clock import SystemClock  # noqa: PLC0415
        from console.core.processes import boot_time  # noqa: PLC0415
        from console.core.store import RUN_KIND, Store  # noqa: PLC0415
        from console.remote.probation import Marker  # noqa: PLC0415
        from console.remote.slots import ControlState, Slots  # noqa: PLC0415
        from console.runs.ledger import RunIds, queue_run  # noqa: PLC0415

        slots = Slots(self.state / "config")
        good = json.dumps(self.document()).encode()
        bad = json.dumps(self.document(triage_interval=1)).encode()
        slots.write_document("a", good)
        slots.write_etag("a", '"demo-a"', good)
        slots.write_document("b", bad)
        slots.write_etag("b", '"demo-b"', bad)
        staged = time.time() - 900
        slots.save_state(ControlState(marker=Marker("b", '"demo-b"', staged, staged + 120, "a", '"demo-a"')))
        slots.flip("b")
        update = self.document(extra_sidecar=True, plugin=self.publish_plugin())
        self._admin("set-config", host_id=self.host_id, document=update)

        gone = subprocess.Popen(["true"])
        gone.wait()
        store = Store.open(self.state / "loopctl.db", SystemClock())
        try:
            run_id = RunIds().new(time.time() - 60)
            queue_run(store, run_id, "refactor", "scheduled", timeout=3)
            store.transition(RUN_KIND, run_id, "running", f"started pid {gone.pid}", {"loop": "refactor"}, columns={
                "pid": gone.pid, "pgid": gone.pid, "create_time": None, "boot_time": boot_time(),
                "session_token": run_id, "started_at": time.time() - 60})
        finally:
            store.close()

    def _stale_the_managed_token(self) -> None:
        """Once the engine has created the managed loop `docs`, its runner token goes stale on the
        control plane: the next heartbeat gets 401 and revives it by proof of possession."""
        token_file = self.state / "secrets" / "loops" / "docs.token"
        while not self._stop.is_set() and not token_file.exists():
            time.sleep(0.2)
        if self._stop.is_set():
            return
        from console.core.store import Store  # noqa: PLC0415

        with contextlib.suppress(Exception):  # the demo goes on if the stage cannot be set
            from console.core.clock import SystemClock  # noqa: PLC0415

            store = Store.open_snapshot(self.state / "loopctl.db", SystemClock())
            if store is not None:
                binding = store.thing("binding", "docs")
                store.close()
                if binding is not None:
                    self._admin("expire-token", loop_id=binding.detail["remote_id"])


def designed(snap: Any) -> list[str]:
    """What the demo is waiting for, still missing (empty: every designed state is on show)."""
    missing = []
    sidecars = {s.name: s for s in snap.sidecars}
    if getattr(sidecars.get("web"), "state", "") != "ready":
        missing.append("web ready")
    if getattr(sidecars.get("agent-monitor"), "reason", "") != "port_conflict":
        missing.append("agent-monitor port_conflict")
    loops = {lp.id: lp for lp in snap.loops}
    if getattr(loops.get("ci-bot"), "state", "") != "finalized":
        missing.append("ci-bot finalized")
    if getattr(loops.get("triage"), "state", "") != "escalated":
        missing.append("triage escalated after its continuations")
    binding = next((t for t in snap.things if t.kind == "binding" and t.name == "docs"), None)
    if binding is None or "revived" not in binding.reason:
        missing.append("docs revived by proof of possession")
    runs = snap.runs
    if not any(r.liveness == "advanced" for r in runs):
        missing.append("a run that advanced")
    if not any(r.stop_reason == "process_lost" for r in runs) or not any(r.retry_of_run_id for r in runs):
        missing.append("a lost run and its retry")
    if not any(r.stop_reason == "timeout" for r in runs):
        missing.append("a run that timed out")
    rc = snap.remote_config
    if rc is None or rc.probation_deadline is None or rc.last_rollback is None:
        missing.append("a config on probation after a rollback")
    if not any(p.name == "repo-tools" and p.state == "installed" for p in snap.plugins):
        missing.append("the repo-tools plugin installed")
    return missing


async def _once(demo: Demo, report_format: str = "text") -> int:
    from console.core.clock import SystemClock  # noqa: PLC0415
    from console.core.config import load_config  # noqa: PLC0415
    from console.core.paths import Paths  # noqa: PLC0415
    from console.core.printable import printable  # noqa: PLC0415
    from console.host.lease import Lease  # noqa: PLC0415
    from console.host.owner import Owner  # noqa: PLC0415
    from console.readmodel.report import exit_code, render  # noqa: PLC0415

    paths = Paths(demo.state, demo.config, True)
    lease = Lease.try_acquire(paths.lock)
    if lease is None:
        raise LoopctlError(f"demo: an engine already owns {demo.state}")
    async with Owner(paths, load_config(paths), SystemClock(), lease) as engine:
        deadline = time.monotonic() + DESIGNED_WITHIN
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        # Stop cleanly, also when the terminal goes away: the engine ends its sidecars and runs.
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, stop.set)
        while (missing := designed(engine.snapshot())) and time.monotonic() < deadline and not stop.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await engine.changes.wait_newer(engine.changes.version)
        snap = engine.snapshot()
        if missing:
            print(f"demo: not every designed state showed within {DESIGNED_WITHIN:g} s: still waiting for "
                  f"{', '.join(missing)}", file=sys.stderr)
        print(printable(render(snap, report_format)), end="")
        return exit_code(snap)


def run_demo(state_dir: str | None, *, once: bool, report_format: str = "text") -> int:
    root = Path(state_dir) if state_dir else Path(tempfile.mkdtemp(prefix="loopctl-demo-"))
    if state_dir is not None and root.exists() and any(root.iterdir()):
        raise LoopctlError(f"demo: {root} is not empty: give --state-dir a new or empty directory")
    demo = Demo(root.absolute())
    try:
        demo.prepare()
        print(f"loopctl demo: state in {demo.state}, control plane {demo.plane}", file=sys.stderr)
        if once:
            return asyncio.run(_once(demo, report_format))
        from console.core.paths import Paths  # noqa: PLC0415
        from console.tui.app import run_console  # noqa: PLC0415
        from console.tui.source import choose_source  # noqa: PLC0415

        paths = Paths(demo.state, demo.config, True)
        return run_console(choose_source(paths, read_only=False), paths)
    except KeyboardInterrupt:
        return 130
    finally:
        demo.close()
        if state_dir is None:
            shutil.rmtree(root, ignore_errors=True)
