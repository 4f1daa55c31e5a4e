"""Processes we may signal, and proof that they are ours.

Every signal loopctl sends goes through `signal_group` / `signal_pid`. They refuse pid/pgid <= 1
and loopctl's own process group whatever the caller believes; ownership (same boot, same
create_time, same cmdline) is proven before a caller asks (see reclaim.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import psutil

from console.core.records import View
from console.core.waiting import sleep_unless

if TYPE_CHECKING:
    from console.core.clock import Clock

# psutil derives create_time from clock ticks since boot: the same process reads back the same value.
CREATE_TIME_TOLERANCE = 0.05


class RefusedSignal(Exception):
    """The guard refused: the target is init, a kernel group, or loopctl itself."""


def _check_target(kind: str, target: int) -> None:
    if not isinstance(target, int) or isinstance(target, bool):
        raise RefusedSignal(f"refusing to signal {kind} {target!r}: not an integer")
    if target <= 1:
        raise RefusedSignal(f"refusing to signal {kind} {target}: pids and groups <= 1 are never ours")
    own_group = os.getpgrp()
    if kind == "group" and target == own_group:
        raise RefusedSignal(f"refusing to signal group {target}: it is loopctl's own process group")
    if kind == "pid" and (target == os.getpid() or _group_of(target) == own_group):
        raise RefusedSignal(f"refusing to signal pid {target}: it is loopctl or in loopctl's process group")


def _group_of(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except (ProcessLookupError, PermissionError):
        return None


def signal_group(pgid: int, sig: int) -> bool:
    """Send `sig` to a process group. False if the group is already gone."""
    _check_target("group", pgid)
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    return True


def signal_pid(pid: int, sig: int) -> bool:
    _check_target("pid", pid)
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True


def group_alive(pgid: int) -> bool:
    """Whether any process of the group is still alive (zombies count as gone)."""
    if pgid <= 1:
        return False
    for proc in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                return True
        except (ProcessLookupError, psutil.Error, PermissionError):
            continue
    return False


class Identity(View, frozen=True):
    """What identifies one process across pid reuse."""

    pid: int
    create_time: float
    cmdline: list[str]
    boot_time: float
    environ_token: str | None  # our session token from its environment, None if unreadable or absent
    # Whether the environment could be read: a readable one without our token is proof it is not ours.
    environ_readable: bool = False


def boot_time() -> float:
    return float(psutil.boot_time())


def identify(pid: int, token_variable: str | None = None) -> Identity | None:
    """The live process behind `pid`, or None when there is none (or only a zombie)."""
    if pid <= 0:
        return None
    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
            create = proc.create_time()
            cmdline = proc.cmdline()
        token = None
        readable = False
        if token_variable:
            with contextlib.suppress(psutil.Error, OSError):
                token = proc.environ().get(token_variable)
                readable = True
        return Identity(pid, create, cmdline, boot_time(), token, readable)
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None
    except psutil.AccessDenied:
        # Alive but hidden from us: certainly not a process we can prove is ours.
        return Identity(pid, -1.0, [], boot_time(), None)


async def wait_gone(pid: int, timeout: float | None) -> bool:
    """Wait (bounded, real time: this waits on the OS, not on a policy timer) until `pid` has exited.

    Uses a pidfd where the kernel has them, so the wake-up is the exit itself, not a polling tick.
    """
    loop = asyncio.get_running_loop()
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    except (OSError, AttributeError):
        fd = -1
    if fd >= 0:
        exited: asyncio.Future[None] = loop.create_future()

        def readable() -> None:  # a pidfd turns readable when the process exits
            if not exited.done():
                exited.set_result(None)

        loop.add_reader(fd, readable)
        try:
            async with asyncio.timeout(timeout):  # None: as long as it takes
                await exited
            return True
        except TimeoutError:
            return identify(pid) is None
        finally:
            loop.remove_reader(fd)
            os.close(fd)
    deadline = time.monotonic() + timeout if timeout is not None else float("inf")
    while identify(pid) is not None:
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.01)
    return True


async def end_group(pgid: int, exited: Awaitable[Any], grace: float, clock: Clock) -> None:
    """SIGTERM the group, allow `grace` seconds (on the clock) for the leader to exit, then SIGKILL
    whatever of the group is left. `exited` completes when the leader (our child) has exited."""
    done = asyncio.ensure_future(exited)
    signal_group(pgid, signal.SIGTERM)
    await sleep_unless(clock, grace, done)
    if not done.done() or group_alive(pgid):
        signal_group(pgid, signal.SIGKILL)
        await done


def leads_group(pid: int, pgid: int) -> bool:
    """Whether `pid` is alive and leads process group `pgid` (what makes signalling the group mean
    signalling what `pid` started, not whichever group a record names)."""
    return pid > 1 and pid == pgid and _group_of(pid) == pgid


class Carrier(View, frozen=True):
    """A live process whose environment carries a variable we set."""

    pid: int
    pgid: int
    value: str


def carrying(variable: str, match: Callable[[str], bool]) -> list[Carrier]:
    """Every live process whose environment has `variable` with a value `match` accepts: how the
    engine finds what an earlier engine spawned but never got to record. A scan of the process
    table (run it in a thread)."""
    found = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if proc.pid <= 1 or proc.status() == psutil.STATUS_ZOMBIE:
                continue
            value = proc.environ().get(variable)
            if value is not None and match(value):
                found.append(Carrier(proc.pid, os.getpgid(proc.pid), value))
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    return found
