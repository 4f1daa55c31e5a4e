"""`loopctl run`'s journal: one line per transition at a matching level, sd-daemon priorities under a
(fake) journald stream, timestamps elsewhere, and never a token."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from console.core.transitions import Transition
from console.host.journal import Redacting, SdFormatter, under_journald
from console.readmodel.journal import level_of, line_of, redact
from tests.conftest import Host, loopctl_argv, wait_for

TOKEN = "rk_" + "s3cr3t-runner-token-value-0123456789"


def t(kind: str, previous: str | None, new: str, text: str = "why", **detail: object) -> Transition:
    return Transition(1, 0.0, kind, "x", previous, new, text, dict(detail))


@pytest.mark.parametrize(("transition", "level"), [
    (t("sidecar", "ready", "backoff"), logging.WARNING),
    (t("sidecar", "backoff", "failed"), logging.ERROR),
    (t("sidecar", "failed", "starting"), logging.INFO),  # a recovery
    (t("run", "running", "failed"), logging.WARNING),  # one window of a loop that carries on
    (t("run", "running", "timed_out"), logging.WARNING),
    (t("loop", "active", "escalated"), logging.ERROR),
    (t("loop", "transient", "active"), logging.INFO),
    (t("engine", "running", "crashed"), logging.ERROR),
    (t("remote_config", "probation", "rolled_back"), logging.ERROR),
    (t("run", "running", "running", "activity: handoff updated"), logging.DEBUG),  # no change of state
])
def test_levels_match_what_the_thing_became(transition, level):
    assert level_of(transition) == level


def test_a_line_names_the_thing_the_change_the_code_and_the_text_on_one_line():
    line = line_of(t("sidecar", "backoff", "failed", "exited with code 3\n\x1b[2Jbye", reason="crash_loop"))
    assert line == "sidecar:x backoff -> failed: crash_loop: exited with code 3␊␛[2Jbye"
    assert line_of(t("engine", None, "running", "engine started")) == "engine:x new -> running: engine started"
    assert redact(f"401 from the plane: Bearer {TOKEN}", [TOKEN, "short"]) == "401 from the plane: Bearer [redacted]"


def test_priorities_prefix_each_line_and_journal_stream_counts_only_for_our_stderr(tmp_path):
    record = logging.LogRecord("loopctl", logging.WARNING, __file__, 1, "two\nlines", None, None)
    assert SdFormatter("%(message)s").format(record) == "<4>two ⏎ lines"
    with open(tmp_path / "stream", "w") as stream:
        st = os.fstat(stream.fileno())
        assert under_journald({"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}, stream.fileno())
        assert not under_journald({"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino + 1}"}, stream.fileno())
        assert not under_journald({"JOURNAL_STREAM": "junk"}, stream.fileno())
        assert not under_journald({}, stream.fileno())


def test_the_filter_masks_a_secret_whoever_logs_it(tmp_path):
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "runner-docs.token").write_text(TOKEN + "\n")
    record = logging.LogRecord("loopctl.x", logging.ERROR, __file__, 1, "refused %s", (TOKEN,), None)
    assert Redacting(secrets).filter(record) and record.getMessage() == "refused [redacted]"


CRASHER = textwrap.dedent("""
    import os, sys
    print("auth failed for " + open(os.environ["TOKEN_FILE"]).read().strip(), flush=True)
    sys.exit(3)
""")
FAILING_AGENT = "import sys; print('no luck'); sys.exit(1)\n"


def test_loopctl_run_logs_each_transition_once_with_journald_priorities_and_no_token(host: Host):
    secrets = host.state / "secrets"
    secrets.mkdir(parents=True, mode=0o700)
    (secrets / "runner-docs.token").write_text(TOKEN)
    (secrets / "runner-docs.token").chmod(0o600)
    crasher = host.root / "crasher.py"
    crasher.write_text(CRASHER)
    agent = host.root / "agent.py"
    agent.write_text(FAILING_AGENT)
    host.write_config(textwrap.dedent(f"""
        [[sidecar]]
        name = "flaky"
        command = {json.dumps([sys.executable, str(crasher)])}
        env = {{ TOKEN_FILE = "{secrets / 'runner-docs.token'}" }}
        max_restarts = 1

        [[loop]]
        id = "docs"
        command = {json.dumps([sys.executable, str(agent)])}
        interval_seconds = 3600
    """))
    log_path = host.root / "journal.log"
    with log_path.open("w") as out:
        st = os.fstat(out.fileno())
        env = {**host.env, "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        engine = subprocess.Popen([*loopctl_argv(), "run"], env=env, stdout=out, stderr=out, text=True,
                                  stdin=subprocess.DEVNULL)
    host.procs.append(engine)
    wait_for(lambda: "sidecar:flaky starting -> failed" in log_path.read_text(), timeout=20, what="flaky latched")
    wait_for(lambda: "-> failed" in log_path.read_text().split("run:", 1)[-1], timeout=20, what="the failed run")
    engine.send_signal(signal.SIGTERM)
    assert engine.wait(timeout=15) == 0
    lines = log_path.read_text().splitlines()
    assert lines and all(re.match(r"<[2-7]>", line) for line in lines), lines
    assert not any(re.match(r"<\d>\d{4}-\d\d-\d\d", line) for line in lines)  # journald stamps the time
    assert TOKEN not in log_path.read_text() and "[redacted]" in log_path.read_text()

    transitions = [line.split(">", 1)[1] for line in lines
                   if re.match(r"<\d>(sidecar|run|loop|engine):\S+ \S+ -> ", line)]
    db = sqlite3.connect(host.state / "loopctl.db")
    events = db.execute("SELECT kind, name, previous, new FROM events WHERE previous IS NOT new ORDER BY id").fetchall()
    db.close()
    assert [tuple(re.match(r"(\w+):(\S+) (\S+) -> (\w+)", line).groups()) for line in transitions] == \
        [(k, n, p or "new", w) for k, n, p, w in events]  # each transition once, in order
    warned = [line for line in lines if line.startswith(("<3>", "<4>"))]
    assert any("sidecar:flaky starting -> failed: crash_loop" in line and line.startswith("<3>") for line in warned)
    assert any(line.startswith("<4>sidecar:flaky") and "-> backoff" in line for line in warned)
    assert any(line.startswith("<4>run:") and "-> failed" in line for line in warned)
    assert any(line.startswith("<6>engine:main") and "-> stopped" in line for line in lines)


def test_without_journald_lines_carry_their_own_time(host: Host):
    engine = host.spawn("run")
    host.wait_owner(engine)
    engine.send_signal(signal.SIGTERM)
    assert engine.wait(timeout=15) == 0
    lines = host.log(engine).splitlines()
    started = next(line for line in lines if "engine:main" in line and "-> running" in line)
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} loopctl\[\d+\] INFO engine:main ", started)
