"""Monitoring outputs: the Monitoring Plugins format, and OpenMetrics read back with prometheus_client."""

from __future__ import annotations

import re

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from console.core.records import replace
from console.readmodel.metrics import prometheus_text, render_openmetrics
from console.readmodel.nagios import render_nagios
from console.readmodel.snapshot import EngineView, HostView, compose
from console.tui.scenario import scenario_snapshot

STATUS = re.compile(r"^LOOPCTL (OK|WARNING|CRITICAL|UNKNOWN) - (?P<text>[^|]+) \| (?P<perf>.+)$")
# 'label'=value[UOM];[warn];[crit];[min];[max]   (Monitoring Plugins development guidelines)
PERF = re.compile(r"^'[^'=]+'=-?\d+(\.\d+)?([a-zA-Z%]*)?;[-~:@0-9.]*;[-~:@0-9.]*;-?[0-9.]*;-?[0-9.]*$")


def parse_nagios(output: str) -> tuple[str, str, dict[str, str], list[str]]:
    first, *long = output.rstrip("\n").split("\n")
    match = STATUS.match(first)
    assert match, f"not a plugin status line: {first!r}"
    perf = {}
    for token in match["perf"].split(" "):
        assert PERF.match(token), f"bad perfdata token {token!r}"
        label, value = token.split("=", 1)
        perf[label.strip("'")] = value
    assert all("|" not in line for line in long)
    return match[1], match["text"], perf, long


def test_nagios_status_line_perfdata_and_long_output():
    status, text, perf, long = parse_nagios(render_nagios(scenario_snapshot()))
    assert status == "WARNING" and text.startswith("degraded: agent-monitor: port 4820 is held by nginx pid 733")
    assert perf["sidecars_failed"] == "1;0;;0;3" and perf["engine_up"] == "1;;1:;0;1"
    assert perf["loops_escalated"].startswith("1;0;")
    assert long[0].startswith("degraded port_conflict [sidecar:agent-monitor]: ")
    assert "-> free port 4820" in long[0] and len(long) == 4
    assert long[-1].startswith("ok remote_config_probation [remote_config:host]: ")  # notes rank last
    snap = scenario_snapshot()
    left = int(snap.remote_config.probation_seconds_left)
    assert left > 0 and perf["remote_config_probation"] == f"{left}s;;;0;"  # graphed, not alerted on
    assert perf["plugins_failed"] == f"0;0;;0;{len(snap.plugins)}"


def test_nagios_when_no_engine_runs_is_critical():
    snap = compose(now=1.0, host=HostView("h", "/s", "/c", False, 0), engine=EngineView(False, "offline"),
                   things=[], events=[])
    status, text, perf, _long = parse_nagios(render_nagios(snap))
    assert status == "CRITICAL" and text.startswith("down: no engine owns /s")
    assert perf["engine_up"].startswith("0;") and perf["remote_config_probation"] == "0s;;;0;"


def test_a_pipe_in_a_reason_cannot_break_the_format():
    from console.readmodel.snapshot import SidecarView

    snap = compose(now=1.0, host=HostView("h", "/s", "/c", True, 1), engine=EngineView(True, "owner", pid=1),
                   things=[], events=[], sidecars=[SidecarView(name="x", state="failed", reason="crash_loop",
                                                                reason_text="exited: a | b", action="retry | now")])
    _status, text, _perf, long = parse_nagios(render_nagios(snap))
    assert "a / b" in text and "retry / now" in long[0]


def test_openmetrics_parses_back_with_prometheus_client():
    text = render_openmetrics(scenario_snapshot())
    assert text.endswith("# EOF\n")
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert {"loopctl_engine_up", "loopctl_tray_state", "loopctl_sidecar_state", "loopctl_loop_state",
            "loopctl_recent_runs", "loopctl_host", "loopctl_tray_reasons", "loopctl_sidecar_restarts"} <= set(families)
    tray = {s.labels["loopctl_tray_state"]: s.value for s in families["loopctl_tray_state"].samples}
    assert tray == {"ok": 0, "paused": 0, "degraded": 1, "down": 0}
    failed = [s for s in families["loopctl_sidecar_state"].samples if s.labels["sidecar"] == "agent-monitor"
              and s.value == 1]
    assert [s.labels["loopctl_sidecar_state"] for s in failed] == ["failed"]
    runs = {s.labels["status"]: s.value for s in families["loopctl_recent_runs"].samples}
    assert runs["timed_out"] == 1 and runs["running"] == 1
    rc = {s.labels["loopctl_remote_config_state"]: s.value for s in families["loopctl_remote_config_state"].samples}
    assert rc["probation"] == 1 and sum(rc.values()) == 1
    [left] = families["loopctl_remote_config_probation_seconds"].samples
    assert left.value == 140.0
    plugins = [(s.labels["plugin"], s.labels["loopctl_plugin_state"]) for s in families["loopctl_plugin_state"].samples
               if s.value == 1]
    assert plugins == [("repo-tools", "installed")]
    # agent-monitor gave up after 6 failed starts: it used its 5 restarts, never 6 of 5
    restarts = {s.labels["sidecar"]: s.value for s in families["loopctl_sidecar_restarts"].samples}
    assert restarts["agent-monitor"] == 5 and restarts["vector-cache"] == 2


def test_the_textfile_format_is_prometheus_text_for_node_exporter():
    from prometheus_client.parser import text_string_to_metric_families as parse_text

    families = {f.name for f in parse_text(prometheus_text(scenario_snapshot()).decode())}
    assert "loopctl_engine_up" in families and "loopctl_sidecar_restarts" in families


@pytest.mark.parametrize("fmt", ["nagios", "openmetrics"])
def test_every_format_renders_an_empty_offline_host(fmt):
    from console.readmodel.report import render

    snap = compose(now=1.0, host=HostView("h", "/s", "/c", False, 0), engine=EngineView(False, "offline"),
                   things=[], events=[])
    assert render(snap, fmt)


def test_a_failed_plugin_counts_in_the_perfdata():

    from console.readmodel.snapshot import PluginView

    plugins = [PluginView("repo-tools", "2.4.1", "failed", "hash_mismatch"), PluginView("other", "1.0", "installed")]
    snap = replace(scenario_snapshot(), plugins=plugins)
    _status, _text, perf, _long = parse_nagios(render_nagios(snap))
    assert perf["plugins_failed"] == "1;0;;0;2"  # above the warning threshold of 0
