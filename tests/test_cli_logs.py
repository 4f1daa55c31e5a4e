"""`loopctl logs` against a real `loopctl run`: a sidecar's log, a run's output, following, refusals."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

from tests.conftest import Host, loopctl_argv, wait_for
from tests.test_cli_runs import loop_config, running

TICKER = "import itertools, time\nfor i in itertools.count():\n    print(f'tick {i} \\x1b[2J', flush=True)\n" \
         "    time.sleep(0.1)\n"


def ticker_config(host: Host) -> None:
    host.write_config(f"[[sidecar]]\nname = \"ticker\"\ncommand = {json.dumps([sys.executable, '-c', TICKER])}\n")


def test_logs_prints_the_last_lines_made_printable_follows_and_refuses_with_reasons(host: Host):
    ticker_config(host)
    engine = host.spawn("run")
    host.wait_owner(engine)
    wait_for(lambda: "tick 5" in host.run("logs", "sidecar:ticker").stdout, what="the ticker's sixth line")
    started = time.monotonic()
    result = host.run("logs", "sidecar:ticker", "-n", "3")
    assert time.monotonic() - started < 5  # without -f it ends, however busy the log
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3 and all(line.startswith("tick ") and line.endswith("␛[2J") for line in lines)
    assert "\x1b" not in result.stdout  # the sidecar's escapes are shown, never obeyed
    assert result.stderr == ""  # nothing happened to the file: no note

    follow = subprocess.Popen([*loopctl_argv(), "logs", "sidecar:ticker", "-f", "-n", "0"], env=host.env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert follow.stdout is not None
        numbers = [int(follow.stdout.readline().split()[1]) for _ in range(2)]
        assert numbers[1] == numbers[0] + 1  # live, in order
    finally:
        follow.send_signal(signal.SIGINT)
        code = follow.wait(timeout=10)
    assert code == 130 and "Traceback" not in (follow.stderr.read() if follow.stderr else "")

    for target, why in (("sidecar:nope", "unknown_target"), ("loop:worker", "not_applicable"),
                        ("nonsense", "bad_target")):
        result = host.run("logs", target)
        assert result.returncode == 2, (target, result)
        assert result.stderr.count("\n") == 1 and f"refused ({why})" in result.stderr, result.stderr
    result = host.run("logs", "sidecar:ticker", "-n", "9999")
    assert result.returncode == 2 and "give 0 to 5000" in result.stderr


def test_logs_of_a_run_is_its_output(host: Host):
    loop_config(host)  # its agent prints "working", then sleeps
    engine = host.spawn("run")
    host.wait_owner(engine)
    wait_for(lambda: running(host), what="a running run")
    run_id = running(host)["id"]  # type: ignore[index]
    wait_for(lambda: "working" in host.run("logs", f"run:{run_id[-6:]}").stdout, what="the run's output")


def test_logs_with_no_engine_says_to_start_one(host: Host):
    result = host.run("logs", "sidecar:ticker")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "no engine owns" in result.stderr and "loopctl run" in result.stderr
