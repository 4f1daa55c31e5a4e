"""What the runs concept shows the read model: loops and their runs."""

from __future__ import annotations

from console.core.records import CompactView


class LoopView(CompactView, frozen=True):
    id: str
    state: str = "active"  # active | escalated | disabled (paused, transient, finalized come with the control plane)
    reason: str = ""
    enabled: bool = True
    objective: str = ""
    interval_seconds: float = 0.0
    run_timeout_seconds: float = 0.0
    current_run: str | None = None
    next_run_at: float | None = None
    provenance: str = "local"  # local (no runner token), managed (created by this engine), or user (its own token)
    token_expires_at: float | None = None  # the runner token's expiry (never the token)
    last_heartbeat: str = ""  # its last heartbeat's outcome, from the store: ok | refused | failed
    last_heartbeat_at: float | None = None
    last_heartbeat_reason: str = ""  # the classifier's verdict and what it meant (`transient/server_error: ...`)
    held_by: str = ""  # a local pause (the command), apart from the control plane's `paused` state
    held_at: float | None = None
    revived_at: float | None = None  # its last revival by proof of possession, from the event log
    revived_jti: str = ""  # the new runner token's jti (never the token)
    revived_expires_at: float | None = None
    # its last finished run, from the ledger's per-loop index (not from the snapshot's newest runs)
    last_run_id: str | None = None
    last_liveness: str | None = None
    last_stop_reason: str | None = None
    last_finished_at: float | None = None

    @property
    def key(self) -> str:
        return f"loop:{self.id}"


class RunView(CompactView, frozen=True):
    id: str
    loop_id: str
    status: str
    pid: int | None = None
    queued_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    exit_code: int | None = None
    exit_signal: int | None = None
    error_code: str | None = None
    error_text: str | None = None
    stop_reason: str | None = None
    timeout_configured: bool = False
    timeout_fired: bool = False
    effective_timeout_sec: float | None = None
    liveness: str | None = None
    liveness_reason: str | None = None
    next_action: str | None = None
    continuation_attempt: int = 0
    retry_of_run_id: str | None = None
    process_loss_retry_count: int = 0
    last_useful_action_at: float | None = None
    summary: str | None = None

    @property
    def key(self) -> str:
        return f"run:{self.id}"
