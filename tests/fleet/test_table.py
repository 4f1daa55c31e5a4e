"""The fleet table's pure parts: each host's row, the fleet's worst state and exit code, the reports."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from console.core.records import replace
from console.fleet.report import render
from console.fleet.table import (
    HostStatus,
    age_text,
    fleet_exit_code,
    fleet_level,
    lost,
    row_cells,
    watched,
)
from console.readmodel.snapshot import SNAPSHOT_SCHEMA, EngineView, HostView, LoopView, RunView, SidecarView, Snapshot
from console.readmodel.tray import Level, Reason, roll_up

NOW = 1_767_225_600.0


def snap(level: Level = Level.OK) -> Snapshot:
    reasons = [] if level is Level.OK else [Reason(level=level, code="crash_loop", text="web: gave up", action="x")]
    return Snapshot(
        schema=SNAPSHOT_SCHEMA, generated_at=NOW,
        host=HostView(name="h", state_dir="/s", config_path="/c", config_present=True, configured_count=3),
        engine=EngineView(running=True, source="owner", pid=42),
        tray=roll_up(reasons),
        sidecars=[SidecarView(name="web", state="ready"), SidecarView(name="db", state="failed")],
        loops=[LoopView(id="a"), LoopView(id="b", state="escalated")],
        runs=[RunView(id="r1", loop_id="a", status="running"), RunView(id="r2", loop_id="a", status="failed")],
    )


def test_a_watched_host_counts_what_its_snapshot_holds():
    s = watched("edge-1", "ssh://edge-1", snap(Level.DEGRADED), NOW - 3)
    assert row_cells(s, NOW) == ("edge-1", "degraded", "1/2", "1/1", "1", "<1m ago", "web: gave up")
    assert [age_text(replace(s, pushed_at=NOW - age), NOW) for age in (59, 60, 3599, 3600, 86400)] == [
        "<1m ago", "1m ago", "59m ago", "1h ago", "1d ago"]


def test_an_unreachable_host_keeps_what_was_last_seen_and_counts_down_to_its_retry():
    before = watched("edge-1", "ssh://edge-1", snap(), NOW - 60)
    s = lost(before, "ssh edge-1: ssh: connect to host edge-1 port 22: Connection refused", NOW + 4)
    assert s.level is None and s.snapshot is None and s.pushed_at == NOW - 60
    assert row_cells(s, NOW) == ("edge-1", "unreachable", "1/2", "1/1", "1", "retry in 4s",
                                 "ssh: connect to host edge-1 port 22: Connection refused")
    shown = [age_text(replace(s, retry_at=NOW + 12), NOW + t + 0.5) for t in range(10)]
    assert shown == ["retry in 12s"] * 5 + ["retry in 7s"] * 5  # every row's countdown moves on the same tick
    never = lost(HostStatus(name="x", url="ssh://x"), "no answer within 20 s", None)
    assert row_cells(never, NOW)[2:6] == ("-", "-", "-", "-") and age_text(never, NOW) == "-"


levels = st.sampled_from([*Level, None])


@given(st.lists(levels, max_size=8))
def test_the_fleet_is_its_worst_host(picked):
    statuses = [HostStatus(name=f"h{i}", url="local", level=level, problem="" if level else "unreachable")
                for i, level in enumerate(picked)]
    codes = {0 if lv is Level.OK else 1 if lv in (Level.PAUSED, Level.DEGRADED) else 2 if lv is Level.DOWN else 3
             for lv in picked}
    expected = 2 if 2 in codes else 3 if 3 in codes else 1 if 1 in codes else 0 if codes else 3
    assert fleet_exit_code(statuses) == fleet_exit_code(list(reversed(statuses))) == expected
    tray = fleet_level(statuses)
    assert tray is (max((lv or Level.DOWN for lv in picked), key=lambda lv: lv.rank) if picked else Level.OK)


def test_reports_in_every_format():
    statuses = [watched("a", "local", snap(), NOW), watched("b", "ssh://b", snap(Level.DEGRADED), NOW - 1),
                lost(HostStatus(name="c", url="ssh://c"), "ssh c: Host key verification failed.", NOW + 1)]
    text = render(statuses, "text", NOW).splitlines()
    assert text[0] == "LOOPCTL FLEET UNKNOWN - 3 hosts: 1 degraded, 1 ok, 1 unreachable"
    assert text[1].split() == ["Host", "State", "Sidecars", "Loops", "a/e", "Running", "Last", "push", "Top",
                               "reason"]
    assert all(not line.endswith(" ") for line in text)
    data = json.loads(render(statuses, "json", NOW))
    assert data["exit_code"] == 3 and [h["state"] for h in data["hosts"]] == ["ok", "degraded", "unreachable"]
    assert data["hosts"][1]["last_push_age_seconds"] == 1.0 and data["hosts"][2]["last_push_age_seconds"] is None
    nagios = render(statuses, "nagios", NOW).splitlines()
    assert nagios[0].startswith("LOOPCTL FLEET UNKNOWN - 3 hosts") and "|" in nagios[0]
    assert nagios[0].count("|") == 1 and "unreachable=1;;;0;3" in nagios[0]
    metrics = render(statuses, "openmetrics", NOW)
    assert 'loopctl_fleet_host_reachable{host="c"} 0.0' in metrics and metrics.endswith("# EOF\n")
