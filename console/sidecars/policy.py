"""Sidecar supervision policy as pure functions: backoff, how an attempt failed, what the tray says.

The runner (sidecars.py) does the effects and asks these what to do.
"""

from __future__ import annotations

import signal
from enum import StrEnum

from console.core.records import View
from console.sidecars.ports import mentions_address_in_use

STABILITY_SECONDS = 5.0  # ready this long resets the restart count
BACKOFF_FIRST = 1.0
BACKOFF_CAP = 30.0


class FailureReason(StrEnum):
    PORT_CONFLICT = "port_conflict"
    CRASH_LOOP = "crash_loop"
    READY_TIMEOUT = "ready_timeout"
    SPAWN_ERROR = "spawn_error"


class Failure(View, frozen=True):
    reason: FailureReason
    text: str  # one line, names the sidecar's problem (not the sidecar: the caller prefixes it)


def backoff_delay(restart: int) -> float:
    """Seconds to wait before restart number `restart` (1-based) since the sidecar was last stable.

    The first restart is immediate, so a crash of a healthy service costs one spawn (as with
    supervisord); repeated failures wait 1 s, doubling to 30 s.
    """
    if restart <= 1:
        return 0.0
    return float(min(BACKOFF_FIRST * 2.0 ** (restart - 2), BACKOFF_CAP))


def latches(restarts_used: int, max_restarts: int) -> bool:
    """Past the allowed restarts the sidecar is `failed` until an operator retries or reclaims it."""
    return restarts_used > max_restarts


def describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "ended"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"killed by {name}"
    return f"exited with code {returncode}"


def classify_exit(*, returncode: int | None, output_tail: str, port: int, port_held: bool,
                  holder_text: str) -> Failure:
    """Why did a launched sidecar stop? A bind failure is a port conflict, whatever the exit code."""
    how = describe_exit(returncode)
    if port and (port_held or mentions_address_in_use(output_tail)):
        who = f" by {holder_text}" if holder_text else ""
        return Failure(FailureReason.PORT_CONFLICT, f"port {port} is held{who}; the sidecar {how}")
    last = last_line(output_tail)
    return Failure(FailureReason.CRASH_LOOP, how + (f": {last}" if last else ""))


def last_line(output: str, limit: int = 120) -> str:
    for line in reversed(output.splitlines()):
        if line.strip():
            text = line.strip()
            return text if len(text) <= limit else text[: limit - 1] + "…"
    return ""


def holder_text(pid: int | None, program: str, ours: bool) -> str:
    if pid is None:
        return f"{program}"
    whose = "ours: left by an earlier engine, reclaimable" if ours else "foreign"
    return f"{program} pid {pid} ({whose})"


def clearing_action(name: str, reason: str, *, port: int, holder_pid: int | None, holder_ours: bool) -> str:
    target = f"sidecar:{name}"
    if reason == FailureReason.PORT_CONFLICT:
        if holder_ours:
            return f"`loopctl reclaim {target}` ends the leftover and relaunches"
        who = f"pid {holder_pid}" if holder_pid else "whatever holds it"
        return f"free port {port} (stop {who}) or change the sidecar's port, then `loopctl retry {target}`"
    if reason == FailureReason.SPAWN_ERROR:
        return f"fix the sidecar's command or cwd in the config, then `loopctl retry {target}`"
    if reason == FailureReason.READY_TIMEOUT:
        return f"check its health check and output, then `loopctl retry {target}`"
    return f"read its output (console detail, or the sidecar log), fix it, then `loopctl retry {target}`"


class SidecarEvent(StrEnum):
    RELOAD_UNCHANGED = "reload_unchanged"  # a reconfigure in which this sidecar's config is the same
    RELOAD_CHANGED = "reload_changed"  # its own config changed
    REMOVED = "removed"  # the config no longer names it
    OPERATOR_RETRY = "operator_retry"
    OPERATOR_RECLAIM = "operator_reclaim"


class Effect(StrEnum):
    KEEP = "keep"  # left as it is: running, waiting in backoff, or latched failed
    RESTART = "restart"  # stopped (if running) and started anew, attempts reset
    STOP = "stop"  # stopped for good
    REFUSE = "refuse"  # the operator's action does not apply (not_applicable)


SIDECAR_STATES = ("stopped", "starting", "ready", "backoff", "stopping", "failed")


def on_event(state: str, event: SidecarEvent, *, running: bool = False) -> Effect:
    """What an event does to a sidecar in `state`. `failed` is the operator's latch: a reload keeps it
    failed unless its own config changed (a new config deserves a new try); only a retry or reclaim
    by the operator relaunches it otherwise. `running`: this engine holds a live process for it."""
    if event is SidecarEvent.RELOAD_UNCHANGED:
        return Effect.KEEP
    if event is SidecarEvent.RELOAD_CHANGED:
        return Effect.RESTART
    if event is SidecarEvent.REMOVED:
        return Effect.STOP
    if event is SidecarEvent.OPERATOR_RETRY:
        return Effect.RESTART if state in ("failed", "backoff", "stopped") else Effect.REFUSE
    return Effect.REFUSE if running else Effect.RESTART  # reclaim: only what this engine does not run
