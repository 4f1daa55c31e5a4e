"""What the control-plane link shows the read model."""

from __future__ import annotations

from console.core.records import View


class ControlPlaneView(View, frozen=True):
    url: str
    host_id: str
    status: str  # as the control plane sees the host: provisioning, online, offline, degraded, failed
    last_heartbeat_at: float | None = None
    last_error: str = ""
    bad_answer: str = ""  # per call, what was wrong with its last answer ("token: HTTP 200: not JSON ...")
