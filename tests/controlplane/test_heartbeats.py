"""Loop heartbeats, proof-of-possession revival and boot recovery against the reference control plane.

The server counts revival requests per loop, so "no revival request reaches the server" is checked
where it matters: on the server."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from console.controlplane.client import ControlPlaneClient
from console.controlplane.heartbeats import BINDING_KIND, LoopHeartbeats
from console.core.config import LoopConfig
from console.core.fake_clock import FakeClock
from console.core.store import RUN_KIND, Store
from console.runs.ledger import RunIds, latest_runs, queue_run
from console.runs.scheduler import LOOP_KIND, Loops
from tests.conftest import finish_with_clock
from tests.controlplane.conftest import admin


@dataclass
class Rig:
    plane: str
    tmp: Path
    client: ControlPlaneClient
    store: Store
    clock: FakeClock
    made: list

    def loops(self, *cfgs: LoopConfig) -> tuple[Loops, LoopHeartbeats]:
        loops = Loops(list(cfgs), store=self.store, clock=self.clock, runs_root=self.tmp / "runs",
                      on_change=lambda: None)
        beats = LoopHeartbeats(self.client, state_dir=self.tmp, configs=list(cfgs), store=self.store, clock=self.clock,
                               loops=loops)
        self.made.append(loops)
        return loops, beats

    def state(self, loop_id: str = "docs") -> str:
        thing = self.store.thing(LOOP_KIND, loop_id)
        return thing.state if thing else "active"

    def remote(self, loop_id: str = "docs") -> str:
        return self.store.thing(BINDING_KIND, loop_id).detail["remote_id"]

    def inspect(self, loop_id: str = "docs") -> dict:
        return admin(self.plane, "inspect", loop_id=self.remote(loop_id))

    def token(self, loop_id: str = "docs") -> str:
        return (self.tmp / "secrets" / "loops" / f"{loop_id}.token").read_text()

    def database(self) -> bytes:
        return b"".join(p.read_bytes() for p in self.tmp.glob("loopctl.db*"))


def loop(**kw) -> LoopConfig:
    return LoopConfig(id=kw.pop("id", "docs"), command=[sys.executable, "-c", "import time; time.sleep(300)"],
                      interval_seconds=3600, **kw)


@pytest.fixture
async def rig(plane, tmp_path):
    client = ControlPlaneClient(plane, Ed25519PrivateKey.generate())
    await client.join(admin(plane, "join-tokens")["join_token"], "edge-1")
    clock = FakeClock()
    store = Store.open(tmp_path / "loopctl.db", clock)
    r = Rig(plane, tmp_path, client, store, clock, [])
    yield r
    for loops in r.made:
        await finish_with_clock(clock, loops.stop())
    store.close()
    await client.close()


async def test_managed_alive_401_is_revived_persisted_and_heartbeats_resume(rig):
    loops, beats = rig.loops(loop())
    await beats.start()
    loops.start_runners()
    first_token = rig.token()
    assert (await beats.beat(loop(), runner_alive=True)).outcome.value == "live"
    admin(rig.plane, "expire-token", loop_id=rig.remote())
    verdict = await beats.beat(loop(), runner_alive=loops.scheduling("docs"))
    assert verdict.outcome.value == "live" and rig.state() == "active"
    assert rig.inspect()["revivals"] == 1
    revived = rig.store.heartbeats()["docs"]  # the outcome is the store's, not the engine's memory
    jti = rig.store.thing(BINDING_KIND, "docs").detail["jti"]
    assert (revived.outcome, revived.verdict, revived.at) == ("ok", "live", rig.clock.time())
    assert revived.reason == f"revived by proof of possession (token jti {jti}): heartbeat accepted"
    assert rig.token() != first_token  # the new token was adopted and persisted
    binding = rig.store.thing(BINDING_KIND, "docs")
    assert binding.reason.startswith("revived by proof of possession (token jti ")
    assert rig.token().encode() not in rig.database() and first_token.encode() not in rig.database()
    assert (await beats.beat(loop(), runner_alive=True)).outcome.value == "live"
    assert rig.inspect()["revivals"] == 1  # heartbeats resumed on the new token, no further revival
    view = loops.views()[0][0]
    assert view.provenance == "managed" and view.token_expires_at > 0 and rig.store.heartbeats()["docs"].outcome == "ok"


async def test_managed_dead_401_at_boot_sends_no_revival_and_finalizes(rig):
    cfg = loop()
    _first, beats = rig.loops(cfg)
    await beats.bind(cfg)
    # what a killed engine leaves: a running run whose process is gone
    gone = subprocess.Popen(["true"])
    gone.wait()
    run_id = RunIds().new(rig.clock.time())
    queue_run(rig.store, run_id, "docs", "planted")
    rig.store.transition(RUN_KIND, run_id, "running", "planted", columns={"pid": gone.pid, "pgid": gone.pid})
    admin(rig.plane, "expire-token", loop_id=rig.remote())
    boot, beats = rig.loops(cfg)
    await boot.reap_at_boot()
    await beats.recover()
    assert rig.inspect()["revivals"] == 0, "a revival request reached the server for a dead runner"
    assert rig.state() == "finalized" and "unauthorized" in rig.store.thing(LOOP_KIND, "docs").reason
    boot.start_runners()
    rig.clock.advance(10)
    runs = latest_runs(rig.store, "docs")
    assert [r.status for r in runs if r.retry_of_run_id == run_id] == ["queued"]  # finalized: the retry never runs


async def test_a_user_loop_401_is_terminal_without_revival(rig, tmp_path):
    grant = (await rig.client.create_loop("theirs")).record
    token_file = tmp_path / "theirs.token"
    token_file.write_text(grant.runner_token)
    cfg = loop(id="theirs", provenance="user", token_file=str(token_file), remote_id=grant.loop_id)
    _loops, beats = rig.loops(cfg)
    admin(rig.plane, "expire-token", loop_id=grant.loop_id)
    verdict = await beats.beat(cfg, runner_alive=True)
    assert (verdict.outcome.value, verdict.why.value) == ("terminal", "unauthorized")
    assert rig.state("theirs") == "finalized"
    assert admin(rig.plane, "inspect", loop_id=grant.loop_id)["revivals"] == 0


async def test_410_during_revival_finalizes(rig):
    _loops, beats = rig.loops(loop())
    await beats.bind(loop())
    admin(rig.plane, "faults", prefix=f"/v1/loops/{rig.remote()}", status=401, times=1)  # the heartbeat: stale
    admin(rig.plane, "gone", loop_id=rig.remote())  # the revival: gone
    verdict = await beats.beat(loop(), runner_alive=True)
    assert (verdict.outcome.value, verdict.why.value) == ("terminal", "gone")
    assert rig.state() == "finalized" and rig.inspect()["revivals"] == 1
    refused = rig.store.heartbeats()["docs"]
    assert (refused.outcome, refused.verdict) == ("refused", "terminal/gone")
    assert refused.reason == "runner token refused, revival by proof of possession: heartbeat gone"


@pytest.mark.parametrize("fault", [{"status": 503, "retry_after": "5"}, {"stall_seconds": 3}])
async def test_a_transient_failure_during_revival_keeps_the_loop_attached(rig, fault):
    _loops, beats = rig.loops(loop())
    await beats.bind(loop())
    beats.client.deadline = 1.0
    admin(rig.plane, "faults", prefix=f"/v1/loops/{rig.remote()}", status=401, times=1)
    admin(rig.plane, "faults", prefix=f"/v1/loops/{rig.remote()}", times=1, **fault)
    verdict = await beats.beat(loop(), runner_alive=True)
    assert verdict.outcome.value == "transient"
    assert rig.state() == "transient" and "still live" in rig.store.thing(LOOP_KIND, "docs").reason
    failed = rig.store.heartbeats()["docs"]
    assert failed.outcome == "failed" and failed.verdict.startswith("transient/") and "still live" in failed.reason
    assert (await beats.beat(loop(), runner_alive=True)).outcome.value == "live"  # retried later: back
    assert rig.state() == "active"


async def test_an_unreachable_control_plane_is_transient(rig, tmp_path):
    from tests.conftest import free_port

    _loops, beats = rig.loops(loop())
    await beats.bind(loop())
    beats.client = ControlPlaneClient(f"http://127.0.0.1:{free_port()}", rig.client.key)
    verdict = await beats.beat(loop(), runner_alive=True)
    await beats.client.close()
    assert (verdict.outcome.value, verdict.why.value) == ("transient", "network_error") and rig.state() == "transient"


async def test_paused_holds_the_loop_and_resume_releases_it(rig):
    loops, beats = rig.loops(loop())
    await beats.bind(loop())
    admin(rig.plane, "pause", loop_id=rig.remote())
    await beats.beat(loop(), runner_alive=True)
    assert rig.state() == "paused"
    loops.start_runners()
    rig.clock.advance(10)
    import asyncio

    async with asyncio.timeout(10):  # the scheduler parks as held: only a wake starts a run from there
        await loops.runners["docs"].parked.wait()
    assert latest_runs(rig.store, "docs") == []  # paused: no new runs
    admin(rig.plane, "resume", loop_id=rig.remote())
    await beats.beat(loop(), runner_alive=True)
    assert rig.state() == "active"


async def test_timed_out_finalizes(rig):
    _loops, beats = rig.loops(loop())
    await beats.bind(loop())
    admin(rig.plane, "time-out", loop_id=rig.remote())
    await beats.beat(loop(), runner_alive=True)
    assert rig.state() == "finalized" and "timed the loop out" in rig.store.thing(LOOP_KIND, "docs").reason


async def test_connection_refused_during_revival_keeps_the_loop_attached(rig):
    from tests.conftest import free_port

    _loops, beats = rig.loops(loop())
    await beats.bind(loop())
    admin(rig.plane, "faults", prefix=f"/v1/loops/{rig.remote()}", status=401, times=1)  # the heartbeat: stale
    dead_end = ControlPlaneClient(f"http://127.0.0.1:{free_port()}", rig.client.key)  # nothing listens there
    beats.client.revive_loop = dead_end.revive_loop  # the revival meets a refused connection
    verdict = await beats.beat(loop(), runner_alive=True)
    await dead_end.close()
    assert (verdict.outcome.value, verdict.why.value) == ("transient", "network_error")
    assert rig.state() == "transient"
    del beats.client.revive_loop
    assert (await beats.beat(loop(), runner_alive=True)).outcome.value == "live" and rig.state() == "active"


async def test_every_loop_keeps_its_own_jittered_schedule(rig):
    import asyncio

    from console.controlplane.heartbeats import ROUND_SECONDS

    cfgs = [loop(id=f"l{i}") for i in range(5)]  # five random starts in one second: ~1e-6
    loops, beats = rig.loops(*cfgs)
    await beats.start()
    loops.start_runners()
    assert rig.store.heartbeats() == {}
    for _ in range(int(ROUND_SECONDS * 1.1) + 1):  # one round of fake time, a second at a time
        rig.clock.advance(1)
        await asyncio.sleep(0.02)
    for _ in range(50):
        if len(rig.store.heartbeats()) == 5:
            break
        await asyncio.sleep(0.05)
    last = rig.store.heartbeats()
    assert set(last) == {f"l{i}" for i in range(5)} and all(v.outcome == "ok" for v in last.values())
    times = sorted(v.at for v in last.values())
    assert times[0] < times[-1], "the loops heartbeat in step"  # spread, not one burst
    await beats.stop()


async def test_a_heartbeat_outcome_never_starts_a_run_early(rig):
    import asyncio

    handoff = 'echo \'{"summary": "ok", "evidence": {"commits": ["abc"]}}\' > "$LOOPCTL_HANDOFF"'
    cfg = LoopConfig(id="docs", command=["sh", "-c", handoff], interval_seconds=3600)
    loops, beats = rig.loops(cfg)
    await beats.bind(cfg)
    loops.start_runners()
    for _ in range(200):  # the first run, then the 3600 s pause
        if [r for r in latest_runs(rig.store, "docs") if r.finished_at]:
            break
        await asyncio.sleep(0.02)
    async with asyncio.timeout(10):
        await loops.runners["docs"].parked.wait()
    due = loops.runners["docs"].next_run_at
    admin(rig.plane, "faults", prefix=f"/v1/loops/{rig.remote()}", status=503, times=1)
    await beats.beat(cfg, runner_alive=True)  # -> transient
    await beats.beat(cfg, runner_alive=True)  # -> active again
    assert rig.state() == "active"
    # Its pause ends by its due time or by a wake, and nothing woke it: the pause was not cut short.
    assert not loops.runners["docs"].wake.is_set() and loops.runners["docs"].next_run_at == due, \
        "a heartbeat outcome cut the pause between runs short"
    assert len(latest_runs(rig.store, "docs")) == 1


async def test_an_escalated_loop_stays_escalated_through_pause_and_resume_until_the_operator_retries(rig):
    from console.core.actions import Target
    from console.runs.loop_states import LoopEvent
    from console.runs.scheduler import move_loop

    loops, beats = rig.loops(loop())
    await beats.bind(loop())
    assert move_loop(rig.store, "docs", LoopEvent.ESCALATE, "continuation attempts exhausted")
    for status in ("pause", "resume", "pause", "resume"):  # the control plane's noise
        admin(rig.plane, status, loop_id=rig.remote())
        assert (await beats.beat(loop(), runner_alive=True)).outcome.value == "live"
        assert rig.state() == "escalated", f"after {status}: {rig.store.thing(LOOP_KIND, 'docs').reason}"
    await loops.retry(Target("loop", "docs"))
    assert rig.state() == "active"
    admin(rig.plane, "pause", loop_id=rig.remote())
    await beats.beat(loop(), runner_alive=True)
    assert rig.state() == "paused"  # once cleared, the control plane's pause holds it as before
