"""The ssh transport's pure parts: URLs, the ssh command line, and what a failed session says."""

from __future__ import annotations

import shlex

import pytest
from hypothesis import given
from hypothesis import strategies as st

from console.core.errors import LoopctlError
from console.host.transport import SshTarget, backoff, dial_failure, parse_ssh_url, ssh_argv, ssh_command


def test_urls_parse_into_user_host_port_and_state_dir():
    assert parse_ssh_url("ssh://edge-1") == SshTarget(host="edge-1")
    assert parse_ssh_url("ssh://ops@edge-1:2222/var/lib/loopctl") == SshTarget(
        host="edge-1", user="ops", port=2222, state_dir="/var/lib/loopctl")
    assert parse_ssh_url("ssh://edge-1/~/state").state_dir == "~/state"
    assert parse_ssh_url("ssh://edge-1/").state_dir is None
    assert parse_ssh_url("ssh://[::1]:22/s").host == "::1"


@pytest.mark.parametrize("url", ["edge-1", "http://edge-1", "ssh://", "ssh://-oProxyCommand=x", "ssh://h:0/x",
                                 "ssh://h:99999", "ssh://u:pw@h", "ssh://h/x?y=1", "ssh://-l@h", "ssh://h:port"])
def test_bad_urls_are_one_line(url: str):
    with pytest.raises(LoopctlError) as caught:
        parse_ssh_url(url)
    assert "expected ssh://[user@]host[:port][/state-dir]" in caught.value.message


names = st.from_regex(r"[a-z][a-z0-9-]{0,15}", fullmatch=True)
dirs = st.lists(st.from_regex(r"[A-Za-z0-9._ -]{1,12}", fullmatch=True).filter(lambda p: p not in (".", "..")),
                min_size=1, max_size=4)


@given(host=names, user=st.none() | names, port=st.none() | st.integers(1, 65535), parts=st.none() | dirs)
def test_the_far_command_is_one_quoted_argument_whatever_the_state_dir(host, user, port, parts):
    """The remote shell re-splits what ssh sends it: a state dir with spaces or quotes stays one argument,
    and nothing in a URL can become an ssh option."""
    state = "/" + "/".join(parts) if parts else None
    target = SshTarget(host=host, user=user, port=port, state_dir=state)
    argv = ssh_argv(target, ["ssh"])
    assert argv[:5] == ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10"]
    dest = argv.index("--")
    assert argv[dest + 1] == host and len(argv) == dest + 3
    far = shlex.split(argv[-1])
    assert far[:2] == ["loopctl", "dial-stdio"] and far[2:] == (["--state-dir", state] if state else [])
    assert ("-p" in argv) == (port is not None) and ("-l" in argv) == (user is not None)
    if port is not None:
        assert argv[argv.index("-p") + 1] == str(port)
    assert parse_ssh_url(target.url) == target


def test_loopctl_ssh_replaces_the_command():
    assert ssh_command({}) == ["ssh"]
    assert ssh_command({"LOOPCTL_SSH": "ssh -F '/etc/fleet ssh.conf'"}) == ["ssh", "-F", "/etc/fleet ssh.conf"]
    with pytest.raises(LoopctlError):
        ssh_command({"LOOPCTL_SSH": "  "})


def test_a_session_that_ended_without_an_answer_says_why():
    t = SshTarget(host="edge-1", state_dir="/srv/s")
    assert dial_failure("edge-1", t, 255, b"ssh: Could not resolve hostname edge-1: Name or service not known\r\n"
                        ).message == "ssh edge-1: ssh: Could not resolve hostname edge-1: Name or service not known"
    assert dial_failure("edge-1", t, 127, b"bash: line 1: loopctl: command not found\n").message.startswith(
        "loopctl not installed on edge-1 ('loopctl': bash: line 1: loopctl: command not found)")
    assert dial_failure("edge-1", t, 69, b"").message.startswith("no engine owns /srv/s on edge-1")
    assert dial_failure("edge-1", t, 1, b"").message == "ssh edge-1: the session ended without an answer (exit 1)"
    assert all(dial_failure("e", t, code, b"x\n" * 5).exit_code == 3 for code in (255, 127, 69, 1, None))


def test_reconnects_back_off_from_1_s_doubling_to_30_s():
    assert [backoff(n) for n in range(8)] == [1, 2, 4, 8, 16, 30, 30, 30]


def hostile(tmp_path, body: str) -> list[str]:
    """An `ssh` (as LOOPCTL_SSH names one) whose far side misbehaves: the attacks a far host can make."""
    script = tmp_path / "far"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return [str(script)]


def test_an_answer_without_end_is_capped_and_a_silent_far_side_times_out(tmp_path):
    import time

    from console.core.errors import OwnerUnavailable
    from console.host.protocol import MAX_RESPONSE_BYTES
    from console.host.transport import SshDialer

    endless = SshDialer("edge-1", SshTarget(host="edge-1"),
                        hostile(tmp_path, f"head -c {MAX_RESPONSE_BYTES + (8 << 20)} /dev/zero"))
    with pytest.raises(OwnerUnavailable) as capped:
        endless.request("snapshot")
    assert capped.value.message == f"ssh edge-1: the far side's answer exceeded {MAX_RESPONSE_BYTES} bytes"
    silent = SshDialer("edge-1", SshTarget(host="edge-1"), hostile(tmp_path, "exec sleep 60"))
    start = time.monotonic()
    with pytest.raises(OwnerUnavailable) as hung:
        silent.request("snapshot", timeout=0.5)
    assert hung.value.message == "ssh edge-1: no answer within 0.5 s" and time.monotonic() - start < 5
    loud = SshDialer("edge-1", SshTarget(host="edge-1"),
                     hostile(tmp_path, "head -c 1000000 /dev/zero | tr '\\0' x >&2; echo >&2; "
                                       "echo 'ssh: it broke' >&2; exit 255"))
    with pytest.raises(OwnerUnavailable) as said:  # a flood on stderr never blocks the session
        loud.request("snapshot", timeout=10)
    assert said.value.message == "ssh edge-1: ssh: it broke"
    flood = SshDialer("edge-1", SshTarget(host="edge-1"),
                      hostile(tmp_path, "head -c 100000 /dev/zero | tr '\\0' x >&2; exit 255"))
    with pytest.raises(OwnerUnavailable) as long_line:
        flood.request("snapshot", timeout=10)
    assert long_line.value.message == "ssh edge-1: " + "x" * 300  # one line, of a readable length


async def test_a_stream_keeps_flowing_while_the_far_side_floods_stderr(tmp_path):
    """ssh's stderr is drained as it comes: a pipe left full stops ssh, and the watch with it."""
    import asyncio

    from console.host.transport import SshDialer

    far = hostile(tmp_path, "head -c 1000000 /dev/zero | tr '\\0' x >&2; echo >&2; read request; "
                            "echo '{\"id\": 1, \"ok\": true}'; echo 'ssh: bye' >&2; exit 255")
    stream = await SshDialer("edge-1", SshTarget(host="edge-1"), far).open()
    try:
        async with asyncio.timeout(10):
            await stream.send({"id": 1, "op": "watch"})
            assert await stream.read() == {"id": 1, "ok": True}
            assert await stream.read() is None
            assert (await stream.failure()).message == "ssh edge-1: ssh: bye"
    finally:
        await stream.close()
