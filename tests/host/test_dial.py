"""`loopctl dial-stdio` on its own: the bridge a far `--host ssh://` session runs."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

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
