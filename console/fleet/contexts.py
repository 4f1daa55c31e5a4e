"""Contexts: the hosts an operator names, in `$XDG_CONFIG_HOME/loopctl/hosts.toml`.

    [[host]]
    name = "edge-1"
    url = "ssh://ops@edge-1/var/lib/loopctl"
    loopctl = "/opt/loopctl/bin/loopctl"   # optional: the far side's command, when not on its PATH

    [[host]]
    name = "here"
    url = "local"                          # this host; state_dir = "..." picks another state dir

`--host` (or `LOOPCTL_HOST`) takes a name from it, `local`, or an ssh:// URL. Parsing is pure.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path

from console.core.errors import ConfigError, LoopctlError
from console.core.records import View
from console.host.transport import SshTarget, parse_ssh_url

LOCAL = "local"
MAX_HOSTS_BYTES = 1 << 20


class HostEntry(View, frozen=True):
    """One host: `ssh` for a far one, else None (this host, `state_dir` or the default one)."""

    name: str
    url: str
    ssh: SshTarget | None = None
    state_dir: str | None = None


def hosts_file(env: Mapping[str, str], home: Path) -> Path:
    return Path(env.get("XDG_CONFIG_HOME") or home / ".config") / "loopctl" / "hosts.toml"


def parse_hosts(text: str, where: str) -> list[HostEntry]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML ({exc}): fix the file") from None
    unknown = sorted(set(data) - {"host"})
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}: the file lists [[host]] tables only")
    tables = data.get("host", [])
    if not isinstance(tables, list):
        raise ConfigError(f"{where}: `host` must be an array of tables ([[host]])")
    entries: list[HostEntry] = []
    for i, table in enumerate(tables, 1):
        entries.append(_entry(table, f"{where}: host #{i}"))
    names = [e.name for e in entries]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"{where}: host name {twice[0]!r} is listed twice: names must be unique")
    return entries


def _entry(table: object, where: str) -> HostEntry:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: must be a table")
    unknown = sorted(set(table) - {"name", "url", "loopctl", "state_dir"})
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (known: name, url, loopctl, state_dir)")
    for key in ("name", "url"):
        if not isinstance(table.get(key), str) or not table[key]:
            raise ConfigError(f"{where}: `{key}` must be a non-empty string")
    for key in ("loopctl", "state_dir"):
        if key in table and (not isinstance(table[key], str) or not table[key]):
            raise ConfigError(f"{where}: `{key}` must be a non-empty string")
    name, url = str(table["name"]), str(table["url"])
    if name == LOCAL or name.startswith("ssh:"):
        raise ConfigError(f"{where}: {name!r} cannot be a host name (it reads as a URL): choose another")
    if url == LOCAL:
        if "loopctl" in table:
            raise ConfigError(f"{where}: `loopctl` is for ssh hosts; this one is local")
        return HostEntry(name=name, url=url, state_dir=table.get("state_dir"))
    if "state_dir" in table:
        raise ConfigError(f"{where}: an ssh host names its state dir in the URL path (ssh://host/state-dir)")
    try:
        target = parse_ssh_url(url, loopctl=table.get("loopctl", "loopctl"))
    except LoopctlError as exc:
        raise ConfigError(f"{where} ({name}): {exc.message}") from None
    return HostEntry(name=name, url=url, ssh=target)


def load_hosts(path: Path) -> list[HostEntry]:
    """The contexts file's hosts; none when there is no file."""
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_HOSTS_BYTES + 1)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror}): fix its permissions") from None
    if len(raw) > MAX_HOSTS_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_HOSTS_BYTES} bytes: is it the right file?")
    return parse_hosts(raw.decode("utf-8", "replace"), str(path))


def resolve_host(value: str, path: Path) -> HostEntry:
    """What `--host VALUE` names: `local`, an ssh:// URL, or a name in the contexts file."""
    if value == LOCAL:
        return HostEntry(name=LOCAL, url=LOCAL)
    if value.startswith("ssh:"):
        return HostEntry(name=value, url=value, ssh=parse_ssh_url(value))
    entries = load_hosts(path)
    for entry in entries:
        if entry.name == value:
            return entry
    known = ", ".join(e.name for e in entries[:8]) or f"none: {path} lists no hosts"
    raise ConfigError(f"--host {value!r}: no such host in {path} (known: {known}); or give ssh://[user@]host")
