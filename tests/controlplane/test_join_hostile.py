"""`loopctl join` against the hostile plane: whatever it answers, the config stays valid TOML written
by tomli-w, a bad host_id is refused, nothing is left behind, `[host] name` is what registers, and the
--no-daemon hint runs as printed."""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import tomllib
from collections.abc import Iterator

import pytest

from tests.conftest import Host, loopctl_argv, wait_for
from tests.controlplane import hostile
from tests.controlplane.hostile import HostilePlane, Shape
from tests.controlplane.test_join import join


@pytest.fixture
def evil() -> Iterator[HostilePlane]:
    with HostilePlane() as plane:
        yield plane


ORIGINAL = '# the operator\'s own notes\n[host]\nname = "edge-7"  # kept\n'


# Every shape reaches the client's boundary in test_hostile_answers.py; here, what join does with a few.
JOIN_SHAPES = [*hostile.PER_CALL[hostile.JOIN], "captive portal html"]


@pytest.mark.parametrize("name", JOIN_SHAPES)
def test_a_bad_join_answer_leaves_nothing_behind(host: Host, evil, name):
    host.write_config(ORIGINAL)
    evil.answer(hostile.JOIN, hostile.wrong_shapes(hostile.JOIN)[name])
    result = join(host, evil.url, "jt_x", "--token-file", "-", "--no-daemon")
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result
    assert "answered the join wrongly" in result.stderr and "nothing was written" in result.stderr
    assert host.config_file.read_text() == ORIGINAL  # never a half-written or injected config
    assert not (host.state / "keys" / "host.key").exists() and not (host.state / "secrets" / "refresh_token").exists()


def test_a_join_writes_tomli_w_registers_the_host_name_and_its_hint_runs_as_printed(host: Host, evil):
    host.write_config(ORIGINAL)
    evil.answer(hostile.JOIN, Shape.json(201, {"host_id": "h_ok-1.2", "refresh_token": "rf_good",
                                               "poll_interval_seconds": 2}))
    result = join(host, evil.url, "jt_x", "--token-file", "-", "--no-daemon")
    assert result.returncode == 0, result.stderr
    text = host.config_file.read_text()
    assert text.startswith(ORIGINAL)  # the operator's file, comments included, then the table
    assert tomllib.loads(text)["control_plane"] == {"url": evil.url, "host_id": "h_ok-1.2",
                                                    "poll_interval_seconds": 5.0}  # clamped to its range
    [(_, body)] = [(c, b) for c, b in evil.bodies if c == hostile.JOIN]
    assert json.loads(body)["host_name"] == "edge-7"  # [host] name, not the machine's
    [hint] = [line for line in result.stdout.splitlines() if line.startswith("not installing a service")]
    command = shlex.split(hint.split("`")[1])
    assert command[:1] == ["loopctl"] and "--state-dir" in command and str(host.state) in command
    env = {k: v for k, v in host.env.items() if k != "LOOPCTL_HOME"}  # the hint alone must say where
    engine = subprocess.Popen([*loopctl_argv(), *command[1:]], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        wait_for(lambda: evil.count(hostile.HOST_HEARTBEAT) > 0, timeout=20, what="the engine the hint started")
        assert host.engine_pid() == engine.pid
    finally:
        engine.send_signal(signal.SIGTERM)
        assert engine.wait(timeout=20) == 0
