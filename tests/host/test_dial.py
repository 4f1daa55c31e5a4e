"""`loopctl dial-stdio` on its own: the bridge a far `--host ssh://` session runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from console.launch import lean_dial
from tests.conftest import Host, loopctl_argv


def test_dial_stdio_bridges_to_the_engine_and_refuses_on_protocol_when_none(host: Host, tmp_path: Path):
    engine = host.spawn("run")
    host.wait_owner(engine)
    dial = subprocess.run([*loopctl_argv(), "dial-stdio", "--state-dir", str(host.state)],
                          input=b'{"id":7,"op":"hello"}\n', capture_output=True, timeout=20, check=False)
    assert dial.returncode == 0, dial.stderr
    answer = json.loads(dial.stdout.splitlines()[0])
    assert answer["id"] == 7 and answer["ok"] and answer["engine"]["pid"] == engine.pid
    empty = tmp_path / "empty"
    none = subprocess.run([*loopctl_argv(), "dial-stdio", "--state-dir", str(empty)], input=b"",
                          capture_output=True, timeout=20, check=False)
    assert none.returncode == 69
    error = json.loads(none.stdout)["error"]
    assert error["code"] == "no_engine" and error["state_dir"] == str(empty)
    assert none.stderr.decode().startswith(f"loopctl: no engine owns {empty} on ")
    assert not empty.exists()  # dial-stdio creates nothing on the far side


# What a dial-stdio session may never load: each costs the far host CPU on every ssh session a fleet opens.
HEAVY = {"msgspec", "argparse", "asyncio", "typing", "sqlite3", "psutil", "httpx", "textual", "rich", "tomllib",
         "console.cli", "console.core.records", "console.core.paths", "console.host.protocol"}
# loopctl's own modules it does load: the bridge and the two lean helpers it shares with the rest.
OWN = {"console", "console.launch", "console.host", "console.host.dial", "console.core", "console.core.state_home",
       "console.core.printable"}


def _imported(argv: list[str], stdin: bytes, env: dict[str, str]) -> tuple[subprocess.CompletedProcess[bytes],
                                                                           set[str]]:
    """Run `argv` under `python -X importtime`, which lists on stderr every module the process loaded."""
    run = subprocess.run([sys.executable, "-X", "importtime", *argv], input=stdin, capture_output=True, timeout=20,
                         check=False, env=env)
    lines = run.stderr.decode().splitlines()
    names = {line.split("|")[-1].strip() for line in lines if line.startswith("import time:")}
    return run, names - {"package"}


def test_a_session_loads_only_the_bridge(host: Host):
    """A fleet of 20 starts 20 of these at once on the far sides, and one more on every reconnect: the
    command line the near side writes (transport.ssh_argv) goes to the bridge without argparse, msgspec
    or any other part of loopctl. Measured against a bare interpreter started the same way."""
    engine = host.spawn("run")
    host.wait_owner(engine)
    script = loopctl_argv()
    argv = script[1:] if script[0] == sys.executable else script  # the console script, or -m console
    _, floor = _imported(["-c", "pass"], b"", host.env)
    run, names = _imported([*argv, "dial-stdio", "--state-dir", str(host.state)], b'{"id":1,"op":"hello"}\n',
                           host.env)
    assert run.returncode == 0 and json.loads(run.stdout)["engine"]["pid"] == engine.pid, run.stderr[-2000:]
    loaded = names - floor
    assert loaded & HEAVY == set()
    assert {n for n in loaded if n.split(".")[0] == "console"} <= OWN
    assert "console.host.dial" in loaded


@pytest.mark.parametrize(("args", "lean"), [
    (["dial-stdio"], ()),
    (["dial-stdio", "--state-dir", "/srv/a b"], ("/srv/a b",)),
    (["dial-stdio", "--state-dir=/srv/s"], ("/srv/s",)),
    # every other form takes the ordinary parse, so help and errors read as for any command
    (["dial-stdio", "--help"], None), (["--state-dir", "/s", "dial-stdio"], None),
    (["dial-stdio", "--state-dir"], None), (["dial-stdio", "--state-dir", "-x"], None),
    (["dial-stdio", "--state-dir="], None), (["dial-stdio", "x"], None), (["--once"], None), ([], None),
])
def test_only_the_near_sides_command_lines_take_the_lean_path(args: list[str], lean: tuple[str, ...] | None):
    assert lean_dial(args) == lean


def test_dial_stdio_after_the_global_options_still_bridges(host: Host):
    engine = host.spawn("run")
    host.wait_owner(engine)
    dial = subprocess.run([*loopctl_argv(), "--state-dir", str(host.state), "dial-stdio"],
                          input=b'{"id":3,"op":"hello"}\n', capture_output=True, timeout=20, check=False)
    assert dial.returncode == 0 and json.loads(dial.stdout)["id"] == 3, dial.stderr
