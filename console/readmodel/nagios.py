"""`loopctl --once --format nagios`: the Monitoring Plugins output format.

    LOOPCTL WARNING - degraded: agent-monitor: port 4820 is held by nginx pid 733 (foreign) | 'engine_up'=1;;0;0;1 ...
    degraded port_conflict [sidecar:agent-monitor]: ... -> free port 4820 ...

One status line with performance data after `|` ('label'=value;warn;crit;min;max), then the ranked
reasons as long output. The exit code is the status (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN).
"""

from __future__ import annotations

from collections import Counter

from console.core.errors import MONITORING_WORDS
from console.core.plurals import counted
from console.readmodel.snapshot import Snapshot
from console.readmodel.tray import Level


def _perf(label: str, value: int, *, unit: str = "", warn: str = "", crit: str = "", minimum: int = 0,
          maximum: int | None = None) -> str:
    top = "" if maximum is None else str(maximum)
    return f"'{label}'={value}{unit};{warn};{crit};{minimum};{top}"


def perfdata(snap: Snapshot) -> list[str]:
    sidecars = Counter(s.state for s in snap.sidecars)
    loops = Counter(lp.state for lp in snap.loops)
    runs = Counter(r.status for r in snap.runs)
    plugins = Counter(p.state for p in snap.plugins)
    rc = snap.remote_config
    n_sc, n_lp = len(snap.sidecars), len(snap.loops)
    # Thresholds in the plugin range syntax: "0" alerts above 0; "1:" alerts below 1.
    return [
        _perf("engine_up", int(snap.engine.running), crit="1:", maximum=1),
        _perf("sidecars", n_sc),
        _perf("sidecars_ready", sidecars["ready"], warn=f"{n_sc}:" if n_sc else "", maximum=n_sc),
        _perf("sidecars_failed", sidecars["failed"], warn="0", maximum=n_sc),
        _perf("sidecars_backoff", sidecars["backoff"], warn="0", maximum=n_sc),
        _perf("loops", n_lp),
        _perf("loops_escalated", loops["escalated"], warn="0", maximum=n_lp),
        _perf("runs_running", runs["running"]),
        _perf("recent_runs_failed", runs["failed"] + runs["timed_out"], maximum=len(snap.runs)),
        _perf("reasons", sum(1 for r in snap.tray.reasons if r.level is not Level.OK)),
        # Probation is normal after an apply (it ends with the next good poll): graphed, not alerted on.
        _perf("remote_config_probation", int(rc.probation_seconds_left or 0) if rc else 0, unit="s"),
        _perf("plugins_failed", plugins["failed"], warn="0", maximum=len(snap.plugins)),
    ]


def render_nagios(snap: Snapshot) -> str:
    tray = snap.tray
    top = next((r for r in tray.reasons if r.level is not Level.OK), None)
    summary = f"{tray.state.value}: {top.text}" if top else f"{tray.state.value}: {_ok_summary(snap)}"
    status = f"LOOPCTL {tray.state.monitoring_word} - {_clean(summary)} | {' '.join(perfdata(snap))}"
    long = [f"{r.level.value} {r.code}{f' [{r.subject}]' if r.subject else ''}: {_clean(r.text)} -> {_clean(r.action)}"
            for r in tray.reasons]
    return "\n".join([status, *long]) + "\n"


def unevaluated(exit_code: int, message: str) -> str:
    """The status line when loopctl could not evaluate at all: the format has no empty answer (Nagios
    would show "(No output on stdout)")."""
    return f"LOOPCTL {MONITORING_WORDS.get(exit_code, 'UNKNOWN')} - {_clean(message)}\n"


def _ok_summary(snap: Snapshot) -> str:
    if not snap.engine.running:
        return "engine not running"
    return f"{counted(len(snap.sidecars), 'sidecar')}, {counted(len(snap.loops), 'loop')}, engine pid {snap.engine.pid}"


def _clean(text: str) -> str:
    """`|` starts performance data in this format: it may not appear in text."""
    return " ".join(text.replace("|", "/").split())
