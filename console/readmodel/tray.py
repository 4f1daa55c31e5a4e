"""The tray: one host state with ranked reasons. Pure functions over plain data.

Every non-ok reason carries a code, a one-line text and the action that clears it. Reasons at
level `ok` are notes (for instance "nothing configured"): shown, but they never raise the state.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import TYPE_CHECKING

from console.core.errors import EXIT_CRITICAL, EXIT_OK, EXIT_WARNING, MONITORING_WORDS
from console.core.records import View, field

if TYPE_CHECKING:
    from console.controlplane.view import ControlPlaneView
    from console.core.tasks import TaskTrouble
    from console.remote.view import PluginView, RemoteConfigView
    from console.runs.view import LoopView, RunView
    from console.sidecars.view import SidecarView


class Level(StrEnum):
    OK = "ok"
    PAUSED = "paused"
    DEGRADED = "degraded"
    DOWN = "down"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @property
    def exit_code(self) -> int:
        """Monitoring mapping: ok 0, paused/degraded 1 (WARNING), down 2 (CRITICAL)."""
        return {Level.OK: EXIT_OK, Level.PAUSED: EXIT_WARNING, Level.DEGRADED: EXIT_WARNING,
                Level.DOWN: EXIT_CRITICAL}[self]

    @property
    def monitoring_word(self) -> str:
        return MONITORING_WORDS[self.exit_code]


_RANK = {Level.OK: 0, Level.PAUSED: 1, Level.DEGRADED: 2, Level.DOWN: 3}

# Within one level, the more fundamental cause first: with no engine, nothing else is current.
CODE_PRIORITY: dict[str, int] = {
    "engine_not_running": 0,
    "port_conflict": 10,
    "spawn_error": 11,
    "crash_loop": 12,
    "ready_timeout": 13,
    "control_plane_rejected": 5,
    "loop_escalated": 20,
    "loop_finalized": 21,
    "loop_paused": 22,
    "sidecar_stopped": 23,
    "loop_held": 24,
    "control_plane_unreachable": 25,
    "control_plane_bad_answer": 24,
    "descriptors_exhausted": 1,
    "task_latched": 6,
    "task_crashed": 7,
    "remote_config_rolled_back": 26,
    "remote_config_rejected": 27,
    "remote_config_poll_failed": 28,
    "plugin_failed": 29,
    "sidecar_restarting": 30,
    "config_reload_refused": 34,
    "config_unloadable": 35,  # a risk for the next start, not a fault of the running host
    "run_detached": 40,
    "nothing_configured": 90,
}
DEFAULT_PRIORITY = 50


class Reason(View, frozen=True):
    level: Level
    code: str
    text: str  # one line: what is wrong, naming the thing
    action: str  # what clears it
    subject: str = ""  # "kind:name" of the thing it is about, "" for the host


class Tray(View, frozen=True):
    state: Level
    reasons: list[Reason] = field(default_factory=list)

    @property
    def top(self) -> Reason | None:
        return self.reasons[0] if self.reasons else None


def rank_key(reason: Reason) -> tuple[int, int, str, str]:
    return (-reason.level.rank, CODE_PRIORITY.get(reason.code, DEFAULT_PRIORITY), reason.subject, reason.code)


def roll_up(reasons: Iterable[Reason]) -> Tray:
    ranked = sorted(reasons, key=rank_key)
    state = ranked[0].level if ranked else Level.OK
    return Tray(state=state, reasons=ranked)


def engine_reasons(*, running: bool, state_dir: str, last_owner_pid: int | None,
                   last_stop_clean: bool | None) -> list[Reason]:
    if running:
        return []
    if last_owner_pid is None:
        history = "no engine has run here yet"
    elif last_stop_clean:
        history = f"last engine pid {last_owner_pid} stopped cleanly"
    else:
        history = f"last engine pid {last_owner_pid} ended without stopping (killed or crashed)"
    return [Reason(
        level=Level.DOWN,
        code="engine_not_running",
        text=f"no engine owns {state_dir} ({history})",
        action="start it: `loopctl run` (service) or `loopctl` (console)",
    )]


def config_reasons(*, configured_count: int, config_path: str, config_present: bool) -> list[Reason]:
    if configured_count > 0:
        return []
    where = config_path if config_present else f"{config_path} (absent: embedded default)"
    return [Reason(
        level=Level.OK,
        code="nothing_configured",
        text=f"nothing configured: no sidecars, loops or plugins in {where}",
        action=f"declare what this host runs in {config_path} (README: 'Host config')",
    )]


CONFIG_FILE = "config:file"  # the subject of what is wrong with the host's config file


def unloadable_config_reason(problem: str, engine_pid: int | None) -> Reason:
    """The config file on disk no longer loads while an engine runs: nothing is wrong yet, but the next
    start (a reboot, a crash, a deploy) will refuse it."""
    engine = f"engine pid {engine_pid}" if engine_pid else "the engine"
    return Reason(
        level=Level.DEGRADED,
        code="config_unloadable",
        text=f"the config file does not load ({problem}); {engine} keeps running the config it started with",
        action="fix the file before the engine restarts; `systemctl reload loopctl` (SIGHUP) then applies it",
        subject=CONFIG_FILE,
    )


def reload_refused_reason(problem: str) -> Reason:
    """SIGHUP found a config file it could not run: the engine kept the config it had."""
    return Reason(
        level=Level.DEGRADED,
        code="config_reload_refused",
        text=f"config reload refused ({problem}); the engine keeps running the config it had",
        action="fix the file, then `systemctl reload loopctl` (SIGHUP) again",
        subject=CONFIG_FILE,
    )


def sidecar_reasons(sidecars: Iterable[SidecarView]) -> list[Reason]:
    """A latched failure is degraded until cleared; a sidecar in backoff is down for now: degraded too."""
    reasons = []
    for s in sidecars:
        subject = f"sidecar:{s.name}"
        if s.state == "failed":
            reasons.append(Reason(Level.DEGRADED, s.reason or "sidecar_failed",
                                  f"{s.name}: {s.reason_text}", s.action, subject))
        elif s.state == "backoff":
            reasons.append(Reason(Level.DEGRADED, "sidecar_restarting", f"{s.name}: {s.reason_text}",
                                  f"wait, or `loopctl retry {subject}` to restart it now", subject))
        if s.held_by:  # asked for, so not a fault: paused, as a paused loop is
            reasons.append(Reason(Level.PAUSED, "sidecar_stopped", f"{s.name}: stopped by `{s.held_by}`; it stays "
                                  f"stopped across reloads and restarts", f"`loopctl start {subject}` starts it",
                                  subject))
    return reasons


def loop_reasons(loops: Iterable[LoopView], runs: Iterable[RunView]) -> list[Reason]:
    """An escalated loop starts no runs until an operator retries it; a detached run is a warning."""
    reasons = []
    for lp in loops:
        if lp.state == "paused":
            reasons.append(Reason(Level.PAUSED, "loop_paused", f"loop {lp.id} paused by the control plane: {lp.reason}",
                                  "resume it on the control plane; it starts no runs meanwhile", f"loop:{lp.id}"))
        if lp.held_by:
            reasons.append(Reason(Level.PAUSED, "loop_held", f"loop {lp.id} paused here by `{lp.held_by}`: it "
                                  f"starts no runs", f"`loopctl resume loop:{lp.id}` resumes it", f"loop:{lp.id}"))
        if lp.state == "finalized":
            reasons.append(Reason(Level.DEGRADED, "loop_finalized", f"loop {lp.id} finalized: {lp.reason}",
                                  "the control plane ended it: remove it from the config, or re-create it there",
                                  f"loop:{lp.id}"))
        if lp.state == "escalated":
            reasons.append(Reason(Level.DEGRADED, "loop_escalated", f"loop {lp.id} escalated: {lp.reason}",
                                  f"look at its runs, then `loopctl retry loop:{lp.id}`", f"loop:{lp.id}"))
    for run in runs:
        if run.status == "running" and run.error_code == "process_detached":
            reasons.append(Reason(Level.DEGRADED, "run_detached",
                                  f"run {run.id} (loop {run.loop_id}) runs without a handle, pid {run.pid}",
                                  f"it is watched and settles when it exits; `loopctl cancel run:{run.id}` ends it",
                                  f"run:{run.id}"))
    return reasons


def control_plane_reasons(cp: ControlPlaneView | None) -> list[Reason]:
    if cp is None:
        return []
    reasons = []
    subject = f"host:{cp.host_id}"
    if cp.status == "failed":
        reasons.append(Reason(Level.DEGRADED, "control_plane_rejected", f"control plane {cp.url}: {cp.last_error}",
                              "join again: `loopctl join URL --token-file FILE`", subject))
    elif cp.last_error and not cp.bad_answer:
        reasons.append(Reason(Level.DEGRADED, "control_plane_unreachable", f"control plane {cp.url}: {cp.last_error}",
                              "check the network and the control plane; loops keep running meanwhile", subject))
    if cp.bad_answer:  # it answers, but not as the protocol says: a proxy, a captive portal, a broken server
        reasons.append(Reason(Level.DEGRADED, "control_plane_bad_answer",
                              f"control plane {cp.url} answered wrongly: {cp.bad_answer}",
                              "check what answers at that URL (a proxy or portal?) and the control plane's "
                              "version; calls retry on their schedule, loops keep running", subject))
    return reasons


def descriptor_reasons(held: int, limit: int) -> list[Reason]:
    """The engine near or at its descriptor limit: every open may fail, whatever it was for."""
    from console.core.descriptors import under_pressure  # noqa: PLC0415  (resource, only when asked)

    if not under_pressure(held, limit):
        return []
    return [Reason(Level.DEGRADED, "descriptors_exhausted",
                   f"the engine holds {held} of its {limit} file descriptors: opens fail (sockets, logs, /proc)",
                   "find what holds them (`ls -l /proc/PID/fd`), or raise LimitNOFILE= in the service; "
                   "the socket refuses clients past its cap meanwhile")]


def task_reasons(troubles: Iterable[TaskTrouble]) -> list[Reason]:
    """The engine's own tasks that crashed: restarting with backoff, or latched until a restart."""
    reasons = []
    for t in troubles:
        if t.latched:
            reasons.append(Reason(Level.DEGRADED, "task_latched",
                                  f"engine task {t.name} crashed {t.crashes} times and is stopped ({t.error})",
                                  "a bug in loopctl: report it with the journal; restart the engine to retry",
                                  t.subject))
        else:
            reasons.append(Reason(Level.DEGRADED, "task_crashed",
                                  f"engine task {t.name} crashed ({t.error}); restarting it",
                                  "a bug in loopctl: report it with the journal; it restarts by itself",
                                  t.subject))
    return reasons


# Poll outcomes that are not failures of the host: nothing new, no remote config, asked to wait.
QUIET_POLLS = ("ok", "not_modified", "no_remote_config", "rate_limited")


def remote_config_reasons(rc: RemoteConfigView | None) -> list[Reason]:
    if rc is None:
        return []
    subject = "remote_config:host"
    keeps = f"this host keeps running {rc.running_etag}" if rc.running_etag else "this host keeps its local config"
    reasons = []
    if rc.state in ("rolled_back", "unproven") and rc.last_rollback is not None:
        rb = rc.last_rollback
        what = "rolled back" if rb.outcome == "rolled_back" else "not rolled back (no target)"
        reasons.append(Reason(Level.DEGRADED, "remote_config_rolled_back",
                              f"remote config {rb.etag} {what} ({rb.reason}): {rb.detail}",
                              f"fix the document on the control plane; {keeps}", subject))
    elif rc.state == "rejected" and rc.last_apply is not None:
        ap = rc.last_apply
        reasons.append(Reason(Level.DEGRADED, "remote_config_rejected",
                              f"remote config {ap.etag} rejected ({ap.result}): {ap.detail}",
                              f"fix the document on the control plane; {keeps}", subject))
    poll = rc.last_poll
    said = rc.state == "rejected" and rc.last_apply is not None and poll is not None \
        and poll.result == rc.last_apply.result
    if poll is not None and poll.result not in QUIET_POLLS and not said:
        reasons.append(Reason(Level.DEGRADED, "remote_config_poll_failed",
                              f"config poll failed ({poll.result}): {poll.detail}",
                              f"check the control plane; {keeps} and polls again", subject))
    if rc.probation_deadline is not None:
        reasons.append(Reason(Level.OK, "remote_config_probation",
                              f"remote config {rc.probation_etag} on probation: rolled back unless a poll succeeds",
                              "nothing to do: the next successful poll clears it", subject))
    return reasons


def plugin_reasons(plugins: Iterable[PluginView]) -> list[Reason]:
    return [Reason(Level.DEGRADED, "plugin_failed", f"plugin {p.name} {p.version}: {p.reason}",
                   "fix the artifact or its pin in the config; the next apply or reconcile retries it",
                   f"plugin:{p.name}") for p in plugins if p.state == "failed"]
