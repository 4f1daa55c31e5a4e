"""The host config: TOML read with tomllib into typed dataclasses. Unknown keys are errors.

A missing file at the default location is the embedded default (an empty host); a missing
file named by --config is an error.
"""

from __future__ import annotations

import socket
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from console.engine.decoding import DecodeError, check, decode
from console.engine.errors import ConfigError
from console.engine.paths import Paths


def _host_name(value: str) -> str | None:
    if value == "" or (value.strip() == value and 0 < len(value) <= 253 and "\n" not in value):
        return None
    return "a host name (1 to 253 characters, no surrounding spaces)"


@dataclass(frozen=True)
class HostSection:
    name: str = check(_host_name, default="")  # "" means the machine's host name


@dataclass(frozen=True)
class HostConfig:
    host: HostSection = field(default_factory=HostSection)

    @property
    def host_name(self) -> str:
        return self.host.name or socket.gethostname()

    @property
    def configured_count(self) -> int:
        """How many supervised things the config declares (sidecars, loops, plugins come later)."""
        return 0


@dataclass(frozen=True)
class LoadedConfig:
    config: HostConfig
    path: Path
    present: bool  # False: the default path does not exist and the embedded default is in use


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
    return LoadedConfig(parse_config(raw, path), path, present=True)


def parse_config(raw: bytes, path: Path) -> HostConfig:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}): save it as UTF-8") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}; {EXAMPLE_HINT}") from None
    try:
        return decode(HostConfig, data, strict=True)
    except DecodeError as exc:
        raise ConfigError(f"{path}: {exc}; {EXAMPLE_HINT}") from None
