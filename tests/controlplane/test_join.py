"""`loopctl join` against the reference control plane, the engine's host link, and token secrecy."""

from __future__ import annotations

import signal
import stat
import subprocess

from tests.conftest import Host, free_port, loopctl_argv, wait_for
from tests.controlplane.conftest import admin


def join(host: Host, plane: str, token: str, *extra: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*loopctl_argv(), "join", plane, *extra], input=stdin if stdin is not None else token + "\n",
                          env=host.env, capture_output=True, text=True, timeout=30, check=False)


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_join_creates_the_key_the_secret_and_the_seed_config(host: Host, plane):
    host.write_config('[host]\nname = "edge-1"  # kept\n')
    token = admin(plane, "join-tokens")["join_token"]
    result = join(host, plane, token, "--token-file", "-", "--no-daemon")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"joined {plane} as host h_")
    key, secret = host.state / "keys" / "host.key", host.state / "secrets" / "refresh_token"
    assert mode(key) == mode(secret) == mode(host.config_file) == 0o600
    assert mode(key.parent) == mode(secret.parent) == 0o700
    text = host.config_file.read_text()
    assert 'name = "edge-1"  # kept' in text and f'url = "{plane}"' in text and "host_id = \"h_" in text
    assert "not installing a service (--no-daemon)" in result.stdout


def test_join_without_systemd_says_how_to_run_the_engine(host: Host, plane):
    result = join(host, plane, admin(plane, "join-tokens")["join_token"], "--token-file", "-")
    assert result.returncode == 0
    assert "systemd is not running here, so no service was installed" in result.stdout


def test_an_already_joined_host_is_refused_before_the_token_is_spent(host: Host, plane, tmp_path):
    join(host, plane, admin(plane, "join-tokens")["join_token"], "--token-file", "-", "--no-daemon")
    second = admin(plane, "join-tokens")["join_token"]
    again = join(host, plane, second, "--token-file", "-", "--no-daemon")
    assert again.returncode == 2 and "already joins" in again.stderr and again.stderr.count("\n") == 1
    other = Host(root=tmp_path / "other", state=tmp_path / "other" / "state", config_dir=tmp_path / "other" / "cfg")
    (tmp_path / "other" / "home").mkdir(parents=True)
    assert join(other, plane, second, "--token-file", "-", "--no-daemon").returncode == 0  # still unspent


def test_join_token_errors_are_one_line(host: Host, plane):
    argv = join(host, plane, "", admin(plane, "join-tokens")["join_token"], "--no-daemon", stdin="")
    assert argv.returncode == 0 and "visible to other users in `ps`" in argv.stderr
    none = join(Host(host.root / "b", host.root / "b" / "s", host.root / "b" / "c"), plane, "", "--no-daemon", stdin="")
    assert none.returncode == 2 and "no join token" in none.stderr
    bad = join(Host(host.root / "c", host.root / "c" / "s", host.root / "c" / "c"), plane, "jt_nope", "--token-file",
               "-", "--no-daemon")
    assert bad.returncode == 2 and "refused the join token" in bad.stderr
    down = join(Host(host.root / "d", host.root / "d" / "s", host.root / "d" / "c"), f"http://127.0.0.1:{free_port()}",
                "jt_x", "--token-file", "-", "--no-daemon")
    assert down.returncode == 2 and "cannot reach the control plane" in down.stderr
    for result in (none, bad, down):
        assert "Traceback" not in result.stderr


def test_the_engine_brings_the_host_online_and_no_token_leaks(host: Host, plane):
    import sys

    host.write_config(f'[[loop]]\nid = "docs"\ncommand = ["{sys.executable}", "-c", "import time; time.sleep(300)"]\n'
                      f"interval_seconds = 3600\n")
    join_token = admin(plane, "join-tokens")["join_token"]
    joined = join(host, plane, join_token, "--token-file", "-", "--no-daemon")
    refresh = (host.state / "secrets" / "refresh_token").read_text()
    engine = host.spawn("run")
    host.wait_owner(engine)
    wait_for(lambda: (host.once_json()[1]["snapshot"]["control_plane"] or {}).get("status") == "online",
             what="the host to come online")
    runner_file = host.state / "secrets" / "loops" / "docs.token"
    wait_for(runner_file.exists, what="the managed loop to be created on the control plane")
    assert mode(runner_file) == 0o600
    runner = runner_file.read_text()
    snap = host.once_json()[1]["snapshot"]
    transitions = [(e["previous"], e["new"]) for e in snap["events"] if e["kind"] == "host"]
    assert ("provisioning", "online") in transitions
    outputs = [joined.stdout, joined.stderr] + [host.run("--once", "--format", f).stdout
                                                for f in ("text", "json", "nagios", "openmetrics")]
    engine.send_signal(signal.SIGTERM)
    engine.wait(timeout=15)
    outputs.append(host.log(engine))
    database = b"".join(p.read_bytes() for p in host.state.glob("loopctl.db*"))
    for secret in (join_token, refresh, runner):
        assert all(secret not in text for text in outputs), "a token reached an output"
        assert secret.encode() not in database, "a token reached the database"
