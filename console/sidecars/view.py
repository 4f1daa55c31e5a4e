"""What the sidecars concept shows the read model: one view per sidecar."""

from __future__ import annotations

from console.core.records import CompactView, field


class PortHolderView(CompactView, frozen=True):
    pid: int | None
    program: str
    ours: bool  # launched by an earlier loopctl engine (reclaimable), else foreign


class SidecarView(CompactView, frozen=True):
    """One sidecar as the operator sees it. Everything but the output tail is also stored with each
    transition, so a snapshot read from disk shows the last known picture."""

    name: str
    state: str = "stopped"
    reason: str = ""  # failure reason code when failed or in backoff
    reason_text: str = ""
    attempts: int = 0  # failed starts since the sidecar was last stable (see `restarts`)
    max_restarts: int = 5
    next_retry_at: float | None = None
    pid: int | None = None
    started_at: float | None = None
    ready_at: float | None = None
    port: int = 0
    health: str = ""
    command: list[str] = field(default_factory=list)
    holder: PortHolderView | None = None
    last_exit: str = ""
    action: str = ""  # what clears the failure
    last_reclaim: str = ""
    output_tail: list[str] = field(default_factory=list)
    held_by: str = ""  # an operator's stop that holds it stopped (the command), until it is started
    held_at: float | None = None

    @property
    def key(self) -> str:
        return f"sidecar:{self.name}"

    @property
    def restarts(self) -> int:
        """Restarts used since the sidecar was last stable, counting the one a backoff has scheduled.
        A sidecar that gave up failed one start more than it was restarted: 6 failed starts, 5 of 5
        restarts."""
        return min(self.attempts, self.max_restarts)
