"""`loopctl fleet --prometheus`: a real Prometheus (Debian's) scraping real node_exporters (Debian's
prometheus-node-exporter, textfile collector only), one per host, each reading an engine's
`--metrics-textfile`. One engine is live, one was killed long ago (its file is an hour old), and one
target has no exporter at all."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import psutil
import pytest

from console.fleet.prometheus import PrometheusError, Sample, hosts_from, parse_answer
from console.fleet.table import STALE, UNREACHABLE
from tests.conftest import Host, free_port, wait_for

pytestmark = pytest.mark.slow
EXPORTER = shutil.which("prometheus-node-exporter") or "prometheus-node-exporter"
PROMETHEUS = shutil.which("prometheus") or "prometheus"


def engine_host(root: Path, name: str) -> Host:
    h = Host(root=root / name, state=root / name / "state", config_dir=root / name / "config")
    (h.root / "home").mkdir(parents=True)
    (h.root / "textfiles").mkdir()
    h.write_config(f'[host]\nname = "{name}"\n\n[[sidecar]]\nname = "web"\ncommand = ["sleep", "86400"]\n')
    return h


def query(base: str, promql: str) -> list[dict]:
    url = f"{base}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    with urllib.request.urlopen(url, timeout=5) as answer:
        return json.load(answer)["data"]["result"]


@pytest.fixture
def stack(tmp_path: Path):
    assert shutil.which(EXPORTER) and shutil.which(PROMETHEUS), "prometheus and prometheus-node-exporter are " \
                                                                  "required (.ci/run installs them)"
    procs: list[subprocess.Popen[bytes]] = []
    live, dead = engine_host(tmp_path, "edge-live"), engine_host(tmp_path, "edge-dead")
    try:
        ports = []
        for h in (live, dead):
            ports.append(free_port())
            procs.append(subprocess.Popen(
                [EXPORTER, f"--web.listen-address=127.0.0.1:{ports[-1]}", "--collector.disable-defaults",
                 "--collector.textfile", f"--collector.textfile.directory={h.root / 'textfiles'}"],
                stdout=subprocess.DEVNULL, stderr=(h.root / "exporter.log").open("wb")))
        nothing = free_port()  # a target no exporter listens on: its scrape fails
        prom_port = free_port()
        targets = ", ".join(f"'127.0.0.1:{p}'" for p in [*ports, nothing])
        (tmp_path / "prometheus.yml").write_text(
            f"global:\n  scrape_interval: 1s\n  scrape_timeout: 500ms\nscrape_configs:\n"
            f"  - job_name: node\n    static_configs:\n      - targets: [{targets}]\n")
        procs.append(subprocess.Popen(
            [PROMETHEUS, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{prom_port}"],
            stdout=subprocess.DEVNULL, stderr=(tmp_path / "prometheus.log").open("wb")))
        for h in (live, dead):
            h.spawn("run", "--metrics-textfile", str(h.root / "textfiles" / "loopctl.prom"))
        for h in (live, dead):
            h.wait_owner(h.procs[0])
        # the dead host: its engine killed, its last textfile left an hour old
        textfile = dead.root / "textfiles" / "loopctl.prom"
        wait_for(textfile.exists, what="edge-dead's textfile")
        dead.procs[0].send_signal(signal.SIGKILL)
        dead.procs[0].wait()
        hour_ago = time.time() - 3600
        os.utime(textfile, (hour_ago, hour_ago))
        base = f"http://127.0.0.1:{prom_port}"

        def scraped() -> bool:
            try:
                engines = query(base, "loopctl_engine_up")
                ups = query(base, "up")
                # the live sidecar's ready written (a textfile is rewritten at most every TEXTFILE_SPACING)
                ready = query(base, f'loopctl_sidecar_state{{loopctl_sidecar_state="ready",'
                                    f'instance="127.0.0.1:{ports[0]}"}} == 1')
            except OSError:
                return False
            return len(engines) == 2 and len(ups) == 3 and len(ready) == 1
        wait_for(scraped, timeout=30, what="Prometheus to scrape both exporters (the live sidecar ready) and fail "
                                           "the third")
        yield base, live, dead, f"127.0.0.1:{nothing}"
    finally:
        for proc in [*procs, *live.procs, *dead.procs]:
            if proc.poll() is None:
                proc.terminate()
        for proc in [*procs, *live.procs, *dead.procs]:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        # The killed engine's sidecar runs on, as it would on a real host: end it, by this test's state dir
        # in its environment (nothing else carries it).
        for orphan in psutil.process_iter():
            with contextlib.suppress(psutil.Error):
                if orphan.environ().get("LOOPCTL_HOME") == str(dead.state):
                    orphan.kill()


def test_fleet_from_prometheus_shows_a_live_host_a_stale_one_and_a_failed_scrape(stack, host: Host):
    base, _live, _dead, nothing = stack
    report = host.run("fleet", "--prometheus", base, "--once", "--format", "json")
    assert report.returncode == 3, report.stderr  # a stale and an unscrapable host: UNKNOWN, none is down
    hosts = {h["name"]: h for h in json.loads(report.stdout)["hosts"]}
    assert set(hosts) == {"edge-live", "edge-dead", nothing}
    assert hosts["edge-live"]["state"] == "ok" and hosts["edge-live"]["sidecars"] == {"ready": 1, "total": 1}
    assert hosts["edge-live"]["last_push_age_seconds"] < 120
    assert hosts["edge-dead"]["state"] == STALE and "old (node_textfile_mtime_seconds)" in hosts["edge-dead"]["reason"]
    assert hosts[nothing]["state"] == UNREACHABLE and "up == 0" in hosts[nothing]["reason"]
    text = host.run("fleet", "--prometheus", base, "--once")
    assert text.stdout.splitlines()[0] == "LOOPCTL FLEET UNKNOWN - 3 hosts: 1 ok, 1 stale, 1 unreachable"
    asyncio.run(the_view_on_prometheus(base))


async def the_view_on_prometheus(base: str) -> None:
    """The fleet view on the same feed: a row per instance, the worst in the header, and enter on a host
    with no ssh URL in the contexts file says so instead of opening anything."""
    from console.core.clock import SystemClock
    from console.fleet.prometheus import PrometheusFeed
    from console.tui.fleet_app import FleetApp
    from console.tui.widgets.keyed_table import KeyedTable

    feed = PrometheusFeed(base, SystemClock(), interval=0.5)
    app = FleetApp(feed, title=f"fleet · prometheus {base}", refuse=lambda name: f"{name}: no ssh URL for it")
    poller = asyncio.create_task(feed.run())
    try:
        async with app.run_test(size=(110, 20)) as pilot:
            table = app.query_one(KeyedTable)
            async with asyncio.timeout(15):
                while table.row_count < 3:
                    await pilot.pause(0.05)
            assert str(app.query_one("#fleet-tray").render()).startswith(" ✖ DOWN ")
            await pilot.press("enter")
            await pilot.pause(0.1)
            assert app.is_running and app.return_value is None  # nothing opened: the refusal was said
            assert any("no ssh URL for it" in str(n.message) for n in app._notifications)
    finally:
        poller.cancel()
        await asyncio.gather(poller, return_exceptions=True)


def test_prometheus_failures_are_one_line(host: Host):
    closed = f"http://127.0.0.1:{free_port()}"
    result = host.run("fleet", "--prometheus", closed, "--once", "--format", "nagios")
    assert result.returncode == 3
    assert result.stderr.startswith(f"loopctl: cannot reach Prometheus at {closed} (ConnectError: ")
    assert result.stderr.count("\n") == 1 and result.stdout.startswith("LOOPCTL UNKNOWN - cannot reach Prometheus")


def sample(value: float, **labels: str) -> Sample:
    return Sample(labels={"instance": "10.0.0.5:9100", "job": "node", **labels}, value=value)


def test_the_table_from_samples_ranks_reasons_and_reads_age():
    answers = {
        "engine": [sample(1)], "info": [sample(1, host="edge-5")],
        "tray": [sample(1, loopctl_tray_state="degraded")],
        "reasons": [sample(1, level="degraded", code="loop_escalated"), sample(1, level="degraded", code="crash_loop"),
                    sample(1, level="ok", code="nothing")],
        "sidecars": [sample(1, sidecar="a", loopctl_sidecar_state="ready"),
                     sample(1, sidecar="b", loopctl_sidecar_state="failed")],
        "loops": [sample(1, loop="l", loopctl_loop_state="escalated")],
        "runs": [sample(2, status="running")], "age": [sample(12.5)], "up": [sample(1)],
    }
    (status,) = hosts_from(answers, 1000.0)
    assert status.name == "edge-5" and status.url == "10.0.0.5:9100" and status.pushed_at == 987.5
    assert status.reason == "crash_loop (degraded) (+1 more)"
    assert (status.counts.sidecars_ready, status.counts.sidecars_total, status.counts.loops_escalated,
            status.counts.runs_running) == (1, 2, 1, 2)
    assert hosts_from({**answers, "age": [sample(301)]}, 1000.0)[0].problem == STALE
    assert hosts_from({"up": [sample(0)]}, 1000.0) == []  # a target of no loopctl job is not a host


@pytest.mark.parametrize(("body", "said"), [
    (b"<html>", "not JSON: is it Prometheus?"),
    (b'{"status":"error","errorType":"bad_data","error":"parse error"}', "refused 'up': bad_data: parse error"),
    (b'{"status":"success","data":{"resultType":"matrix","result":[]}}', "not an instant vector"),
    (b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{}}]}}', "has no metric or value"),
])
def test_a_wrong_answer_is_one_line(body: bytes, said: str):
    with pytest.raises(PrometheusError) as caught:
        parse_answer(body, "up", "http://p:9090")
    assert said in caught.value.message and caught.value.message.startswith("Prometheus at http://p:9090")


def test_the_readme_alert_rules_load_in_promtool(tmp_path: Path):
    import re

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    rules = re.search(r"```yaml\n# loopctl.rules.yml\n(.*?)```", readme, re.S)
    assert rules is not None
    (tmp_path / "rules.yml").write_text(rules.group(1))
    checked = subprocess.run([shutil.which("promtool") or "promtool", "check", "rules", str(tmp_path / "rules.yml")],
                             capture_output=True, text=True, check=False)
    assert checked.returncode == 0 and "SUCCESS: 3 rules found" in checked.stdout, checked.stderr
