"""The detail renderables as plain text."""

from __future__ import annotations

import dataclasses
import io

from rich.console import Console

from console.tui.detail import loop_detail
from console.tui.scenario import NOW, scenario_snapshot


def provenance(loop_id: str, provenance: str, joined: bool = True) -> str:
    snap = scenario_snapshot()
    if not joined:
        snap = dataclasses.replace(snap, control_plane=None)
    lp = dataclasses.replace(next(lp for lp in snap.loops if lp.id == loop_id), provenance=provenance)
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(loop_detail(lp, snap, NOW))
    [line] = [line for line in console.export_text().splitlines() if line.startswith("provenance")]
    return line.removeprefix("provenance").strip()


def test_provenance_says_whose_token_and_never_calls_a_joined_host_local():
    assert provenance("docs", "user").startswith("user: its own runner token")
    assert provenance("docs", "managed").startswith("managed: created on the control plane by this engine")
    assert provenance("docs", "local", joined=False).startswith("local: runs on this host, no control plane")
    assert provenance("docs", "local").startswith("managed, not created on the control plane yet")
