"""Benchmark: boot recovery of 100 and of 1,000 managed loops, and one heartbeat round of 1,000
loops, against the reference control plane on loopback.

    .venv/bin/python tests/bench/bench_heartbeats.py

Every loop's token has gone stale and its runner survived the restart, so each recovery is a
heartbeat (401), a proof-of-possession revival and the adoption of the new token (a 0600 file and
a recorded transition). Target (issue 5): growth from 100 to 1,000 no worse than linear, and a
round of 1,000 heartbeats in a few seconds on 2 cores. Exit 1 if the round takes over 10 s or the
growth is worse than 12x for 10x the loops.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from harness import free_port, wait_for

from console.controlplane.client import ControlPlaneClient
from console.controlplane.heartbeats import LoopHeartbeats
from console.core.config import LoopConfig
from console.core.fake_clock import FakeClock
from console.core.store import Store
from console.runs.scheduler import Loops


class Survivors(Loops):
    """Every loop's runner survived the restart (what boot recovery must revive, not finalize)."""

    def had_running_run(self, loop_id: str) -> bool:
        return True

    def runner_survived(self, loop_id: str) -> bool:
        return True


async def recovery(base: str, work: Path, count: int) -> tuple[float, float]:
    client = ControlPlaneClient(base, Ed25519PrivateKey.generate())
    token = httpx.post(f"{base}/admin/join-tokens").json()["join_token"]
    await client.join(token, f"bench-{count}")
    store = Store.open(work / f"db-{count}", FakeClock())
    configs = [LoopConfig(id=f"loop-{i}", command=["true"]) for i in range(count)]
    loops = Survivors(configs, store=store, clock=store.clock, runs_root=work / f"runs-{count}", on_change=lambda: None)
    beats = LoopHeartbeats(client, state_dir=work / f"s-{count}", configs=configs, store=store, clock=store.clock,
                           loops=loops)
    await asyncio.gather(*(beats.bind(cfg) for cfg in configs))
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=32), timeout=60) as http:
        await asyncio.gather(*(http.post(f"{base}/admin/expire-token", json={"loop_id": beats.remote_id(cfg)})
                               for cfg in configs))
    assert all(beats.remote_id(cfg) for cfg in configs), "not every loop was created on the control plane"
    start = time.perf_counter()
    await beats.recover()
    recovered = time.perf_counter() - start
    start = time.perf_counter()
    verdicts = await asyncio.gather(*(beats.beat(cfg, runner_alive=True) for cfg in configs))
    round_time = time.perf_counter() - start
    assert all(v is not None and v.outcome.value == "live" for v in verdicts), "a heartbeat was not live"
    store.close()
    await client.close()
    return recovered, round_time


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="loopctl-hb-bench-"))
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "console", "controlplane", "serve", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        def up() -> bool:
            try:
                return httpx.post(f"{base}/admin/join-tokens", timeout=1).status_code == 201
            except httpx.TransportError:
                return False

        wait_for(up, 20, "the reference control plane")
        small, _ = asyncio.run(recovery(base, work, 100))
        large, round_1000 = asyncio.run(recovery(base, work, 1000))
        print(f"boot recovery (stale token, live runner: heartbeat, revival, adoption), 2 cores, Python "
              f"{sys.version.split()[0]}")
        print(f"  100 loops:   {small:6.2f} s  ({small / 100 * 1000:5.1f} ms per loop)")
        print(f"  1,000 loops: {large:6.2f} s  ({large / 1000 * 1000:5.1f} ms per loop)  growth x{large / small:.1f}")
        print(f"heartbeat round of 1,000 loops: {round_1000:.2f} s")
        ok = round_1000 < 10 and large / small < 12
        print(f"targets (no worse than linear; a round of 1,000 in a few seconds): {'met' if ok else 'MISSED'}")
        return 0 if ok else 1
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
