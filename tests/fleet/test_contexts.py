"""hosts.toml: the hosts an operator names, and what --host NAME resolves to."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.core.errors import ConfigError
from console.fleet.contexts import hosts_file, load_hosts, parse_hosts, resolve_host
from console.host.transport import SshTarget

GOOD = """
[[host]]
name = "edge-1"
url = "ssh://ops@edge-1/var/lib/loopctl"
loopctl = "/opt/loopctl/bin/loopctl"

[[host]]
name = "here"
url = "local"
state_dir = "/srv/loopctl"
"""


def test_hosts_parse_with_their_urls():
    edge, here = parse_hosts(GOOD, "hosts.toml")
    assert edge.ssh == SshTarget(host="edge-1", user="ops", state_dir="/var/lib/loopctl",
                                 loopctl="/opt/loopctl/bin/loopctl")
    assert here.ssh is None and here.state_dir == "/srv/loopctl"


@pytest.mark.parametrize(("text", "said"), [
    ("[[host]]\nname = 'a'\n", "host #1: `url` must be a non-empty string"),
    ("[[host]]\nname = 'a'\nurl = 'ftp://a'\n", "host #1 (a): --host 'ftp://a': expected ssh://"),
    ("[[host]]\nname = 'a'\nurl = 'local'\n[[host]]\nname = 'a'\nurl = 'local'\n", "'a' is listed twice"),
    ("[[host]]\nname = 'a'\nurl = 'local'\nport = 1\n", "unknown key 'port'"),
    ("[[host]]\nname = 'local'\nurl = 'local'\n", "'local' cannot be a host name"),
    ("[[host]]\nname = 'a'\nurl = 'ssh://a'\nstate_dir = '/x'\n", "names its state dir in the URL path"),
    ("host = 1\n", "`host` must be an array of tables"),
    ("[[host]\n", "not valid TOML"),
    ("[other]\n", "unknown key 'other'"),
])
def test_a_wrong_file_is_one_line_naming_it(text: str, said: str):
    with pytest.raises(ConfigError) as caught:
        parse_hosts(text, "/home/o/.config/loopctl/hosts.toml")
    assert caught.value.message.startswith("/home/o/.config/loopctl/hosts.toml: ") and said in caught.value.message
    assert "\n" not in caught.value.message


def test_host_resolves_names_urls_and_local(tmp_path: Path):
    path = hosts_file({"XDG_CONFIG_HOME": str(tmp_path)}, Path("/nonexistent"))
    assert path == tmp_path / "loopctl" / "hosts.toml"
    assert load_hosts(path) == []
    path.parent.mkdir()
    path.write_text(GOOD)
    assert resolve_host("edge-1", path).ssh is not None
    assert resolve_host("local", path).ssh is None
    assert resolve_host("ssh://b:2200", path).ssh == SshTarget(host="b", port=2200)
    with pytest.raises(ConfigError) as caught:
        resolve_host("edge-2", path)
    assert "no such host in" in caught.value.message and "known: edge-1, here" in caught.value.message
