"""`loopctl fleet --once`: every host in one report (text, json, nagios, openmetrics), exiting with
the worst host's code (see table.fleet_exit_code)."""

from __future__ import annotations

import json

from console.fleet.table import COLUMNS, HostStatus, exit_code_of, fleet_exit_code, row_cells, state_word, summary
from console.readmodel.nagios import _clean

FORMATS = ("text", "json", "nagios", "openmetrics")
FLEET_STATES = ("ok", "paused", "degraded", "down", "unreachable", "stale", "connecting")


def render_text(statuses: list[HostStatus], now: float) -> str:
    rows = [tuple(label for _key, label in COLUMNS), *(row_cells(s, now) for s in statuses)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = [summary(statuses)]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    return "".join(line + "\n" for line in lines)


def render_json(statuses: list[HostStatus], now: float) -> str:
    code = fleet_exit_code(statuses)
    hosts = [{
        "name": s.name, "url": s.url, "state": state_word(s), "exit_code": exit_code_of(s), "reason": s.reason,
        "sidecars": {"ready": s.counts.sidecars_ready, "total": s.counts.sidecars_total},
        "loops": {"active": s.counts.loops_active, "escalated": s.counts.loops_escalated},
        "runs_running": s.counts.runs_running,
        "last_push_age_seconds": None if s.pushed_at is None else round(max(0.0, now - s.pushed_at), 3),
    } for s in statuses]
    from console.core.errors import MONITORING_WORDS  # noqa: PLC0415

    return json.dumps({"status": MONITORING_WORDS[code], "exit_code": code, "hosts": hosts}, indent=2,
                      sort_keys=True) + "\n"


def render_nagios(statuses: list[HostStatus], now: float) -> str:
    """One status line naming the hosts that are not OK, perfdata per state; then one line per host."""
    head = summary(statuses)
    bad = [s for s in statuses if exit_code_of(s) != 0]
    if bad:
        head += " (" + "; ".join(f"{s.name}: {state_word(s)}{': ' + s.reason if s.reason else ''}"
                                 for s in bad[:5]) + ")"
    perf = " ".join(f"{word}={sum(1 for s in statuses if state_word(s) == word)};;;0;{len(statuses)}"
                    for word in FLEET_STATES)
    lines = [f"{_clean(head)} | {perf}"]
    lines += [_clean(f"{s.name}: {state_word(s)} - {s.reason or 'ok'}") for s in statuses]
    return "".join(line + "\n" for line in lines)


def render_openmetrics(statuses: list[HostStatus], now: float) -> str:
    from prometheus_client import CollectorRegistry  # noqa: PLC0415
    from prometheus_client.core import GaugeMetricFamily, Metric, StateSetMetricFamily  # noqa: PLC0415
    from prometheus_client.openmetrics.exposition import generate_latest  # noqa: PLC0415

    class Fleet:
        def collect(self) -> list[Metric]:
            state = StateSetMetricFamily("loopctl_fleet_host_state", "Each host's state as the fleet sees it",
                                         labels=["host"])
            up = GaugeMetricFamily("loopctl_fleet_host_reachable", "1 when the host's engine answered",
                                   labels=["host"])
            age = GaugeMetricFamily("loopctl_fleet_host_push_age_seconds", "Age of the host's last snapshot",
                                    labels=["host"])
            for s in statuses:
                word = state_word(s)
                state.add_metric([s.name], {w: w == word for w in FLEET_STATES})
                up.add_metric([s.name], int(s.level is not None))
                if s.pushed_at is not None:
                    age.add_metric([s.name], max(0.0, now - s.pushed_at))
            return [state, up, age]

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Fleet())
    data: bytes = generate_latest(registry)  # type: ignore[no-untyped-call]
    return data.decode("utf-8")


def render(statuses: list[HostStatus], fmt: str, now: float) -> str:
    return {"text": render_text, "json": render_json, "nagios": render_nagios,
            "openmetrics": render_openmetrics}[fmt](statuses, now)
