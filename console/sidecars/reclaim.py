"""Reclaim: find what a previous engine left running for a sidecar and end it, only if provably ours.

The verdict is a pure function; `reclaim` is the thin shell that reads the PID file, asks psutil,
signals through the guard and waits. Anything not proven ours is never signalled: the file is
removed and the process left alone (the packetfence#3291 lesson: a reused pid is someone else's).
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path

from console.core.processes import (
    CREATE_TIME_TOLERANCE,
    Identity,
    boot_time,
    group_alive,
    identify,
    leads_group,
    signal_group,
    signal_pid,
    wait_gone,
)
from console.core.records import View
from console.sidecars.pidfile import CorruptPidFile, PidRecord, read_pidfile, remove_pidfile
from console.sidecars.ports import port_free

TOKEN_VARIABLE = "LOOPCTL_SIDECAR_TOKEN"
RECLAIM_WAIT_SECONDS = 2.0  # at most this long for the old process to go and its port to free


class Outcome(StrEnum):
    NO_PIDFILE = "no_pidfile"
    STALE_PIDFILE = "stale_pidfile"
    FOREIGN = "foreign"
    RECLAIMED = "reclaimed"
    KILL_FAILED = "kill_failed"


class Verdict(StrEnum):
    NO_PIDFILE = "no_pidfile"
    STALE = "stale_pidfile"
    FOREIGN = "foreign"
    OURS = "ours"


def same_command(live: list[str], launched: list[str]) -> bool:
    """Is `live` the command we launched, allowing for exec through a shim or an interpreter?

    pyenv shims, `env` and shebang scripts keep the pid and start time but change argv: the shim
    execs `/full/path/python3 ARGS` (same program name, same arguments), a script becomes
    `INTERPRETER [FLAGS] /path/script ARGS` (ends with what we launched). Anything else is another program.
    """
    if not live or not launched:
        return False
    if live == launched:
        return True
    if os.path.basename(live[0]) == os.path.basename(launched[0]) and live[1:] == launched[1:]:
        return True
    return len(live) > len(launched) and live[-len(launched):] == launched


def ownership_verdict(record: PidRecord | CorruptPidFile | None, live: Identity | None,
                      current_boot: float, own: tuple[int, int] = (0, 0)) -> tuple[Verdict, str]:
    """Is the process named by the PID file the one we launched? (verdict, why). `own` is the
    engine's (pid, process group): a file naming either names no sidecar."""
    if record is None:
        return Verdict.NO_PIDFILE, "no PID file"
    if isinstance(record, CorruptPidFile):
        return Verdict.STALE, f"PID file is corrupt ({record.detail})"
    if record.pid <= 1 or record.pgid <= 1:
        return Verdict.STALE, f"PID file names pid {record.pid} / group {record.pgid}, which is never ours"
    if record.pid in own or record.pgid in own:
        return Verdict.STALE, (f"PID file names pid {record.pid} / group {record.pgid}: the engine's own "
                               f"process or group, never a sidecar")
    if abs(record.boot_time - current_boot) > 1.0:
        return Verdict.STALE, "PID file is from before the last boot"
    if live is None:
        return Verdict.STALE, f"pid {record.pid} is no longer running"
    if live.create_time < 0:
        return Verdict.FOREIGN, f"pid {record.pid} is alive but not visible to us"
    if abs(live.create_time - record.create_time) > CREATE_TIME_TOLERANCE:
        return Verdict.FOREIGN, f"pid {record.pid} was reused by another process (started at another time)"
    if not same_command(live.cmdline, record.cmdline):
        return Verdict.FOREIGN, f"pid {record.pid} runs {' '.join(live.cmdline)[:80]!r}, not the recorded command"
    if live.environ_token is not None and live.environ_token != record.session_token:
        return Verdict.FOREIGN, f"pid {record.pid} carries another session token"
    if live.environ_readable and live.environ_token is None:
        return Verdict.FOREIGN, f"pid {record.pid} carries no loopctl session token"
    return Verdict.OURS, f"pid {record.pid} matches the PID file (boot, start time, command)"


class ReclaimResult(View, frozen=True):
    outcome: Outcome
    detail: str
    pid: int | None = None


async def reclaim(pidfile: Path, port: int, grace: float) -> ReclaimResult:
    """Apply the verdict: end our orphan's group (TERM, grace, KILL), wait for it and its port; else
    remove the file and touch nothing."""
    record = read_pidfile(pidfile)
    live = identify(record.pid, TOKEN_VARIABLE) if isinstance(record, PidRecord) and record.pid > 1 else None
    verdict, why = ownership_verdict(record, live, boot_time(), (os.getpid(), os.getpgrp()))
    if verdict is Verdict.NO_PIDFILE:
        return ReclaimResult(Outcome.NO_PIDFILE, why)
    if verdict is not Verdict.OURS:
        remove_pidfile(pidfile)
        pid = record.pid if isinstance(record, PidRecord) else None
        return ReclaimResult(Outcome(verdict.value), why, pid)
    assert isinstance(record, PidRecord)
    if leads_group(record.pid, record.pgid):
        gone = await end_proven_group(record.pid, record.pgid, grace)
        if not gone:
            return ReclaimResult(Outcome.KILL_FAILED, f"group {record.pgid} survived SIGKILL", record.pid)
    else:
        # The pid is ours, the recorded group is not the one it leads: the group is never signalled.
        why = f"{why}, but it does not lead group {record.pgid}: only pid {record.pid} was signalled"
        if not await end_proven_pid(record.pid, grace):
            return ReclaimResult(Outcome.KILL_FAILED, f"pid {record.pid} survived SIGKILL", record.pid)
    remove_pidfile(pidfile)
    # The kernel gives no event for "port released" either.
    if port and not await _within(RECLAIM_WAIT_SECONDS, lambda: port_free(port)):
        return ReclaimResult(Outcome.RECLAIMED, f"{why}; ended it, but port {port} is still held", record.pid)
    return ReclaimResult(Outcome.RECLAIMED, f"{why}; ended it", record.pid)


async def end_proven_group(pid: int, pgid: int, grace: float) -> bool:
    """TERM the group `pid` was just proven to lead, a bounded wait, then KILL what is left of it.
    True when the leader and every member are gone."""
    signal_group(pgid, signal.SIGTERM)
    gone = await wait_gone(pid, min(grace, RECLAIM_WAIT_SECONDS))
    if not gone or group_alive(pgid):  # the leader, or another member, ignored SIGTERM
        signal_group(pgid, signal.SIGKILL)
        # No event exists for "every member of a group exited": poll, bounded.
        gone = await wait_gone(pid, RECLAIM_WAIT_SECONDS) and await _within(
            RECLAIM_WAIT_SECONDS, lambda: not group_alive(pgid))
    return gone


async def end_proven_pid(pid: int, grace: float) -> bool:
    """TERM one process proven ours, a bounded wait, then KILL. True when it is gone."""
    signal_pid(pid, signal.SIGTERM)
    if await wait_gone(pid, min(grace, RECLAIM_WAIT_SECONDS)):
        return True
    signal_pid(pid, signal.SIGKILL)
    return await wait_gone(pid, RECLAIM_WAIT_SECONDS)


async def _within(timeout: float, condition: Callable[[], bool]) -> bool:
    """Poll `condition` every 10 ms until it holds (True) or `timeout` real seconds pass (False)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(0.01)
    return True
