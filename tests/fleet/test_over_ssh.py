"""Many hosts over SSH, end to end: a real sshd on 127.0.0.1 and three real engines in their own state
dirs reached through it as three hosts; `loopctl dial-stdio` on the far side. The engines start once for
the module, in this order of tests: reports (beta degraded), the action that clears beta, and last the
fleet view in tmux, which kills gamma."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import psutil
import pytest

from console.readmodel.snapshot import Snapshot
from tests.conftest import Host, end_masters, loopctl_argv, masters, wait_for
from tests.sshd import Sshd, sidecar_state, sleeper, three_engines

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("three-engines")]  # one set-up, in order
T = TypeVar("T")


def parallel(calls: list[Callable[[], T]]) -> list[T]:
    """Independent ssh sessions at once: each spends most of its time in handshakes and start-ups."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda call: call(), calls))


@pytest.fixture(scope="module")
def three(tmp_path_factory: pytest.TempPathFactory, sshd: Sshd):
    """Three engines (ok; degraded by a latched failure; empty), started once for the module, and a
    near side whose hosts.toml names them over SSH. Only the last test changes one (beta)."""
    with three_engines(tmp_path_factory.mktemp("three"), sshd) as (far, here, env):
        yield far, here, env


def test_once_over_ssh_in_every_format_reads_as_the_host_itself(three):
    far, here, env = three
    beta = far["beta"]
    formats = ("text", "json", "nagios", "openmetrics")
    text, as_json, nagios, metrics = parallel(
        [lambda f=f: here.run("--once", "--format", f, "--host", "beta", env=env) for f in formats])
    assert {r.returncode for r in (text, as_json, nagios, metrics)} == {1}
    assert text.stderr == as_json.stderr == nagios.stderr == metrics.stderr == ""
    local = json.loads(beta.run("--once", "--format", "json").stdout)
    there = json.loads(as_json.stdout)  # the same engine's report, read through ssh
    assert there["status"] == local["status"] == "WARNING"
    assert there["snapshot"]["host"] == local["snapshot"]["host"]
    assert there["snapshot"]["engine"]["pid"] == beta.procs[0].pid
    top = local["snapshot"]["tray"]["reasons"][0]["text"]
    assert text.stdout.splitlines()[0] == f"LOOPCTL WARNING - degraded: {top}"
    assert nagios.stdout.startswith(f"LOOPCTL WARNING - degraded: {top} | ")
    assert 'loopctl_tray_state{loopctl_tray_state="degraded"} 1.0' in metrics.stdout
    assert metrics.stdout.endswith("# EOF\n")


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
        f'[[host]]\nname = "idle"\nurl = "{sshd.url(nobody_home)}"\n\n')
    env = {**host.env, "LOOPCTL_SSH": sshd.ssh}
    cases = {
        "bare": "loopctl: loopctl not installed on bare ('/nonexistent/loopctl': ",
        "stranger": "loopctl: ssh stranger: Host key verification failed.",
        "idle": f"loopctl: no engine owns {nobody_home} on idle: start it there with `loopctl run`",
    }  # (ssh's own refusal of a closed port: the fleet --once test)
    runs = parallel([lambda n=n: host.run("--once", "--host", n, env=env) for n in cases]
                    + [lambda: host.run("--once", "--format", "json", "--host", "idle", env=env),
                       lambda: host.run("retry", "sidecar:x", "--host", "stranger", env=env)])
    for (name, said), result in zip(cases.items(), runs, strict=False):
        assert result.returncode == 3, (name, result.stderr)
        assert result.stderr.startswith(said) and result.stderr.count("\n") == 1, (name, result.stderr)
        assert "Traceback" not in result.stderr
    as_json, act = runs[len(cases):]
    error = json.loads(as_json.stdout)
    assert error["status"] == "UNKNOWN" and error["exit_code"] == 3 and "no engine owns" in error["error"]["message"]
    assert act.returncode == 3 and act.stderr.startswith(cases["stranger"])
    unknown = host.run("--once", "--host", "nowhere", env=env)
    assert unknown.returncode == 2 and "--host 'nowhere': no such host in" in unknown.stderr
    mixed = host.run("--once", "--host", "idle", "--state-dir", str(tmp_path), env=env)
    assert mixed.returncode == 2 and "put it in the URL" in mixed.stderr
    assert not nobody_home.exists()  # dial-stdio creates nothing on the far side


def test_failures_read_the_same_through_a_shared_connection(host: Host, sshd: Sshd, short_tmp: Path):
    """Multiplexed (host/mux.py), the first session to fleet-a becomes the master and the rest are channels
    on it: the far side's exit status and last words come through it as they do over a connection of its
    own, and ssh's own refusals are said before any master exists."""
    (host.config_dir / "loopctl").mkdir(parents=True, exist_ok=True)
    (host.config_dir / "loopctl" / "hosts.toml").write_text(
        f'[[host]]\nname = "bare"\nurl = "ssh://fleet-a/usr"\nloopctl = "/nonexistent/loopctl"\n\n'
        f'[[host]]\nname = "idle"\nurl = "{sshd.url(short_tmp / "none")}"\n\n'
        f'[[host]]\nname = "stranger"\nurl = "ssh://stranger/tmp"\n\n'
        f'[[host]]\nname = "closed"\nurl = "ssh://127.0.0.1:1/x"\n\n')
    env = {**host.env, "LOOPCTL_SSH": sshd.ssh, "XDG_RUNTIME_DIR": str(short_tmp)}
    said: dict[str, list[str]] = {}
    try:
        for _ in range(2):  # the first "bare" makes the master; every later session to fleet-a rides on it
            for name in ("bare", "idle", "stranger", "closed"):
                result = host.run("--once", "--host", name, env=env)
                assert result.returncode == 3 and result.stderr.count("\n") == 1, (name, result.stderr)
                said.setdefault(name, []).append(result.stderr)
            assert len(masters(short_tmp)) == 1  # fleet-a's: the stranger and the closed port never logged in
    finally:
        end_masters(short_tmp)
    assert {name: first == second for name, (first, second) in said.items()} == dict.fromkeys(said, True), said
    assert said["bare"][0].startswith("loopctl: loopctl not installed on bare ('/nonexistent/loopctl': ")
    assert said["idle"][0].startswith(f"loopctl: no engine owns {short_tmp / 'none'} on idle: ")
    assert said["stranger"][0] == "loopctl: ssh stranger: Host key verification failed.\n"
    assert said["closed"][0] == "loopctl: ssh closed: ssh: connect to host 127.0.0.1 port 1: Connection refused\n"


def test_fleet_once_reports_every_host_and_exits_with_the_worst(three):
    _far, here, env = three
    hosts = here.config_dir / "loopctl" / "hosts.toml"
    three_hosts = hosts.read_text()
    hosts.write_text(three_hosts + '[[host]]\nname = "closed"\nurl = "ssh://127.0.0.1:1/x"\n')
    try:
        text, as_json, nagios = parallel([lambda: here.run("fleet", "--once", env=env),
                                          lambda: here.run("fleet", "--once", "--format", "json", env=env),
                                          lambda: here.run("fleet", "--once", "--format", "nagios", env=env)])
    finally:
        hosts.write_text(three_hosts)
    assert text.returncode == 3, text.stderr  # one host cannot be seen and none is down: UNKNOWN
    lines = text.stdout.splitlines()
    assert lines[0] == "LOOPCTL FLEET UNKNOWN - 4 hosts: 2 ok, 1 degraded, 1 unreachable"
    assert [line.split()[0] for line in lines[2:]] == ["alpha", "beta", "gamma", "closed"]
    assert "connect to host 127.0.0.1 port 1: Connection refused" in lines[-1]
    report = json.loads(as_json.stdout)
    assert {h["name"]: h["exit_code"] for h in report["hosts"]} == {"alpha": 0, "beta": 1, "gamma": 0, "closed": 3}
    assert report["status"] == "UNKNOWN" and report["exit_code"] == as_json.returncode == 3
    assert nagios.returncode == 3 and nagios.stdout.startswith("LOOPCTL FLEET UNKNOWN - 4 hosts: 2 ok, 1 degraded, 1 "
                                                               "unreachable (beta: degraded: job: ")
    assert "closed: unreachable: ssh closed: ssh: connect to host 127.0.0.1 port 1" in nagios.stdout


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
        states = [Snapshot.from_dict(first["snapshot"]).sidecars[0].state]
        read_only = await asyncio.to_thread(near, "--read-only", "retry", "sidecar:job", "--host", "beta")
        assert read_only.returncode == 2 and "--read-only" in read_only.stderr
        done = await asyncio.to_thread(near, "retry", "sidecar:job", "--host", "beta")
        assert done.returncode == 0 and done.stdout.startswith("retry sidecar:job: "), done.stderr
        while states[-1] != "ready":
            answer = await stream.read()
            assert answer is not None
            states.append(Snapshot.from_dict(answer["snapshot"]).sidecars[0].state)
        await stream.close()
        assert stream.proc.returncode == 0  # ended by EOF, not by a signal
        return states

    states = asyncio.run(scenario())
    assert states[0] == "failed" and states[-1] == "ready" and "starting" in states
    assert sidecar_state(beta) == "ready" and near("--once", "--host", "beta").returncode == 0


@pytest.fixture
def tmux(tmp_path):
    assert shutil.which("tmux"), "tmux is required for this test (.ci/run installs it)"
    socket = f"loopctl-fleet-{tmp_path.name}"

    def run(*args: str) -> str:
        return subprocess.run(["tmux", "-L", socket, *args], capture_output=True, text=True, check=True).stdout

    yield run
    subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, check=False)


def row(screen: str, host: str) -> str:
    return next((line for line in screen.splitlines() if line.startswith(f" {host} ")), "")


def test_the_fleet_follows_every_host_and_opens_one_in_place(three, sshd: Sshd, tmux):
    """The module's last test: gamma's engine is killed mid-test."""
    far, _here, env = three
    if sidecar_state(far["beta"]) != "ready":  # run alone: what the action test leaves
        assert far["beta"].run("retry", "sidecar:job").returncode == 0
        wait_for(lambda: sidecar_state(far["beta"]) == "ready", what="beta ready")
    keep = {k: env[k] for k in ("XDG_CONFIG_HOME", "XDG_RUNTIME_DIR", "HOME", "PATH", "LOOPCTL_SSH")}
    command = "env " + " ".join(f"{k}='{v}'" for k, v in keep.items()) + " " + " ".join(loopctl_argv())
    tmux("new-session", "-d", "-s", "fleet", "-x", "110", "-y", "30", f"{command} fleet")
    pane = psutil.Process(int(tmux("display-message", "-p", "-t", "fleet", "#{pane_pid}").strip()))

    def screen() -> str:
        return tmux("capture-pane", "-p", "-t", "fleet")

    wait_for(lambda: all(row(screen(), h) for h in far) and "connecting" not in screen(), timeout=20,
             what="a row per host")
    assert "● ok" in row(screen(), "alpha") and "1/1" in row(screen(), "alpha")
    assert "● ok" in row(screen(), "beta") and "1/1" in row(screen(), "beta")
    assert screen().startswith(" ● OK ")  # the fleet's tray is the worst host's

    gamma = far["gamma"].procs[0]
    gamma.send_signal(signal.SIGKILL)
    gamma.wait()
    wait_for(lambda: "unreachable" in row(screen(), "gamma"), timeout=15, what="gamma unreachable")
    assert screen().startswith(" ✖ DOWN ")
    wait_for(lambda: "no engine owns" in row(screen(), "gamma"), timeout=15, what="why, once it retried")
    # the others keep updating while gamma is retried: a sidecar added on alpha reaches its row
    alpha = far["alpha"]
    alpha.write_config('[host]\nname = "alpha"\n\n' + sleeper("web") + sleeper("cache"))
    alpha.procs[0].send_signal(signal.SIGHUP)
    wait_for(lambda: "2/2" in row(screen(), "alpha"), timeout=10, what="alpha's row to count two ready")
    assert "unreachable" in row(screen(), "gamma")

    tmux("send-keys", "-t", "fleet", "/")
    tmux("send-keys", "-t", "fleet", "-l", "bet")
    wait_for(lambda: not row(screen(), "alpha") and row(screen(), "beta"), what="the filter to keep beta")
    tmux("send-keys", "-t", "fleet", "Enter")  # the filter's enter: back to the table
    tmux("send-keys", "-t", "fleet", "Enter")  # the table's: open beta
    # the host console loads on the first enter (Textual app modules, then an ssh session): a loaded
    # machine takes its time, so the bound is generous (it is a bound, not a wait)
    wait_for(lambda: "observer via ssh beta" in screen(), timeout=45, what="beta's console over ssh")
    tmux("send-keys", "-t", "fleet", "2")
    wait_for(lambda: " job " in screen() and "ready" in screen(), what="beta's sidecars in its console")
    tmux("send-keys", "-t", "fleet", "Escape")
    wait_for(lambda: row(screen(), "alpha") and row(screen(), "gamma"), what="back in the fleet, unfiltered")
    assert "● ok" in row(screen(), "beta") and "unreachable" in row(screen(), "gamma")
    tmux("send-keys", "-t", "fleet", "q")
    pane.wait(timeout=15)
    config = str(sshd.client_config)
    left = [p for p in psutil.process_iter(["cmdline"]) if config in " ".join(p.info["cmdline"] or [])]
    assert left == []  # every watch's ssh ended with the fleet
    # what stays is the one connection the three hosts' sessions (and beta's console) shared, for the next
    # loopctl to find (ControlPersist): the three are one endpoint, fleet-a
    [master] = masters(Path(env["XDG_RUNTIME_DIR"]))
    check = subprocess.run(["ssh", "-o", f"ControlPath={master}", "-O", "check", "x"], capture_output=True,
                           text=True, check=False)
    assert check.returncode == 0 and "Master running" in check.stderr
