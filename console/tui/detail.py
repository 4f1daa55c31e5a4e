"""The detail pane for the selected row: everything an operator asks next. Pure renderables."""

from __future__ import annotations

from pathlib import Path

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from console.core.printable import printable
from console.core.time_text import clock_time, duration
from console.readmodel.snapshot import EventView, LoopView, RunView, SidecarView, Snapshot
from console.tui.format import ago, continuation_text, countdown, liveness_badge, short_id, stop_text
from console.tui.rows import SELECT_HINT, reason_for, state

CONTINUATION_PREVIEW = 2000


def fields(pairs: list[tuple[str, object]], label_style: str = "bold", label_width: int | None = None) -> Table:
    """Labels in a column of their own, so a long value wraps under its value, not under the labels."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style=label_style, no_wrap=True, min_width=label_width)
    grid.add_column()
    for label, value in pairs:  # host text as pictures before Rich measures it (see keyed_table._shown)
        grid.add_row(label, value if isinstance(value, Text) else Text(printable(str(value))))
    return grid


def sidecar_detail(s: SidecarView, now: float) -> RenderableType:
    pairs: list[tuple[str, object]] = [
        ("sidecar", Text.assemble(s.name, "  ", state(s.state))),
        ("reason", s.reason_text or "-"),
        ("pid", f"{s.pid or '-'}" + (f", started {ago(s.started_at, now)}" if s.started_at else "")),
        ("command", " ".join(s.command) or "-"),
        ("port / health", f"{s.port or '-'} / {s.health or '-'}"),
        ("restarts", f"{s.restarts} of {s.max_restarts}"
         + (f", next {countdown(s.next_retry_at, now)}" if s.state == "backoff" else "")),
    ]
    if s.held_by:
        pairs.insert(1, ("held", f"stopped by `{s.held_by}` {ago(s.held_at, now) if s.held_at else ''}".rstrip()
                         + f"; u (or `loopctl start sidecar:{s.name}`) starts it"))
    if s.holder is not None:
        whose = "ours: left by an earlier engine, reclaimable" if s.holder.ours else \
            "foreign: never signalled, so not reclaimable; free the port, then retry"
        pairs.append(("port holder", f"{s.holder.program} pid {s.holder.pid or '?'} ({whose})"))
    if s.last_exit:
        pairs.append(("last exit", s.last_exit))
    if s.last_reclaim:
        pairs.append(("last reclaim", s.last_reclaim))
    if s.action:
        pairs.append(("clears it", Text(s.action, style="italic")))
    parts: list[RenderableType] = [fields(pairs)]
    if s.output_tail:
        parts += [Text("output", style="bold"), Text("\n".join(s.output_tail[-8:]), style="dim")]
    return Group(*parts)


def _provenance(lp: LoopView, snap: Snapshot) -> str:
    if lp.provenance == "user":
        return "user: its own runner token (token_file), its heartbeats to the control plane"
    if lp.provenance != "local":
        return f"{lp.provenance}: created on the control plane by this engine, which holds its runner token"
    if snap.control_plane is None:
        return "local: runs on this host, no control plane joined (no token, no heartbeats)"
    return "managed, not created on the control plane yet: no runner token, no heartbeats until it is"


def loop_detail(lp: LoopView, snap: Snapshot, now: float) -> RenderableType:
    runs = [r for r in snap.runs if r.loop_id == lp.id]
    pairs: list[tuple[str, object]] = [
        ("loop", Text.assemble(lp.id, "  ", state(lp.state))),
        ("reason", lp.reason or "-"),
        *([("paused here", f"by `{lp.held_by}` {ago(lp.held_at, now) if lp.held_at else ''}".rstrip()
            + f": it starts no runs (its control-plane state stays {lp.state}); P resumes it")] if lp.held_by else []),
        ("objective", lp.objective or "-"),
        ("provenance", _provenance(lp, snap)),
        ("runner token", f"expires {countdown(lp.token_expires_at, now)}" if lp.token_expires_at else "-"),
        *([("last revival", f"by proof of possession {ago(lp.revived_at, now)}: token jti {lp.revived_jti or '?'}"
            + (f", expires {countdown(lp.revived_expires_at, now)}" if lp.revived_expires_at else ""))]
          if lp.revived_at else []),
        ("last heartbeat", f"{lp.last_heartbeat} {ago(lp.last_heartbeat_at, now)}"
         + (f": {lp.last_heartbeat_reason}" if lp.last_heartbeat_reason else "") if lp.last_heartbeat else "-"),
        ("schedule", f"every {duration(lp.interval_seconds)}"
         + (f", run timeout {lp.run_timeout_seconds:g} s" if lp.run_timeout_seconds else ", no run timeout")),
        ("current run", lp.current_run or "-"),
        ("next run", countdown(lp.next_run_at, now) if lp.next_run_at else "-"),
        ("last run", f"{short_id(lp.last_run_id)} {lp.last_stop_reason or '-'}/{lp.last_liveness or '-'}"
         + (f", ended {ago(lp.last_finished_at, now)}" if lp.last_finished_at else "") if lp.last_run_id else "-"),
        ("recent runs", ", ".join(f"{short_id(r.id)} {r.status}/{r.liveness or '-'}" for r in runs[:5]) or "-"),
    ]
    return fields(pairs)


def run_detail(r: RunView, state_dir: Path, now: float) -> RenderableType:
    how = f"exit code {r.exit_code}" if r.exit_code is not None else (
        f"signal {r.exit_signal}" if r.exit_signal is not None else "")
    why = f"{r.error_code}: {r.error_text}" if r.error_code else r.error_text
    ended = "; ".join(part for part in (how, why) if part) or "-"  # a lost process has no exit, only a why
    timeout = "none configured"
    if r.timeout_configured and r.status == "running" and r.started_at is not None and r.effective_timeout_sec:
        # counted from the start, as the engine counts it; the detail ticks each second while it runs
        timeout = f"{r.effective_timeout_sec:g} s, fires {countdown(r.started_at + r.effective_timeout_sec, now)}"
    elif r.timeout_configured:
        timeout = f"{r.effective_timeout_sec:g} s, " + ("fired" if r.timeout_fired else "not fired")
    lineage = []
    if r.retry_of_run_id:
        lineage.append(f"retry of {r.retry_of_run_id}")
    if r.process_loss_retry_count:
        lineage.append(f"process-loss retries {r.process_loss_retry_count}/1")
    pairs: list[tuple[str, object]] = [
        # The styled state goes last: Textual 8 drops the space that follows a styled span here.
        ("run", Text.assemble(f"{r.id} · loop {r.loop_id}  ", state(r.status))),
        ("window", f"started {clock_time(r.started_at)}, finished {clock_time(r.finished_at)}, pid {r.pid or '-'}"),
        ("ended", ended),
        ("stop reason", stop_text(r)),
        ("timeout", timeout),
        ("liveness", Text.assemble(liveness_badge(r.liveness), "  ", r.liveness_reason or "")),
        ("next action", r.next_action or "-"),
        ("summary", r.summary or "-"),
        ("continuation", continuation_text(r)),
        ("lineage", ", ".join(lineage) or "-"),
        ("last useful", ago(r.last_useful_action_at, now)),
    ]
    parts: list[RenderableType] = [fields(pairs)]
    continuation = state_dir / "runs" / r.id / "continuation.md"
    try:
        text = continuation.read_text(encoding="utf-8")[:CONTINUATION_PREVIEW]
    except OSError:
        text = ""
    if text:
        from rich.markdown import Markdown  # noqa: PLC0415  (markdown-it costs ~40 ms at start-up; rarely needed)

        # An agent wrote it: a link shows where it points, not only the words the agent chose for it.
        parts += [Text("continuation handoff given to this run", style="bold"), Markdown(text, hyperlinks=False)]
    return Group(*parts)


def detail_for(snap: Snapshot | None, key: str | None, now: float, empty: str = SELECT_HINT,
               event: EventView | None = None) -> RenderableType:
    """`empty`: what to say when no row is selected (see rows.placeholder); `event`: the record of
    an event row read from the log."""
    if snap is None:
        return Text("waiting for the first snapshot…", style="dim")
    if not key:
        return Text(empty, style="dim")
    if "#" in key:  # an Overview row: the reason, then what it is about
        reason = reason_for(snap, key)
        if reason is None:
            return Text(f"{key.split('#')[1]} is no longer reported", style="dim")
        head = fields([("reason", reason.code), ("what", reason.text), ("clears it", reason.action)])
        if reason.subject.partition(":")[0] not in ("sidecar", "loop", "run"):
            return head
        return Group(head, Text(""), detail_for(snap, reason.subject, now, empty))
    kind, _, name = key.partition(":")
    if kind == "sidecar":
        sc = next((s for s in snap.sidecars if s.name == name), None)
        if sc:
            return sidecar_detail(sc, now)
    if kind == "loop":
        lp = next((x for x in snap.loops if x.id == name), None)
        if lp:
            return loop_detail(lp, snap, now)
    if kind == "run":
        run = next((r for r in snap.runs if r.id == name), None)
        if run:
            return run_detail(run, Path(snap.host.state_dir), now)
    if kind == "event":
        ev = event if event is not None and str(event.id) == name else \
            next((e for e in snap.events if str(e.id) == name), None)
        if ev:
            return fields([("event", ev.id), ("when", f"{clock_time(ev.at)} ({ago(ev.at, now)})"),
                           ("thing", f"{ev.kind}:{ev.name}"),
                           ("transition", f"{ev.previous or '(new)'} → {ev.new}"), ("reason", ev.reason)])
    return Text(f"{key} is no longer in the snapshot", style="dim")


HISTORY = 5  # a thing's own last transitions shown under its detail


def history(events: list[EventView], now: float) -> RenderableType:
    """A thing's own last transitions, newest first, from the whole event log (not the snapshot's
    recent 50, which a busy host moves past in minutes)."""
    if not events:
        return Text("no transitions recorded", style="dim")
    return fields([(ago(e.at, now), f"{e.previous or '(new)'} → {e.new}: {e.reason}") for e in events],
                  label_style="dim")


def ticks(snap: Snapshot | None, key: str | None) -> bool:
    """Does the detail for `key` show something that changes with time alone (a countdown, an age)?"""
    if snap is None or not key:
        return False
    kind, _, name = key.partition(":")
    if kind == "sidecar":
        return any(s.name == name and (s.state == "backoff" or s.started_at is not None) for s in snap.sidecars)
    if kind == "loop":
        return any(lp.id == name and lp.next_run_at is not None for lp in snap.loops)
    if kind == "run":
        return any(r.id == name and r.status in ("queued", "running") for r in snap.runs)
    return False
