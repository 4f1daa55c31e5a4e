"""SSH connection multiplexing for every session loopctl opens to another host.

A session costs a key exchange and a login: on this kind of 2-core machine 0.12 to 0.14 s of the near
side's CPU with OpenSSH's default post-quantum key exchange, and about 0.3 s of wall time, for
every `--host` command, every `--once` check, each fleet watch, every reconnect and each host
console opened from the fleet. With `ControlMaster=auto` the first session to a host becomes the
master of one connection, and every later one (the console `enter` opens beside the fleet's watch,
the retries of a host whose engine is down, the next `--once` of a monitor) is a channel on it, with
no handshake. `ControlPersist` keeps the master CONTROL_PERSIST seconds after its last session, so
relaunching the fleet or the next check finds it; `ssh -O exit -S SOCKET x` ends one sooner.

The control sockets live in a directory only this user can enter (0700, owned by them, not a link):
a socket there is a way into the operator's sessions, so a directory anyone else made or can write
is never used, and then sessions are simply not multiplexed. It is `$XDG_RUNTIME_DIR/loopctl-ssh`
(a per-user tmpfs on systemd hosts), else `/tmp/loopctl-ssh-UID`. A master whose link has died must
not hold new sessions forever: ServerAlive ends it (and a watch on it) after about 45 s of silence.

One master per way of reaching a host: its socket is named by a hash of the whole ssh command line up to
the host (LOOPCTL_SSH's words, the port, the user, the host as written), not by ssh's `%C`. `%C` hashes the
address a name resolves to, and in OpenSSH 9.2 leaves out ProxyJump: two sites' hosts at one private
address behind different bastions would share one master, and a second alias of a host (with another
known_hosts) would ride on the first one's connection without its own host key check.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Mapping, Sequence

CONTROL_PERSIST = 300  # seconds a master outlives its last session
SERVER_ALIVE = 15  # seconds between ssh's keepalives on a silent link; three unanswered end it
KEY_HEX = 32  # a socket's name: the first 128 bits of a SHA-256 of the command line it serves
# sun_path holds 107 bytes, and ssh binds the master at "<ControlPath>.<16 random chars>" first.
MAX_CONTROL_DIR = 107 - 17 - 1 - KEY_HEX


def control_dir(env: Mapping[str, str], uid: int) -> str:
    runtime = env.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isabs(runtime):
        return os.path.join(runtime, "loopctl-ssh")
    return f"/tmp/loopctl-ssh-{uid}"


def private_control_dir(env: Mapping[str, str], uid: int) -> str | None:
    """The control directory, made if need be; None when it cannot be a private one (then no multiplexing)."""
    path = control_dir(env, uid)
    if len(os.fsencode(path)) > MAX_CONTROL_DIR or "%" in path or any(c.isspace() for c in path):
        return None  # too long for a socket, or what ssh would read as tokens or split
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError:
        return None
    try:
        info = os.lstat(path)
    except OSError:
        return None
    private = stat.S_ISDIR(info.st_mode) and info.st_uid == uid and stat.S_IMODE(info.st_mode) & 0o077 == 0
    return path if private else None


def control_path(directory: str, reach: Sequence[str]) -> str:
    """The socket of the master for `reach`: the ssh command line up to and including the host."""
    key = hashlib.sha256("\0".join(reach).encode("utf-8", "surrogateescape")).hexdigest()[:KEY_HEX]
    return os.path.join(directory, key)


def multiplexing(directory: str, reach: Sequence[str]) -> list[str]:
    # `%` would be one of ssh's tokens in ControlPath: private_control_dir never gives a directory with one
    return ["-o", "ControlMaster=auto", "-o", f"ControlPath={control_path(directory, reach)}",
            "-o", f"ControlPersist={CONTROL_PERSIST}", "-o", f"ServerAliveInterval={SERVER_ALIVE}",
            "-o", "ServerAliveCountMax=3"]
