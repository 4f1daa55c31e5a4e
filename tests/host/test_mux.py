"""ssh multiplexing's choices (host/mux.py): where the masters' sockets may live, and which sessions
share one. Riding on a master, end to end: tests/fleet/test_over_ssh.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from console.host.mux import CONTROL_PERSIST, MAX_CONTROL_DIR, control_dir, control_path, private_control_dir
from console.host.transport import SshTarget, ssh_argv


def test_the_runtime_dir_is_preferred_and_tmp_is_per_user():
    assert control_dir({"XDG_RUNTIME_DIR": "/run/user/1000"}, 1000) == "/run/user/1000/loopctl-ssh"
    assert control_dir({}, 1000) == control_dir({"XDG_RUNTIME_DIR": "relative"}, 1000) == "/tmp/loopctl-ssh-1000"


def test_a_private_dir_is_made_0700_and_used(short_tmp: Path):
    made = private_control_dir({"XDG_RUNTIME_DIR": str(short_tmp)}, os.getuid())
    assert made == str(short_tmp / "loopctl-ssh")
    assert (short_tmp / "loopctl-ssh").stat().st_mode & 0o777 == 0o700
    assert private_control_dir({"XDG_RUNTIME_DIR": str(short_tmp)}, os.getuid()) == made  # and found again


def test_a_dir_others_can_enter_or_a_link_or_a_long_path_means_no_multiplexing(short_tmp: Path):
    def said(runtime: Path) -> str | None:
        return private_control_dir({"XDG_RUNTIME_DIR": str(runtime)}, os.getuid())

    (short_tmp / "open" / "loopctl-ssh").mkdir(parents=True)
    (short_tmp / "open" / "loopctl-ssh").chmod(0o755)
    (short_tmp / "link").mkdir()
    (short_tmp / "mine").mkdir()
    (short_tmp / "link" / "loopctl-ssh").symlink_to(short_tmp / "mine")
    long = short_tmp / ("x" * MAX_CONTROL_DIR)
    long.mkdir()
    assert [said(short_tmp / "open"), said(short_tmp / "link"), said(long), said(short_tmp / "absent")] == [None] * 4
    assert not (short_tmp / "absent").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="making a directory another user owns needs root")
def test_a_dir_another_user_made_is_never_used(short_tmp: Path):
    (short_tmp / "loopctl-ssh").mkdir(mode=0o700)
    os.chown(short_tmp / "loopctl-ssh", 65534, 65534)  # nobody's, as a stranger's pre-made /tmp one would be
    assert private_control_dir({"XDG_RUNTIME_DIR": str(short_tmp)}, os.getuid()) is None


def option(argv: list[str], name: str) -> str | None:
    said = [argv[i + 1].split("=", 1)[1] for i, word in enumerate(argv[:-1])
            if word == "-o" and argv[i + 1].startswith(f"{name}=")]
    return said[0] if said else None


def test_each_way_of_reaching_a_host_has_its_own_master_and_loopctl_ssh_comes_first(short_tmp: Path):
    ssh = ["ssh", "-F", "/etc/fleet.conf"]
    a = ssh_argv(SshTarget(host="edge-1", state_dir="/srv/a"), ssh, str(short_tmp))
    b = ssh_argv(SshTarget(host="edge-1", state_dir="/srv/b"), ssh, str(short_tmp))
    paths = {option(ssh_argv(t, words, str(short_tmp)), "ControlPath") for t, words in [
        (SshTarget(host="edge-1"), ssh), (SshTarget(host="edge-1", user="ops"), ssh),
        (SshTarget(host="edge-1", port=2222), ssh), (SshTarget(host="edge-1-alias"), ssh),
        (SshTarget(host="edge-1"), ["ssh", "-J", "bastion-2"])]}
    assert option(a, "ControlPath") == option(b, "ControlPath")  # two state dirs on one host: one connection
    assert len(paths) == 5 and option(a, "ControlPath") in paths
    assert option(a, "ControlPath") == control_path(str(short_tmp), [*ssh, "--", "edge-1"])
    assert a[:3] == ssh and option(a, "ControlMaster") == "auto" and option(a, "ControlPersist") == str(CONTROL_PERSIST)
    assert option(a, "ServerAliveInterval") is not None
    assert ssh_argv(SshTarget(host="edge-1"), ssh) == ssh_argv(SshTarget(host="edge-1"), ssh, None)
    assert option(ssh_argv(SshTarget(host="edge-1"), ssh), "ControlMaster") is None
