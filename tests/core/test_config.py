import socket
from pathlib import Path

import pytest

from console.core.config import HostConfig, load_config, parse_config
from console.core.errors import ConfigError
from console.core.paths import resolve_paths
from tests.conftest import NOBODY, as_user, requires_root


def paths_for(tmp_path: Path, config: str | None):
    return resolve_paths(str(tmp_path / "state"), config, {}, tmp_path)


def test_missing_default_config_is_the_embedded_default(tmp_path):
    loaded = load_config(resolve_paths(None, None, {"XDG_CONFIG_HOME": str(tmp_path)}, tmp_path))
    assert loaded.present is False
    assert loaded.config == HostConfig()
    assert loaded.config.host_name == socket.gethostname()
    assert loaded.config.configured_count == 0


def test_missing_explicit_config_is_an_error_naming_the_file(tmp_path):
    with pytest.raises(ConfigError, match=r"config file .*nope\.toml not found"):
        load_config(paths_for(tmp_path, str(tmp_path / "nope.toml")))


def test_config_sets_the_host_name(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[host]\nname = "edge-7"\n')
    assert load_config(paths_for(tmp_path, str(cfg))).config.host_name == "edge-7"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[host\n", r"invalid TOML: .*line 1"),
        ('[host]\nname = 7\n', r"host\.name: expected a string, got 7"),
        ('[host]\nnmae = "x"\n',
         r"host\.nmae: unknown key \(known keys: name, socket_idle_seconds, socket_max_connections\)"),
        ('colour = "red"\n', r"colour: unknown key \(known keys: control_plane, host, loop, plugin, sidecar\)"),
        ('[host]\nname = " padded "\n', r"host\.name: expected a host name"),
        ("host = 3\n", r"host: expected a table, got 3"),
    ],
)
def test_invalid_config_names_the_file_the_key_and_what_was_expected(tmp_path, text, message):
    path = tmp_path / "loopctl.toml"
    with pytest.raises(ConfigError, match=message) as info:
        parse_config(text.encode(), path)
    assert str(path) in info.value.message
    assert "\n" not in info.value.message


def test_non_utf8_config_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="not UTF-8"):
        parse_config(b"\xff\xfe[host]", tmp_path / "c.toml")


def test_config_that_is_a_directory_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(paths_for(tmp_path, str(tmp_path)))


def test_path_resolution_follows_design_section_4(tmp_path):
    env = {"LOOPCTL_HOME": "/srv/lh", "XDG_STATE_HOME": "/x/state", "XDG_CONFIG_HOME": "/x/config"}
    assert resolve_paths("/flag", None, env, tmp_path).state_dir == Path("/flag")
    assert resolve_paths(None, None, env, tmp_path).state_dir == Path("/srv/lh")
    no_home = {"XDG_STATE_HOME": "/x/state"}
    assert resolve_paths(None, None, no_home, tmp_path).state_dir == Path("/x/state/loopctl")
    assert resolve_paths(None, None, {}, tmp_path).state_dir == tmp_path / ".local/state/loopctl"
    p = resolve_paths(None, None, env, tmp_path)
    assert p.config_path == Path("/x/config/loopctl/loopctl.toml") and not p.config_explicit
    assert resolve_paths(None, "/etc/l.toml", env, tmp_path).config_explicit


@requires_root
def test_an_unreadable_config_is_a_clear_error(shared_dir):
    cfg = shared_dir / "loopctl.toml"
    cfg.write_text('[host]\nname = "x"\n')
    cfg.chmod(0o600)  # root's; nobody may not read it
    answer = as_user(NOBODY, lambda: load_config(paths_for(shared_dir, str(cfg))))
    assert answer.startswith("ConfigError") and "is not readable (permission denied)" in answer
