"""The remote-config section as lines of text, for `--once` and the console's Config tab. Pure."""

from __future__ import annotations

from console.core.time_text import clock_time, duration
from console.readmodel.snapshot import PluginView, RemoteConfigView


def remote_lines(rc: RemoteConfigView, plugins: list[PluginView], now: float) -> list[tuple[str, str]]:
    """(label, value) pairs. `now` gives the probation's time left (the console ticks it)."""
    rows = [("state", f"{rc.state}" + (f": {rc.reason}" if rc.reason else ""))]
    running = f"{rc.running_etag} (slot {rc.slot})" if rc.running_etag else "none: the local file's sections apply"
    rows.append(("running", running))
    if rc.probation_deadline is not None:
        left = duration(rc.probation_deadline - now)
        rows.append(("probation", f"{rc.probation_etag} until {clock_time(rc.probation_deadline)} ({left} left)"))
    else:
        rows.append(("probation", "none"))
    rb = rc.last_rollback
    rows.append(("last rollback", f"{rb.etag} -> {rb.to_etag or 'nothing'} at {clock_time(rb.at)}: {rb.reason} "
                                  f"({rb.outcome}); {rb.detail}" if rb else "none"))
    rows.append(("bad etag", f"{rc.bad_etag} (not re-applied before {clock_time(rc.bad_until)})"
                 if rc.bad_etag else "none"))
    poll = rc.last_poll
    if poll is not None:
        status = f"HTTP {poll.status}" if poll.status is not None else "no answer"
        said = f": {poll.detail}" if poll.detail else ""
        rows.append(("last poll", f"{clock_time(poll.at)} {poll.result} ({status}){said}"))
    else:
        rows.append(("last poll", "not yet"))
    ap = rc.last_apply
    rows.append(("last apply", f"{ap.etag} {ap.result} at {clock_time(ap.at)}{': ' + ap.detail if ap.detail else ''}"
                 if ap else "none"))
    rows.append(("next poll", f"{clock_time(rc.next_poll_at)} (every {rc.poll_interval_seconds:g} s)"
                 if rc.next_poll_at else f"every {rc.poll_interval_seconds:g} s"))
    if rc.last_boot is not None:
        boot = rc.last_boot
        rows.append(("last boot", f"{boot.outcome}{': ' + boot.detail if boot.detail else ''}"))
    rows.append(("host status", rc.host_status or "-"))
    rows.append(("plugins", ", ".join(f"{p.name} {p.version} ({p.state})" for p in plugins) or "none"))
    return rows
