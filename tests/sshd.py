"""A real OpenSSH server on 127.0.0.1 for the tests: Debian's sshd on a free port, its own throwaway
host key, an authorized key made here, and a client config that reaches it under host aliases. The
far side's PATH starts with this checkout's venv, so `loopctl` there is the code under test."""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import Host, end_masters, wait_for

SSHD = shutil.which("sshd", path="/usr/sbin:/usr/local/sbin:/sbin") or "/usr/sbin/sshd"


@dataclass
class Sshd:
    root: Path
    port: int
    proc: subprocess.Popen[bytes]
    user: str

    @property
    def client_config(self) -> Path:
        return self.root / "ssh_config"

    @property
    def ssh(self) -> str:
        """What LOOPCTL_SSH says: the system's ssh with this server's client config."""
        return f"ssh -F {self.client_config}"

    def url(self, state_dir: Path | str, alias: str = "fleet-a") -> str:
        return f"ssh://{alias}{state_dir}"


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True,
                   stdin=subprocess.DEVNULL)


def start_sshd(root: Path, port: int, client_options: tuple[str, ...] = (), far_bin: Path | None = None) -> Sshd:
    """`client_options`: more ssh_config lines for the hosts (the benchmark's key-exchange choice);
    `far_bin`: the directory whose `loopctl` the far side runs (default: this interpreter's venv)."""
    root.mkdir(parents=True, exist_ok=True)
    _keygen(root / "host_key")
    _keygen(root / "id_ed25519")
    (root / "authorized_keys").write_text((root / "id_ed25519.pub").read_text())
    (root / "authorized_keys").chmod(0o600)
    host_pub = (root / "host_key.pub").read_text().split()
    (root / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
    (root / "empty_known_hosts").write_text("")
    venv_bin = far_bin or Path(sys.executable).parent
    # SHLVL=1: bash reads ~/.bashrc for an ssh command only at SHLVL < 2, so the far side's PATH is the one
    # set here (this checkout's venv first), not what the machine's rc puts before it (pyenv's shims for
    # root here, at 0.2 s of CPU per session). A host in the field has its own rc; the tests are about
    # loopctl's part.
    (root / "sshd_config").write_text(f"""\
Port {port}
ListenAddress 127.0.0.1
HostKey {root / 'host_key'}
AuthorizedKeysFile {root / 'authorized_keys'}
PidFile {root / 'sshd.pid'}
UsePAM no
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
SetEnv PATH={venv_bin}:/usr/local/bin:/usr/bin:/bin SHLVL=1
MaxStartups 100:30:200
MaxSessions 100
LogLevel ERROR
""")
    user = getpass.getuser()
    # First match wins in ssh_config: the stranger's empty known_hosts is said before the shared block.
    (root / "ssh_config").write_text(f"""\
Host stranger
  UserKnownHostsFile {root / 'empty_known_hosts'}
Host fleet-* stranger
  HostName 127.0.0.1
  Port {port}
  User {user}
  IdentityFile {root / 'id_ed25519'}
  IdentitiesOnly yes
  UserKnownHostsFile {root / 'known_hosts'}
  StrictHostKeyChecking yes
  LogLevel ERROR
""" + "".join(f"  {line}\n" for line in client_options))
    if os.geteuid() == 0:  # sshd insists on its privilege-separation directory
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(root / "sshd_config")], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=(root / "sshd.log").open("wb"))
    server = Sshd(root=root, port=port, proc=proc, user=user)
    deadline = time.monotonic() + 10
    while True:  # a real login, not just an open port: the config and keys are right
        probe = subprocess.run(["ssh", "-F", str(server.client_config), "-o", "BatchMode=yes", "fleet-a", "true"],
                               capture_output=True, stdin=subprocess.DEVNULL, check=False, timeout=10)
        if probe.returncode == 0:
            return server
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_sshd(server)
            raise AssertionError(f"sshd did not come up: {probe.stderr.decode()} "
                                 f"{(root / 'sshd.log').read_text()}")
        time.sleep(0.05)


def stop_sshd(server: Sshd) -> None:
    with contextlib.suppress(ProcessLookupError):
        server.proc.terminate()
    try:
        server.proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait()


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


def sidecar_state(h: Host) -> str:
    sidecars = h.once_json()[1]["snapshot"]["sidecars"]
    return sidecars[0]["state"] if sidecars else ""



@contextlib.contextmanager
def three_engines(root: Path, sshd: Sshd) -> Iterator[tuple[dict[str, Host], Host, dict[str, str]]]:
    """Three engines in their own state dirs (alpha ok; beta degraded by a latched failure that a retry
    clears; gamma empty), and a near side whose hosts.toml names them over this sshd: (far hosts, near
    host, the near side's env with LOOPCTL_SSH)."""
    far = {
        "alpha": far_host(root, "alpha", sleeper("web")),
        "beta": far_host(root, "beta", flaky("job", root / "beta-flag")),
        "gamma": far_host(root, "gamma", ""),
    }
    here = Host(root=root / "near", state=root / "near" / "state", config_dir=root / "near" / "config")
    (here.root / "home").mkdir(parents=True)
    # The near side multiplexes its sessions as an operator's does (host/mux.py): its runtime dir is
    # short enough for ssh's control sockets, and its masters are ended with the engines.
    runtime = Path(tempfile.mkdtemp(prefix="lt-run-"))
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
        yield far, here, {**here.env, "LOOPCTL_SSH": sshd.ssh, "XDG_RUNTIME_DIR": str(runtime)}
    finally:
        end_masters(runtime)
        shutil.rmtree(runtime, ignore_errors=True)
        for h in far.values():
            for proc in h.procs:
                if proc.poll() is None:
                    proc.terminate()
                    proc.wait(timeout=15)
