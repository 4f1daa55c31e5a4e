"""`loopctl join URL [TOKEN] [--token-file F | -] [--no-daemon]`: give this host an identity with a
control plane, write the seed config, and (unless --no-daemon) install and start the service."""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import tomli_w

from console.controlplane.answers import Joined
from console.controlplane.client import Answer, ControlPlaneClient
from console.controlplane.identity import key_path, load_or_create_key, refresh_token_path, store_refresh_token
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


def check_not_joined(config_path: Path) -> tuple[str, dict[str, Any]]:
    """Before a join token is spent: the config must parse and must not join a control plane already.
    Returns its text and its tables."""
    existing = config_path.read_text() if config_path.exists() else ""
    current: dict[str, Any] = {}
    if existing:
        try:
            current = tomllib.loads(existing)
        except (tomllib.TOMLDecodeError, RecursionError) as exc:
            raise LoopctlError(f"{config_path}: invalid TOML ({str(exc)[:200]}): fix it before joining") from None
        if "control_plane" in current:
            cp = current["control_plane"]
            raise LoopctlError(f"{config_path} already joins {cp.get('url')} as host {cp.get('host_id')}: remove "
                               f"its [control_plane] table to join again")
    return existing, current


def seed_config(config_path: Path, url: str, host_id: str, poll_interval: float | None = None) -> None:
    """Add `[control_plane]` to the host config (0600), keeping everything already in it. The table
    is written by tomli-w, never by formatting strings: whatever the control plane sent is quoted as
    TOML quotes it, and the result is read back before it replaces the file."""
    existing, _ = check_not_joined(config_path)
    table: dict[str, Any] = {"url": url, "host_id": host_id}
    if poll_interval is not None:
        table["poll_interval_seconds"] = min(3600.0, max(5.0, poll_interval))
    text = existing.rstrip("\n") + ("\n\n" if existing else "") + tomli_w.dumps({"control_plane": table})
    if tomllib.loads(text).get("control_plane") != table:  # the existing text cannot have shadowed it
        raise LoopctlError(f"{config_path}: the [control_plane] table would not read back as written: "
                           f"fix the file before joining")
    config_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    atomic_write_text(config_path, text, mode=0o600)


def host_name_for(current: dict[str, Any]) -> str:
    """`[host] name` when the config sets it, else the machine's host name."""
    host = current.get("host")
    name = host.get("name") if isinstance(host, dict) else None
    return name if isinstance(name, str) and name else socket.gethostname()


def join(paths: Paths, url: str, token: str | None, token_file: str | None, *, no_daemon: bool) -> int:
    join_token = read_join_token(token, token_file)
    _, current = check_not_joined(paths.config_path)
    ensure_state_dir(paths)
    made: list[Path] = []  # what this join created, removed again when it fails
    if not key_path(paths.state_dir).exists():
        made.append(key_path(paths.state_dir))
    try:
        host_id, host_name = _join(paths, url, join_token, current, made)
    except BaseException:
        for path in made:
            path.unlink(missing_ok=True)
        raise
    print(f"joined {url} as host {host_id} ({host_name})")
    print(f"  host key       {key_path(paths.state_dir)} (0600)")
    print(f"  refresh token  {refresh_token_path(paths.state_dir)} (0600)")
    print(f"  seed config    {paths.config_path} (0600)")
    if no_daemon:
        command = shlex.join(["loopctl", "--config", str(paths.config_path), "--state-dir", str(paths.state_dir),
                              "run"])
        print(f"not installing a service (--no-daemon): start the engine with `{command}`")
    else:
        install_service(paths)
    return 0


def _join(paths: Paths, url: str, join_token: str, current: dict[str, Any], made: list[Path]) -> tuple[str, str]:
    key = load_or_create_key(paths.state_dir)
    host_name = host_name_for(current)

    async def exchange() -> Answer[Joined]:
        client = ControlPlaneClient(url, key, log_bad_answers=False)
        try:
            return await client.join(join_token, host_name)
        finally:
            await client.close()

    answer = asyncio.run(exchange())
    if answer.status is None:
        raise LoopctlError(f"cannot reach the control plane at {url} ({answer.failure}): check the URL and the "
                           f"network")
    if answer.status == 401:
        raise LoopctlError(f"the control plane at {url} refused the join token (unknown or already used): "
                           f"ask for a new one")
    if answer.failure == "bad_answer" or answer.record is None:
        what = answer.problem or f"HTTP {answer.status}"
        if answer.status is not None and 200 <= answer.status < 300:
            raise LoopctlError(f"the control plane at {url} answered the join wrongly ({what}): check that URL is "
                               f"a loopctl control plane; nothing was written")
        raise LoopctlError(f"the control plane at {url} answered HTTP {answer.status} to the join: {answer.problem}")
    made.append(refresh_token_path(paths.state_dir))
    store_refresh_token(paths.state_dir, answer.record.refresh_token)
    seed_config(paths.config_path, url, answer.record.host_id, answer.record.poll_interval_seconds)
    return answer.record.host_id, host_name


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
