"""Overview: the ranked reasons, each with the action that clears it, and the next step on an
empty host."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.text import Text
from textual.widgets import Static

from console.engine.snapshot import SidecarView, Snapshot
from console.tui.widgets.tray_bar import GLYPHS, STYLES


def overview_renderable(snap: Snapshot) -> RenderableType:
    parts: list[RenderableType] = []
    eng = snap.engine
    if eng.running:
        parts.append(Text(f"engine pid {eng.pid} · loopctl {eng.version}"
                          + (" · read-only" if eng.read_only else ""), style="dim"))
    else:
        parts.append(Text("engine not running: showing the last recorded state", style="bold red"))
    parts.append(Text(f"state {snap.host.state_dir}", style="dim"))
    parts.append(Text(""))
    empty_host = snap.host.configured_count == 0
    # On an empty host the guidance below replaces the "nothing configured" note.
    reasons = [r for r in snap.tray.reasons if not (empty_host and r.code == "nothing_configured")]
    if not reasons and not empty_host:
        parts.append(Text("All clear.", style="green"))
    for reason in reasons:
        line = Text()
        line.append(f"{GLYPHS[reason.level]} {reason.level.value:<8} ", style=STYLES[reason.level])
        line.append(reason.text)
        parts.append(line)
        parts.append(Padding(Text(f"→ {reason.action}", style="italic"), (0, 0, 0, 4)))
    if snap.sidecars:
        parts.append(Text(""))
        parts.append(Text("Sidecars", style="bold"))
        for sc in snap.sidecars:
            parts.append(Padding(sidecar_line(sc), (0, 0, 0, 2)))
    if snap.loops:
        parts.append(Text(""))
        parts.append(Text("Loops", style="bold"))
        last = {r.loop_id: r for r in reversed(snap.runs)}
        for lp in snap.loops:
            line = Text(f"{lp.id:<16} ")
            line.append(f"{lp.state:<9}", style={"active": "green", "escalated": "bold yellow"}.get(lp.state, "dim"))
            run = last.get(lp.id)
            if lp.current_run:
                line.append(f" running {lp.current_run[-8:]}")
            elif run is not None:
                line.append(f" last: {run.status}, {run.liveness or '-'}")
            parts.append(Padding(line, (0, 0, 0, 2)))
    if empty_host:
        if reasons:
            parts.append(Text(""))
        where = snap.host.config_path if snap.host.config_present else "(no config file: embedded default)"
        parts.append(Text(f"Nothing configured yet {where}. What to do next:", style="bold"))
        steps: list[RenderableType] = [
            Text("1. describe this host in its config (README: 'Host config'):"),
            Padding(Text(snap.host.config_path, style="bold"), (0, 0, 0, 3)),
            Text("2. keep an engine running for this host: `loopctl run` (or this console)"),
            Text("3. check it from anywhere on the host: `loopctl --once`"),
        ]
        parts.extend(Padding(step, (0, 0, 0, 2)) for step in steps)
    return Group(*parts)


SIDECAR_STYLES = {"ready": "green", "starting": "cyan", "backoff": "yellow", "failed": "bold red",
                  "stopping": "dim", "stopped": "dim"}


def sidecar_line(sc: SidecarView) -> Text:
    line = Text()
    line.append(f"{sc.name:<16} ")
    line.append(f"{sc.state:<9}", style=SIDECAR_STYLES.get(sc.state, ""))
    line.append(f" {'pid ' + str(sc.pid) if sc.pid else '-':<10}")
    line.append(f" {':' + str(sc.port) if sc.port else '':<6}")
    if sc.attempts:
        line.append(f" restarts {sc.attempts}/{sc.max_restarts}", style="yellow")
    return line


class OverviewPane(Static):
    DEFAULT_CSS = """
    OverviewPane { padding: 1 2; height: auto; }
    """

    def show(self, snap: Snapshot) -> None:
        self.update(overview_renderable(snap))
