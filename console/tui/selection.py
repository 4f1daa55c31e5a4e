"""Which actions apply to the selected row, and why not. Pure, mirrors the engine's refusals so
the footer can dim what would be refused (the engine still has the last word)."""

from __future__ import annotations

from console.readmodel.snapshot import Snapshot

VERBS = ("reclaim", "retry", "cancel", "restart", "stop", "start", "trigger", "pause", "resume")
DESTRUCTIVE = ("reclaim", "cancel", "restart", "stop", "pause")  # confirmed in a modal first


def applicable(snap: Snapshot | None, key: str | None, *, read_only: bool) -> dict[str, str | None]:
    """verb -> None when it applies to `key`, else the one-line reason it does not."""
    if read_only:
        return dict.fromkeys(VERBS, "read-only console: actions are disabled (--read-only)")
    if snap is None or not key or ":" not in key:
        return dict.fromkeys(VERBS, "select a sidecar, loop or run first")
    if not snap.engine.running:
        return dict.fromkeys(VERBS, "no engine owns this host: nothing can act")
    kind, name = key.split(":", 1)
    out: dict[str, str | None] = dict.fromkeys(VERBS, f"does not apply to a {kind}")
    if kind == "sidecar":
        sc = next((s for s in snap.sidecars if s.name == name), None)
        if sc is None:
            return dict.fromkeys(VERBS, f"sidecar {name} is not in this snapshot")
        idle = sc.state in ("failed", "backoff", "stopped")
        out["retry"] = None if idle else f"sidecar {name} is {sc.state}, not failed"
        out["reclaim"] = None if idle else f"sidecar {name} is running under this engine"
        if sc.holder is not None and not sc.holder.ours and sc.state in ("failed", "backoff"):
            out["reclaim"] = (f"port {sc.port} is held by a foreign process (pid {sc.holder.pid or '?'}), which "
                              f"reclaim never ends: free the port, then t retries")
        out["cancel"] = "cancel applies to runs; sidecars are retried or reclaimed"
        out["stop"] = None
        out["start"] = f"sidecar {name} is {sc.state}, not stopped by an operator"
        out["restart"] = None if sc.state in ("starting", "ready") else \
            f"sidecar {name} is {sc.state}: " + ("t retries it" if sc.state in ("failed", "backoff") else "u starts it")
        if sc.held_by:
            held = f"sidecar {name} was stopped by `{sc.held_by}`: u starts it"
            out.update(retry=held, reclaim=held, restart=held, stop=f"sidecar {name} is already stopped", start=None)
    elif kind == "loop":
        lp = next((x for x in snap.loops if x.id == name), None)
        state = lp.state if lp else "unknown"
        out["retry"] = None if state == "escalated" else f"loop {name} is {state}, not escalated"
        if lp is not None:
            out["pause"] = f"loop {name} is already paused here: P resumes it" if lp.held_by else None
            out["resume"] = None if lp.held_by else f"loop {name} is not paused here" + (
                ": the control plane paused it, resume it there" if state == "paused" else "")
            out["trigger"] = (f"loop {name} is paused here: P resumes it" if lp.held_by
                              else f"loop {name} is disabled in the config" if not lp.enabled
                              else f"loop {name} is {state}: it starts no runs" if state in
                              ("escalated", "paused", "finalized", "disabled")
                              else f"loop {name} is running run {lp.current_run}: one at a time" if lp.current_run
                              else None)
    elif kind == "run":
        run = next((r for r in snap.runs if r.id == name), None)
        if run is None:
            return dict.fromkeys(VERBS, f"run {name} is not in this snapshot")
        unfinished = run.status in ("queued", "running")
        out["cancel"] = None if unfinished else f"run {name} already finished ({run.status})"
        out["retry"] = None if not unfinished else f"run {name} is {run.status}: cancel it first"
    return out


LOG_KINDS = ("sidecar", "run")


def logs_refusal(snap: Snapshot | None, key: str | None) -> str | None:
    """None when `key` has a log to show (`l`), else why not. Reading is no action: --read-only allows it."""
    kind = key.split(":", 1)[0] if key and ":" in key else ""
    if snap is None or kind not in LOG_KINDS:
        return "select a sidecar or a run: they have logs"
    if not snap.engine.running:
        return "no engine owns this host: logs are read through the engine that does"
    return None
