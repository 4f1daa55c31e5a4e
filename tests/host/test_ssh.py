"""--host ssh://... end to end: a real sshd on 127.0.0.1, real engines in their own state dirs reached
through it as three hosts, and `loopctl dial-stdio` on the far side."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import pytest

from tests.conftest import Host, loopctl_argv, wait_for
from tests.sshd import Sshd

pytestmark = pytest.mark.slow
T = TypeVar("T")


def far_host(root: Path, name: str, config: str) -> Host:
    h = Host(root=root / name, state=root / name / "state", config_dir=root / name / "config")
    (h.root / "home").mkdir(parents=True)
    h.write_config(f'[host]\nname = "{name}"\n\n{config}')
    return h


def sleeper(name: str) -> str:
    return f'[[sidecar]]\nname = "{name}"\ncommand = ["sleep", "86400"]\n\n'


def flaky(name: str, flag: Path) -> str:
    """Fails its first start (and, with no restarts, latches failed); runs from the second on."""
    script = f"test -e {flag} || {{ touch {flag}; exit 1; }}; exec sleep 86400"
    return f'[[sidecar]]\nname = "{name}"\ncommand = ["sh", "-c", {json.dumps(script)}]\nmax_restarts = 0\n\n'


def parallel(calls: list[Callable[[], T]]) -> list[T]:
    """Independent ssh sessions at once: each spends most of its time in handshakes and start-ups."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda call: call(), calls))


def sidecar_state(h: Host) -> str:
    sidecars = h.once_json()[1]["snapshot"]["sidecars"]
    return sidecars[0]["state"] if sidecars else ""


@pytest.fixture(scope="module")
def three(tmp_path_factory: pytest.TempPathFactory, sshd: Sshd):
    """Three engines (ok; degraded by a latched failure; empty), started once for the module, and a
    near side whose hosts.toml names them over SSH. Only the last test changes one (beta)."""
    root = tmp_path_factory.mktemp("three")
    far = {
        "alpha": far_host(root, "alpha", sleeper("web")),
        "beta": far_host(root, "beta", flaky("job", root / "beta-flag")),
        "gamma": far_host(root, "gamma", ""),
    }
    here = Host(root=root / "near", state=root / "near" / "state", config_dir=root / "near" / "config")
    (here.root / "home").mkdir(parents=True)
    try:
        for h in far.values():
            h.spawn("run")
        for h in far.values():
            h.wait_owner(h.procs[0], timeout=20)
        wait_for(lambda: sidecar_state(far["alpha"]) == "ready", what="alpha ready")
        wait_for(lambda: sidecar_state(far["beta"]) == "failed", what="beta failed")
        hosts = "".join(f'[[host]]\nname = "{n}"\nurl = "{sshd.url(h.state)}"\n\n' for n, h in far.items())
        (here.config_dir / "loopctl").mkdir(parents=True)
        (here.config_dir / "loopctl" / "hosts.toml").write_text(hosts)
        yield far, here, {**here.env, "LOOPCTL_SSH": sshd.ssh}
    finally:
        for h in far.values():
            for proc in h.procs:
                proc.terminate()
                proc.wait(timeout=15)


def test_once_over_ssh_in_every_format_reads_as_the_host_itself(three):
    far, here, env = three
    beta = far["beta"]
    formats = ("text", "json", "nagios", "openmetrics")
    others = {"alpha": 0, "gamma": 0}
    remote = parallel([lambda f=f: here.run("--once", "--format", f, "--host", "beta", env=env) for f in formats]
                      + [lambda n=n: here.run("--once", "--format", "json", "--host", n, env=env) for n in others])
    for fmt, there in zip(formats, remote, strict=False):
        local = beta.run("--once", "--format", fmt)
        assert there.returncode == local.returncode == 1, there.stderr
        assert there.stderr == ""
        if fmt == "json":  # the same engine's report, read through ssh
            a, b = json.loads(local.stdout), json.loads(there.stdout)
            assert a["status"] == b["status"] == "WARNING"
            assert b["snapshot"]["host"] == a["snapshot"]["host"]
            assert b["snapshot"]["engine"]["pid"] == beta.procs[0].pid
        elif fmt == "openmetrics":
            assert there.stdout.endswith("# EOF\n") and 'loopctl_tray_state{loopctl_tray_state="degraded"} 1.0' \
                in there.stdout
        else:
            assert there.stdout.splitlines()[0] == local.stdout.splitlines()[0]
    for (name, code), report in zip(others.items(), remote[len(formats):], strict=True):
        assert report.returncode == code and json.loads(report.stdout)["snapshot"]["host"]["name"] == name


def test_an_ssh_url_and_loopctl_host_work_without_contexts(three, sshd: Sshd):
    far, here, env = three
    url = sshd.url(far["alpha"].state)
    by_env = here.run("--once", env={**env, "LOOPCTL_HOST": url})
    assert by_env.returncode == 0 and by_env.stdout.startswith("LOOPCTL OK"), by_env.stderr


def test_failures_are_one_line_each(tmp_path: Path, host: Host, sshd: Sshd):
    nobody_home = tmp_path / "no-engine"
    (host.config_dir / "loopctl").mkdir(parents=True, exist_ok=True)
    (host.config_dir / "loopctl" / "hosts.toml").write_text(
        f'[[host]]\nname = "bare"\nurl = "ssh://fleet-a/usr"\nloopctl = "/nonexistent/loopctl"\n\n'
        f'[[host]]\nname = "stranger"\nurl = "ssh://stranger/tmp"\n\n'
        f'[[host]]\nname = "idle"\nurl = "{sshd.url(nobody_home)}"\n\n'
        f'[[host]]\nname = "closed"\nurl = "ssh://127.0.0.1:1/tmp"\n\n')
    env = {**host.env, "LOOPCTL_SSH": sshd.ssh}
    cases = {
        "bare": "loopctl: loopctl not installed on bare ('/nonexistent/loopctl': ",
        "stranger": "loopctl: ssh stranger: Host key verification failed.",
        "idle": f"loopctl: no engine owns {nobody_home} on idle: start it there with `loopctl run`",
        "closed": "loopctl: ssh closed: ssh: connect to host 127.0.0.1 port 1: Connection refused",
    }
    runs = parallel([lambda n=n: host.run("--once", "--host", n, env=env) for n in cases]
                    + [lambda: host.run("--once", "--format", "nagios", "--host", "idle", env=env),
                       lambda: host.run("--once", "--format", "json", "--host", "idle", env=env),
                       lambda: host.run("retry", "sidecar:x", "--host", "stranger", env=env)])
    for (name, said), result in zip(cases.items(), runs, strict=False):
        assert result.returncode == 3, (name, result.stderr)
        assert result.stderr.startswith(said) and result.stderr.count("\n") == 1, (name, result.stderr)
        assert "Traceback" not in result.stderr
    nagios, as_json, act = runs[len(cases):]
    assert nagios.returncode == 3 and nagios.stdout.startswith(f"LOOPCTL UNKNOWN - no engine owns {nobody_home}")
    error = json.loads(as_json.stdout)
    assert error["status"] == "UNKNOWN" and error["exit_code"] == 3 and "no engine owns" in error["error"]
    assert act.returncode == 3 and act.stderr.startswith(cases["stranger"])
    unknown = host.run("--once", "--host", "nowhere", env=env)
    assert unknown.returncode == 2 and "--host 'nowhere': no such host in" in unknown.stderr
    mixed = host.run("--once", "--host", "idle", "--state-dir", str(tmp_path), env=env)
    assert mixed.returncode == 2 and "put it in the URL" in mixed.stderr
    assert not nobody_home.exists()  # dial-stdio creates nothing on the far side


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


def test_an_action_over_ssh_changes_the_far_engine_and_a_watch_over_ssh_sees_it(three, sshd: Sshd):
    """The last test of the module: it changes beta. A watch over ssh gets its pushes for as long as the
    session lasts, and closing our end ends ssh, dial-stdio and the engine's connection."""
    import asyncio

    from console.host.transport import SshDialer, parse_ssh_url, ssh_command

    far, here, env = three
    beta = far["beta"]
    dialer = SshDialer("beta", parse_ssh_url(sshd.url(beta.state)), ssh_command({"LOOPCTL_SSH": sshd.ssh}))

    def near(*args: str) -> subprocess.CompletedProcess[str]:
        return here.run(*args, env=env)

    async def scenario() -> list[str]:
        stream = await dialer.open()
        await stream.send({"id": 1, "op": "watch"})
        first = await stream.read()
        assert first is not None
        states = [first["snapshot"]["sidecars"][0]["state"]]
        read_only = await asyncio.to_thread(near, "--read-only", "retry", "sidecar:job", "--host", "beta")
        assert read_only.returncode == 2 and "--read-only" in read_only.stderr
        done = await asyncio.to_thread(near, "retry", "sidecar:job", "--host", "beta")
        assert done.returncode == 0 and done.stdout.startswith("retry sidecar:job: "), done.stderr
        while states[-1] != "ready":
            answer = await stream.read()
            assert answer is not None
            states.append(answer["snapshot"]["sidecars"][0]["state"])
        await stream.close()
        assert stream.proc.returncode == 0  # ended by EOF, not by a signal
        return states

    states = asyncio.run(scenario())
    assert states[0] == "failed" and states[-1] == "ready" and "starting" in states
    assert sidecar_state(beta) == "ready" and near("--once", "--host", "beta").returncode == 0
