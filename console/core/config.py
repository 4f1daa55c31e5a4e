"""The host config: TOML read with tomllib into typed records (msgspec). Unknown keys are errors.

A missing file at the default location is the embedded default (an empty host); a missing
file named by --config is an error.
"""

from __future__ import annotations

import re
import socket
import zlib
from pathlib import Path
from typing import Literal

from console.core.decode import DecodeError, convert
from console.core.errors import ConfigError
from console.core.paths import Paths
from console.core.records import Check, StrictView, View, field


def in_range(low: float, high: float, what: str = "a number") -> Check:
    def check(value: float) -> str | None:
        return None if low <= value <= high else f"{what} from {low:g} to {high:g}"

    return check


def _host_name(value: str) -> str | None:
    if value == "" or (value.strip() == value and 0 < len(value) <= 253 and "\n" not in value):
        return None
    return "a host name (1 to 253 characters, no surrounding spaces)"


class HostSection(StrictView, frozen=True):
    checks = {"name": _host_name, "keep_runs_per_loop": in_range(1, 1_000_000, "a count"),
              "keep_runs_days": in_range(0, 3650, "days"), "keep_events": in_range(100, 100_000_000, "a count"),
              "socket_max_connections": in_range(8, 4096, "a count of connections"),
              "socket_idle_seconds": in_range(1, 3600, "seconds")}
    name: str = ""  # "" means the machine's host name
    # Retention (runs/retention.py): a run is kept while among its loop's newest N, or younger than D days.
    keep_runs_per_loop: int = 200
    keep_runs_days: float = 7.0
    keep_events: int = 20_000
    # The engine socket's limits (README, 'The engine socket'): at the cap, the longest-idle client
    # that has no request in progress is closed for a new one; a client idle this long is closed.
    socket_max_connections: int = 128
    socket_idle_seconds: float = 30.0


def _sidecar_name(value: str) -> str | None:
    if re.fullmatch(r"[a-z0-9][a-z0-9_.-]{0,62}", value):
        return None
    return "a name of lowercase letters, digits, '-', '_' or '.' (at most 63, starting with a letter or digit)"


def _argv(value: list[str]) -> str | None:
    return None if value and value[0] else "a non-empty list of strings: the program, then its arguments"


def _health(value: str) -> str | None:
    if value in ("", "tcp") or re.fullmatch(r"http://[^/\s]+(/\S*)?", value):
        return None
    return "'tcp' or an http:// URL"


class SidecarConfig(StrictView, frozen=True):
    """A long-running helper service the agents need (DESIGN section 3 has the defaults)."""

    checks = {"name": _sidecar_name, "command": _argv, "port": in_range(0, 65535, "a port (0 for none)"),
              "health": _health, "max_restarts": in_range(0, 1000, "a count"),
              "ready_timeout_seconds": in_range(0.1, 86400, "seconds"),
              "stop_grace_seconds": in_range(0, 3600, "seconds"),
              "log_max_bytes": in_range(4096, 1 << 30, "bytes (4096 to 1073741824)")}
    name: str
    command: list[str]
    cwd: str = ""
    env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    health: str = ""  # "" means: tcp when there is a port, else the process being up
    max_restarts: int = 5
    ready_timeout_seconds: float = 60.0
    stop_grace_seconds: float = 2.0
    log_max_bytes: int = 8 * 1024 * 1024  # its log is rotated to `.1` past this (sidecars/logs.py)
    plugin: str = ""  # a declared plugin: the command runs in its install directory (LOOPCTL_PLUGIN_DIR)

    @property
    def health_check(self) -> str:
        """The effective check: an http:// URL, "tcp", or "process" (up counts as healthy)."""
        if self.health:
            return self.health
        return "tcp" if self.port else "process"


class LoopConfig(StrictView, frozen=True):
    """A long-lived agent job, run locally as a series of runs (the control plane comes later)."""

    checks = {"id": _sidecar_name, "command": _argv,
              "run_timeout_seconds": in_range(0, 7 * 86400, "seconds (0 for none)"),
              "interval_seconds": in_range(0, 86400, "seconds")}
    id: str
    command: list[str]
    cwd: str = ""
    env: dict[str, str] = field(default_factory=dict)
    objective: str = ""
    run_timeout_seconds: float = 0.0
    interval_seconds: float = 60.0
    enabled: bool = True
    # With a joined control plane: "managed" loops are created there by the engine and bound to the
    # host key; "user" loops run on a token a person supplies (token_file) for an existing loop (remote_id).
    provenance: Literal["managed", "user"] = "managed"
    token_file: str = ""
    remote_id: str = ""
    plugin: str = ""  # as for sidecars

    @property
    def timeout(self) -> float | None:
        return self.run_timeout_seconds or None


def _url(value: str) -> str | None:
    return None if re.fullmatch(r"https?://[^\s/]+(/\S*)?", value) else "an http:// or https:// URL"


def _version(value: str) -> str | None:
    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}", value):
        return None
    return "a version of letters, digits, '.', '_', '+' or '-' (at most 64, starting with a letter or digit)"


def _sha256(value: str) -> str | None:
    if re.fullmatch(r"(sha256:)?[0-9a-f]{64}", value):
        return None
    return "a sha256 digest: 64 lowercase hex digits, optionally prefixed 'sha256:'"


class PluginConfig(StrictView, frozen=True):
    """A hash-pinned artifact (tar or zip), installed under <state>/plugins/<name>/<version>/."""

    checks = {"name": _sidecar_name, "version": _version, "source": _url, "artifact_hash": _sha256}
    name: str
    version: str
    source: str
    artifact_hash: str

    @property
    def sha256(self) -> str:
        return self.artifact_hash.removeprefix("sha256:")


def _host_id(value: str) -> str | None:
    return None if value else "the host id the control plane gave at join"


class ControlPlaneSection(StrictView, frozen=True):
    """Written by `loopctl join`: where the control plane is and who this host is there."""

    checks = {"url": _url, "host_id": _host_id, "heartbeat_interval_seconds": in_range(5, 3600, "seconds"),
              "loop_heartbeat_seconds": in_range(5, 3600, "seconds"),
              "poll_interval_seconds": in_range(5, 3600, "seconds")}
    url: str
    host_id: str
    heartbeat_interval_seconds: float = 60.0
    loop_heartbeat_seconds: float = 30.0  # each loop, +-10 %
    # Until a remote config says otherwise (the join answer's value is written here).
    poll_interval_seconds: float = 300.0


class HostConfig(StrictView, frozen=True):
    host: HostSection = field(default_factory=HostSection)
    control_plane: ControlPlaneSection | None = None
    sidecar: list[SidecarConfig] = field(default_factory=list)
    loop: list[LoopConfig] = field(default_factory=list)
    plugin: list[PluginConfig] = field(default_factory=list)

    def loop_named(self, loop_id: str) -> LoopConfig | None:
        return next((lp for lp in self.loop if lp.id == loop_id), None)

    def sidecar_named(self, name: str) -> SidecarConfig | None:
        return next((s for s in self.sidecar if s.name == name), None)

    @property
    def host_name(self) -> str:
        return self.host.name or socket.gethostname()

    @property
    def configured_count(self) -> int:
        """How many things the config declares."""
        return len(self.sidecar) + len(self.loop) + len(self.plugin)


class LoadedConfig(View, frozen=True):
    config: HostConfig
    path: Path
    present: bool  # False: the default path does not exist and the embedded default is in use
    digest: str = ""  # file_digest of the file's bytes ("" without a file): `--once` parses only what differs


def file_digest(raw: bytes) -> str:
    """Size and CRC-32: tells an edited file from the one loaded (hashlib's OpenSSL start-up would
    cost `--once` more than the parse it saves on a small host; nobody forges a collision against
    their own config file, which they could simply edit)."""
    return f"{len(raw)}-{zlib.crc32(raw):08x}"


def config_file_digest(path: Path) -> str | None:
    """The digest of the config file as it is now ("" when there is none), or None when it cannot be
    read: what `--once` compares with the digest of the file the engine loaded, before parsing anything."""
    try:
        return file_digest(path.read_bytes())
    except FileNotFoundError:
        return ""
    except OSError:
        return None


EXAMPLE_HINT = "see the README's 'Host config' section"


def load_config(paths: Paths) -> LoadedConfig:
    path = paths.config_path
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        if paths.config_explicit:
            raise ConfigError(f"config file {path} not found: create it or drop --config") from None
        return LoadedConfig(HostConfig(), path, present=False)
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a directory: point --config at a TOML file") from None
    except PermissionError:
        raise ConfigError(f"config file {path} is not readable (permission denied): fix its mode") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read ({exc.strerror})") from None
    return LoadedConfig(parse_config(raw, path), path, present=True, digest=file_digest(raw))


def parse_config(raw: bytes, path: Path) -> HostConfig:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}): save it as UTF-8") from None
    import tomllib  # noqa: PLC0415  (`--once` of a host whose engine loaded this file never parses it)

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}; {EXAMPLE_HINT}") from None
    except RecursionError:  # tomllib recurses per nested array or inline table
        raise ConfigError(f"{path}: invalid TOML: arrays or tables nested too deeply; {EXAMPLE_HINT}") from None
    problem = nul_in(data)
    if problem:
        raise ConfigError(f"{path}: {problem}; {EXAMPLE_HINT}")
    try:
        config = convert(HostConfig, data)
    except DecodeError as exc:
        raise ConfigError(f"{path}: {exc}; {EXAMPLE_HINT}") from None
    problem = cross_check(config)
    if problem:
        raise ConfigError(f"{path}: {problem}; {EXAMPLE_HINT}")
    return config


def nul_in(data: object, where: str = "") -> str | None:
    """Where a key or string holds a NUL byte, which no command, path or environment can carry (the
    spawn would fail long after the config was accepted)."""
    if isinstance(data, str):
        return f"{where or 'a value'}: contains a NUL character" if "\x00" in data else None
    if isinstance(data, dict):
        for key, value in data.items():
            inside = f"{where}.{key}" if where else str(key)
            if "\x00" in str(key):
                return f"{where or 'the top level'}: a key contains a NUL character"
            problem = nul_in(value, inside)
            if problem:
                return problem
    if isinstance(data, list):
        for index, value in enumerate(data):
            problem = nul_in(value, f"{where}[{index}]")
            if problem:
                return problem
    return None


def _env_problem(env: dict[str, str], where: str) -> str | None:
    for key in env:
        if not key or "=" in key:
            return f"{where}.env: {key!r} is not an environment variable name (empty, or contains '=')"
    return None


def cross_check(config: HostConfig | RemoteDocument) -> str | None:
    """Rules that span entries: unique names, one sidecar per port, tcp health needs a port, a
    plugin named by a sidecar or loop is declared."""
    plugins: dict[str, int] = {}
    for index, plugin in enumerate(config.plugin):
        if plugin.name in plugins:
            return f"plugin[{index}].name: {plugin.name!r} is already used by plugin[{plugins[plugin.name]}]"
        plugins[plugin.name] = index
    seen: dict[str, int] = {}
    ports: dict[int, str] = {}
    for index, sidecar in enumerate(config.sidecar):
        if sidecar.name in seen:
            return f"sidecar[{index}].name: {sidecar.name!r} is already used by sidecar[{seen[sidecar.name]}]"
        seen[sidecar.name] = index
        if sidecar.port:
            if sidecar.port in ports:
                return f"sidecar[{index}].port: {sidecar.port} is already used by sidecar {ports[sidecar.port]!r}"
            ports[sidecar.port] = sidecar.name
        problem = _env_problem(sidecar.env, f"sidecar[{index}]")
        if problem:
            return problem
        if sidecar.health == "tcp" and not sidecar.port:
            return f"sidecar[{index}].health: 'tcp' needs a port"
        if sidecar.plugin and sidecar.plugin not in plugins:
            return f"sidecar[{index}].plugin: {sidecar.plugin!r} is not declared in [[plugin]]"
    loops: dict[str, int] = {}
    for index, loop in enumerate(config.loop):
        if loop.id in loops:
            return f"loop[{index}].id: {loop.id!r} is already used by loop[{loops[loop.id]}]"
        loops[loop.id] = index
        problem = _env_problem(loop.env, f"loop[{index}]")
        if problem:
            return problem
        if loop.provenance == "user" and not (loop.token_file and loop.remote_id):
            return f"loop[{index}]: a user loop needs token_file (its runner token) and remote_id (its id there)"
        if loop.plugin and loop.plugin not in plugins:
            return f"loop[{index}].plugin: {loop.plugin!r} is not declared in [[plugin]]"
    return None


class RemoteDocument(StrictView, frozen=True):
    """The config document a control plane serves (JSON): the host's sidecar, loop and plugin
    sections plus the poll interval. On a joined host its active slot replaces those sections of
    the local file; the local file keeps the host-level settings."""

    checks = {"poll_interval_seconds": in_range(5, 3600, "seconds")}
    poll_interval_seconds: float = 300.0
    sidecar: list[SidecarConfig] = field(default_factory=list)
    loop: list[LoopConfig] = field(default_factory=list)
    plugin: list[PluginConfig] = field(default_factory=list)
