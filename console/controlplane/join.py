"""`loopctl join URL [TOKEN] [--token-file F | -] [--no-daemon]`: give this host an identity with a
control plane, write the seed config, and (unless --no-daemon) install and start the service."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

from console.controlplane.client import ControlPlaneClient
from console.controlplane.identity import load_or_create_key, store_refresh_token
from console.core.atomic import atomic_write_text
from console.core.errors import LoopctlError
from console.core.paths import Paths, ensure_state_dir

UNIT = """[Unit]
Description=loopctl engine
After=network-online.target

[Service]
Environment=LOOPCTL_HOME={state}
ExecStart={loopctl} --config {config} run
Restart=always
RestartForceExitStatus=75
TimeoutStopSec=30

[Install]
WantedBy={wanted}
"""


def read_join_token(token: str | None, token_file: str | None) -> str:
    if token_file == "-":
        value = sys.stdin.readline().strip()
    elif token_file:
        try:
            value = Path(token_file).read_text().strip()
        except OSError as exc:
            raise LoopctlError(f"join token file {token_file} cannot be read ({exc.strerror})") from None
    else:
        value = (token or "").strip()
        if value:
            print("loopctl: warning: a join token on the command line is visible to other users in `ps`; "
                  "prefer --token-file FILE or --token-file - (stdin)", file=sys.stderr)
    if not value:
        raise LoopctlError("no join token: pass --token-file FILE, or --token-file - to read it from stdin")
    return value


def check_not_joined(config_path: Path) -> str:
    """Before a join token is spent: the config must parse and must not join a control plane already."""
    existing = config_path.read_text() if config_path.exists() else ""
    if existing:
        try:
            current = tomllib.loads(existing)
        except tomllib.TOMLDecodeError as exc:
            raise LoopctlError(f"{config_path}: invalid TOML ({exc}): fix it before joining") from None
        if "control_plane" in current:
            cp = current["control_plane"]
            raise LoopctlError(f"{config_path} already joins {cp.get('url')} as host {cp.get('host_id')}: remove "
                               f"its [control_plane] table to join again")
    return existing


def seed_config(config_path: Path, url: str, host_id: str, poll_interval: float | None = None) -> None:
    """Add `[control_plane]` to the host config (0600), keeping everything already in it."""
    existing = check_not_joined(config_path)
    section = f'\n[control_plane]\nurl = "{url}"\nhost_id = "{host_id}"\n'
    if poll_interval is not None:
        section += f"poll_interval_seconds = {min(3600.0, max(5.0, poll_interval))}\n"
    config_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    atomic_write_text(config_path, existing.rstrip("\n") + ("\n" if existing else "") + section, mode=0o600)


def join(paths: Paths, url: str, token: str | None, token_file: str | None, *, no_daemon: bool) -> int:
    join_token = read_join_token(token, token_file)
    check_not_joined(paths.config_path)
    ensure_state_dir(paths)
    key = load_or_create_key(paths.state_dir)
    host_name = socket.gethostname()

    async def exchange() -> tuple[int | None, dict[str, object], str | None]:
        client = ControlPlaneClient(url, key)
        try:
            answer = await client.join(join_token, host_name)
        finally:
            await client.close()
        return answer.status, answer.body, answer.failure

    status, body, failure = asyncio.run(exchange())
    if status is None:
        raise LoopctlError(f"cannot reach the control plane at {url} ({failure}): check the URL and the network")
    if status == 401:
        raise LoopctlError(f"the control plane at {url} refused the join token (unknown or already used): "
                           f"ask for a new one")
    if status != 201:
        raise LoopctlError(f"the control plane at {url} answered HTTP {status} to the join: {body.get('message', '')}")
    host_id = str(body["host_id"])
    store_refresh_token(paths.state_dir, str(body["refresh_token"]))
    interval = body.get("poll_interval_seconds")
    seed_config(paths.config_path, url, host_id, float(interval) if isinstance(interval, int | float) else None)
    print(f"joined {url} as host {host_id} ({host_name})")
    print(f"  host key       {paths.state_dir / 'keys' / 'host.key'} (0600)")
    print(f"  refresh token  {paths.state_dir / 'secrets' / 'refresh_token'} (0600)")
    print(f"  seed config    {paths.config_path} (0600)")
    if no_daemon:
        print(f"not installing a service (--no-daemon): start the engine with `loopctl --config {paths.config_path} "
              f"run`")
    else:
        install_service(paths)
    return 0


def install_service(paths: Paths) -> None:
    systemctl = shutil.which("systemctl")
    if systemctl is None or not Path("/run/systemd/system").is_dir():
        print("systemd is not running here, so no service was installed: run `loopctl run` under your "
              "service manager (it restarts on exit 75), or in a terminal")
        return
    loopctl = shutil.which("loopctl") or f"{sys.executable} -m console"
    system = os.geteuid() == 0
    unit_dir = Path("/etc/systemd/system") if system else Path.home() / ".config" / "systemd" / "user"
    unit = unit_dir / "loopctl.service"
    unit_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(unit, UNIT.format(state=paths.state_dir, loopctl=loopctl, config=paths.config_path,
                                        wanted="multi-user.target" if system else "default.target"))
    scope = [] if system else ["--user"]
    for args in (["daemon-reload"], ["enable", "--now", "loopctl.service"]):
        result = subprocess.run([systemctl, *scope, *args], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise LoopctlError(f"systemctl {' '.join(args)} failed: {result.stderr.strip()}; the unit is {unit}")
    print(f"installed and started {unit} (Restart=always, RestartForceExitStatus=75)")
