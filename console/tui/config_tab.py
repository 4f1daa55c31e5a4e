"""The Config tab: the remote config (slots, probation, rollback, polls) and the local config. Pure."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.text import Text

from console.core.plurals import counted
from console.readmodel.remote_lines import remote_lines
from console.readmodel.snapshot import Snapshot
from console.tui.detail import fields


def config_body(snap: Snapshot, now: float) -> Group:
    host = snap.host
    source = host.config_path if host.config_present else f"{host.config_path} (absent: embedded default)"
    cp = snap.control_plane
    parts: list[RenderableType] = [Text("Remote config", style="bold")]
    if cp is None:
        parts.append(Text("not joined to a control plane (`loopctl join URL --token-file FILE`): this host runs "
                          "its local config."))
    else:
        parts.append(Text(f"joined to {cp.url} as host {cp.host_id} ({cp.status})"))
    rc = snap.remote_config
    remote: list[tuple[str, object]] = []
    if rc is not None:
        on_probation = rc.probation_deadline is not None
        remote = [(label, Text(value, style="bold" if label == "probation" and on_probation else ""))
                  for label, value in remote_lines(rc, snap.plugins, now)]
    from_remote = " (sidecars, loops and plugins from the remote config)" if rc and rc.running_etag else ""
    local: list[tuple[str, object]] = [
        ("file", source),
        ("declares", f"{counted(len(snap.sidecars), 'sidecar')}, {counted(len(snap.loops), 'loop')}, "
                     f"{counted(len(snap.plugins), 'plugin')}{from_remote}"),
        ("state dir", host.state_dir),
        ("host", host.name),
    ]
    width = max(len(label) for label, _ in remote + local)  # both sections' values in one column
    if remote:
        parts.append(fields(remote, label_style="dim", label_width=width))
    parts += [Text(""), Text("Local config", style="bold"), fields(local, label_style="dim", label_width=width)]
    return Group(*parts)
