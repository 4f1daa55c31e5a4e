"""`loopctl --once` reports: plain text for people, JSON for programs. No rich, no Textual."""

from __future__ import annotations

import msgspec
import msgspec.json

from console.core.records import full_builtins
from console.core.time_text import clock_time
from console.readmodel.snapshot import Snapshot
from console.readmodel.tray import Level

FORMATS = ("text", "json", "nagios", "openmetrics")


def exit_code(snap: Snapshot) -> int:
    return snap.tray.state.exit_code


def render_text(snap: Snapshot) -> str:
    tray = snap.tray
    top = next((r for r in tray.reasons if r.level is not Level.OK), None)
    headline = f"LOOPCTL {tray.state.monitoring_word} - {tray.state.value}"
    if top is not None:
        headline += f": {top.text}"
    lines = [headline]
    eng = snap.engine
    if eng.running:
        mode = ", read-only" if eng.read_only else ""
        lines.append(f"engine: running, pid {eng.pid}, since {clock_time(eng.started_at)}, loopctl {eng.version}{mode}")
    else:
        lines.append("engine: not running (state read from disk)")
    host = snap.host
    config = host.config_path if host.config_present else f"{host.config_path} (not present: embedded default)"
    lines.append(f"host: {host.name}  state: {host.state_dir}  config: {config}")
    if tray.reasons:
        lines.append("reasons:")
        for r in tray.reasons:
            subject = f" [{r.subject}]" if r.subject else ""
            lines.append(f"  {r.level.value:<8} {r.code}{subject}: {r.text}")
            lines.append(f"  {'':<8} -> {r.action}")
    if snap.sidecars:
        lines.append("sidecars:")
        for sc in snap.sidecars:
            where = f"port {sc.port}" if sc.port else "no port"
            pid = f"pid {sc.pid}" if sc.pid else "no process"
            restarts = f", restarts {sc.restarts}/{sc.max_restarts}" if sc.attempts else ""
            lines.append(f"  {sc.name:<16} {sc.state:<9} {pid}, {where}{restarts}"
                         + (f": {sc.reason_text}" if sc.state in ("failed", "backoff") else ""))
    if snap.loops:
        lines.append("loops:")
        for lp in snap.loops:
            now = f", running {lp.current_run}" if lp.current_run else ""
            why = f": {lp.reason}" if lp.state != "active" and lp.reason else ""
            held = f", paused here by `{lp.held_by}`" if lp.held_by else ""
            # The state is padded only when nothing follows on its line: `active   , running` read as a gap.
            lines.append(f"  {lp.id:<16} {lp.state}{now}{held}{why}")
    if snap.runs:
        lines.append("recent runs:")
        for run in snap.runs[:5]:
            stop = run.stop_reason or "-"
            if run.stop_reason == "timeout" and run.effective_timeout_sec:
                stop = f"timeout ({run.effective_timeout_sec:g} s)"
            cont = f", continuation {run.continuation_attempt}/2" if run.continuation_attempt else ""
            lines.append(f"  {run.id}  {run.loop_id:<12} {run.status:<9} stop: {stop}, "
                         f"liveness: {run.liveness or '-'}{cont}")
    if snap.remote_config is not None:
        from console.readmodel.remote_lines import remote_lines  # noqa: PLC0415  (joined hosts only)

        lines.append("remote config:")
        for label, value in remote_lines(snap.remote_config, snap.plugins, snap.generated_at):
            lines.append(f"  {label:<14} {value}")
    elif snap.plugins:
        lines.append("plugins: " + ", ".join(f"{p.name} {p.version} ({p.state})" for p in snap.plugins))
    if snap.events:
        lines.append("recent events:")
        for e in snap.events[:5]:
            lines.append(f"  {clock_time(e.at)}  {e.kind}:{e.name} {e.previous or '(new)'} -> {e.new}: {e.reason}")
    return "".join(line.rstrip() + "\n" for line in lines)  # padded columns leave no trailing blanks


def render_json(snap: Snapshot) -> str:
    # msgspec encodes the records as they are (no copy as dicts), keys sorted as json.dumps sorted them
    payload = {"status": snap.tray.state.monitoring_word, "exit_code": exit_code(snap),
               "snapshot": full_builtins(snap)}  # every key, defaults too: one shape for jq whatever the values
    return msgspec.json.format(msgspec.json.encode(payload, order="sorted"), indent=2).decode() + "\n"


def render(snap: Snapshot, fmt: str) -> str:
    # nagios and openmetrics load only when asked for: `--once` stays lean (prometheus_client is not small).
    if fmt == "nagios":
        from console.readmodel.nagios import render_nagios  # noqa: PLC0415

        return render_nagios(snap)
    if fmt == "openmetrics":
        from console.readmodel.metrics import render_openmetrics  # noqa: PLC0415

        return render_openmetrics(snap)
    return render_json(snap) if fmt == "json" else render_text(snap)
