"""Metrics from a snapshot, built with prometheus_client (never formatted by hand):
`--once --format openmetrics`, and the node_exporter textfile that `loopctl run --metrics-textfile`
keeps up to date."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric, StateSetMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from console.core.atomic import atomic_write
from console.readmodel.snapshot import Snapshot
from console.readmodel.tray import Level

SIDECAR_STATES = ("stopped", "starting", "ready", "backoff", "stopping", "failed")
LOOP_STATES = ("active", "transient", "paused", "escalated", "finalized", "disabled")
REMOTE_CONFIG_STATES = ("none", "probation", "active", "rejected", "rolled_back", "unproven")
PLUGIN_STATES = ("installed", "failed")
RUN_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled", "timed_out")


class SnapshotCollector:
    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap

    def collect(self) -> Iterator[Metric]:
        snap = self.snap
        info = InfoMetricFamily("loopctl_host", "The host this report is about", labels=["host", "state_dir"])
        info.add_metric([snap.host.name, snap.host.state_dir], {"version": snap.engine.version or "unknown"})
        yield info
        up = GaugeMetricFamily("loopctl_engine_up", "1 when an engine owns the host")
        up.add_metric([], int(snap.engine.running))
        yield up
        tray = StateSetMetricFamily("loopctl_tray_state", "The host's tray state")
        tray.add_metric([], {level.value: snap.tray.state is level for level in Level})
        yield tray
        reasons = GaugeMetricFamily("loopctl_tray_reasons", "Ranked reasons the tray gives, by level and code",
                                    labels=["level", "code"])
        for (level, code), n in sorted(Counter((r.level.value, r.code) for r in snap.tray.reasons).items()):
            reasons.add_metric([level, code], n)
        yield reasons
        sidecar_state = StateSetMetricFamily("loopctl_sidecar_state", "Each sidecar's state", labels=["sidecar"])
        restarts = GaugeMetricFamily("loopctl_sidecar_restarts", "Restarts used since the sidecar was last stable",
                                     labels=["sidecar"])
        for s in snap.sidecars:
            sidecar_state.add_metric([s.name], {state: s.state == state for state in SIDECAR_STATES})
            restarts.add_metric([s.name], s.restarts)
        yield sidecar_state
        yield restarts
        loop_state = StateSetMetricFamily("loopctl_loop_state", "Each loop's state", labels=["loop"])
        for lp in snap.loops:
            loop_state.add_metric([lp.id], {state: lp.state == state for state in LOOP_STATES})
        yield loop_state
        runs = GaugeMetricFamily("loopctl_recent_runs", "Runs among the newest in the snapshot, by status",
                                 labels=["status"])
        counted = Counter(r.status for r in snap.runs)
        for status in RUN_STATUSES:
            runs.add_metric([status], counted[status])
        yield runs
        yield from self._remote_config()

    def _remote_config(self) -> Iterator[Metric]:
        plugins = StateSetMetricFamily("loopctl_plugin_state", "Each declared plugin's state", labels=["plugin"])
        for p in self.snap.plugins:
            plugins.add_metric([p.name], {state: p.state == state for state in PLUGIN_STATES})
        yield plugins
        rc = self.snap.remote_config
        if rc is None:
            return
        state = StateSetMetricFamily("loopctl_remote_config_state", "The remote config's state")
        state.add_metric([], {name: rc.state == name for name in REMOTE_CONFIG_STATES})
        yield state
        left = GaugeMetricFamily("loopctl_remote_config_probation_seconds",
                                 "Seconds left in the running document's probation (0: none)")
        left.add_metric([], rc.probation_seconds_left or 0.0)
        yield left


def registry_for(snap: Snapshot) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(snap))
    return registry


def render_openmetrics(snap: Snapshot) -> str:
    data: bytes = generate_openmetrics(registry_for(snap))  # type: ignore[no-untyped-call]
    return data.decode("utf-8")


def prometheus_text(snap: Snapshot) -> bytes:
    """The text format node_exporter's textfile collector reads."""
    return generate_latest(registry_for(snap))


def write_textfile(path: Path, snap: Snapshot) -> None:
    """Atomic, so node_exporter never reads half a file; 0644 so it can read it at all."""
    atomic_write(path, prometheus_text(snap), mode=0o644)
