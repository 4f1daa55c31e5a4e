"""A fixed host that shows every state the console knows, at a fixed time: the source of the
committed screenshots and the snapshot tests (and a quick way to see the console without a host)."""

from __future__ import annotations

import hashlib

from console.core.records import replace
from console.core.run_ids import ulid
from console.readmodel.snapshot import (
    ApplyRecord,
    BootRecord,
    ControlPlaneView,
    EngineView,
    EventView,
    HostView,
    LoopView,
    PollRecord,
    PortHolderView,
    RemoteConfigView,
    Rollback,
    RunView,
    SidecarView,
    Snapshot,
    ThingView,
    compose,
)

NOW = 1_767_225_600.0 + 3 * 3600  # 2026-01-01 03:00:00 UTC


def run_id(i: int) -> str:
    """Run i's id as the ledger makes them (the time it was queued, then 80 bits that are random
    there and derived from i here), so the screens show ids as an operator sees them."""
    return ulid(int((NOW - 3000 + i * 60) * 1000), int.from_bytes(hashlib.sha256(b"run%d" % i).digest()[:10]))


def _run(i: int, loop: str, status: str, **kw: object) -> RunView:
    base: dict[str, object] = dict(id=run_id(i), loop_id=loop, status=status, pid=4100 + i,
                                   queued_at=NOW - 3000 + i * 60, started_at=NOW - 2990 + i * 60)
    base.update(kw)
    return RunView(**base)  # type: ignore[arg-type]


def scenario_snapshot(state_dir: str = "/var/lib/loopctl") -> Snapshot:
    sidecars = [
        SidecarView(name="embeddings", state="ready", pid=812, started_at=NOW - 7200, ready_at=NOW - 7198, port=4810,
                    health="http://127.0.0.1:4810/healthz", command=["/usr/bin/embedd", "--port", "4810"],
                    reason_text="healthy (http://127.0.0.1:4810/healthz), pid 812",
                    output_tail=["listening on 127.0.0.1:4810", "model loaded in 2.1 s"]),
        SidecarView(name="agent-monitor", state="failed", reason="port_conflict", attempts=6, max_restarts=5,
                    port=4820, health="tcp", command=["/usr/bin/agent-monitor", "--port", "4820"],
                    reason_text="port 4820 is held by nginx pid 733 (foreign) (gave up after 6 failed starts)",
                    holder=PortHolderView(733, "nginx", False), last_exit="exited with code 1",
                    action="free port 4820 (stop pid 733) or change the sidecar's port, then "
                           "`loopctl retry sidecar:agent-monitor`",
                    output_tail=["bind 127.0.0.1:4820: address already in use"]),
        SidecarView(name="vector-cache", state="backoff", reason="crash_loop", attempts=2, max_restarts=5,
                    next_retry_at=NOW + 4, command=["/usr/bin/vcache"], health="process",
                    reason_text="exited with code 3: cache dir not writable; restart 2 of 5 in 1 s",
                    last_exit="exited with code 3"),
    ]
    loops = [
        LoopView(id="docs", state="active", objective="keep the README true", interval_seconds=600,
                 run_timeout_seconds=1800, current_run=None, next_run_at=NOW + 420, provenance="managed",
                 token_expires_at=NOW + 2400, last_heartbeat="ok", last_heartbeat_at=NOW - 12,
                 last_heartbeat_reason="live: heartbeat accepted"),
        LoopView(id="triage", state="escalated", objective="label new issues",
                 reason=f"run {run_id(4)} plan_only: continuation attempts exhausted", interval_seconds=300,
                 provenance="managed", token_expires_at=NOW + 1800, last_heartbeat="ok", last_heartbeat_at=NOW - 7,
                 last_heartbeat_reason="live: heartbeat accepted"),
        LoopView(id="refactor", state="active", objective="split app.py", interval_seconds=60,
                 run_timeout_seconds=1800, current_run=run_id(7)),
    ]
    runs = list(reversed([
        _run(1, "docs", "succeeded", finished_at=NOW - 2700, exit_code=0, stop_reason="completed",
             liveness="advanced", liveness_reason="evidence: 2 files changed, 1 commits, 0 artifacts",
             summary="updated the install section", last_useful_action_at=NOW - 2710),
        _run(2, "triage", "succeeded", finished_at=NOW - 2600, exit_code=0, stop_reason="completed",
             liveness="plan_only", liveness_reason="planned without acting: label #812 as bug",
             next_action="label #812 as bug"),
        _run(3, "triage", "succeeded", finished_at=NOW - 2500, exit_code=0, stop_reason="completed",
             liveness="plan_only", continuation_attempt=1, next_action="label #812 as bug",
             liveness_reason="planned without acting: label #812 as bug"),
        _run(4, "triage", "succeeded", finished_at=NOW - 2400, exit_code=0, stop_reason="completed",
             liveness="plan_only", continuation_attempt=2, next_action="label #812 as bug",
             liveness_reason="planned without acting: label #812 as bug; continuation attempts exhausted"),
        _run(5, "refactor", "failed", finished_at=NOW - 1900, stop_reason="process_lost",
             error_code="process_lost", error_text="pid 4105 is gone", liveness="failed",
             liveness_reason="run failed: process lost (pid 4105 is gone)"),
        _run(6, "refactor", "timed_out", finished_at=NOW - 100, exit_signal=15, stop_reason="timeout",
             timeout_configured=True, timeout_fired=True, effective_timeout_sec=1800, liveness="failed",
             liveness_reason="run timed_out", retry_of_run_id=run_id(5), process_loss_retry_count=1),
        _run(7, "refactor", "running", started_at=NOW - 95, timeout_configured=True, effective_timeout_sec=1800,
             last_useful_action_at=NOW - 20),
    ]))
    # as the engine does from the ledger's per-loop index: each loop's newest finished run
    finished = {r.loop_id: r for r in reversed(runs) if r.finished_at is not None}
    loops = [replace(lp, last_run_id=run.id, last_liveness=run.liveness, last_stop_reason=run.stop_reason,
                     last_finished_at=run.finished_at) if (run := finished.get(lp.id)) else lp for lp in loops]
    events = [
        EventView(9, NOW - 20, "run", run_id(7), "running", "running", "activity: handoff updated"),
        EventView(8, NOW - 95, "run", run_id(7), "queued", "running", "started pid 4107"),
        EventView(7, NOW - 100, "run", run_id(6), "running", "timed_out", "timed_out: timeout, failed"),
        EventView(6, NOW - 1200, "sidecar", "agent-monitor", "backoff", "failed",
                  "port 4820 is held by nginx pid 733 (foreign) (gave up after 6 failed starts)"),
        EventView(5, NOW - 2400, "loop", "triage", "active", "escalated",
                  f"run {run_id(4)} plan_only: continuation attempts exhausted"),
        EventView(4, NOW - 7198, "sidecar", "embeddings", "starting", "ready", "healthy, pid 812"),
        EventView(3, NOW - 7200, "sidecar", "embeddings", None, "starting", "launching /usr/bin/embedd"),
        EventView(2, NOW - 7201, "engine", "main", "crashed", "running", "engine started (pid 4021)"),
        EventView(1, NOW - 7202, "engine", "main", "running", "crashed",
                  "engine pid 3977 ended without stopping cleanly"),
    ]
    return compose(
        now=NOW,
        host=HostView(name="edge-1", state_dir=state_dir, config_path="/etc/loopctl/loopctl.toml",
                      config_present=True, configured_count=6),
        engine=EngineView(running=True, source="owner", pid=4021, started_at=NOW - 7201, version="0.1.0"),
        things=[ThingView("plugin", "repo-tools", "installed", "2.4.1 installed (sha256 9f86d081884c…)",
                          NOW - 40, {"version": "2.4.1"})], events=events, sidecars=sidecars, loops=loops, runs=runs,
        control_plane=ControlPlaneView(url="https://cp.example", host_id="h_3f9c2a", status="online",
                                       last_heartbeat_at=NOW - 12),
        remote_config=RemoteConfigView(
            state="probation", reason='applied "7c1e09" (slot b); on probation', running_etag='"7c1e09"', slot="b",
            poll_interval_seconds=60, probation_etag='"7c1e09"', probation_started_at=NOW - 40,
            probation_deadline=NOW + 140, bad_etag='"5d0b77"', bad_until=NOW + 2000,
            last_rollback=Rollback('"5d0b77"', "probation_expired", NOW - 3600,
                                   'no successful poll within the probation window of "5d0b77"', "rolled_back",
                                   '"41aa3c"'),
            last_apply=ApplyRecord('"7c1e09"', "applied", NOW - 40, "slot b; on probation"),
            last_boot=BootRecord("none", NOW - 7201),
            last_poll=PollRecord(NOW - 40, "ok", 200, '"7c1e09": applied', True),
            next_poll_at=NOW + 20, host_status="online"),
    )
