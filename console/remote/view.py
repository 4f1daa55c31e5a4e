"""What the remote-config concept shows the read model: the document in force, probation, rollbacks, polls, plugins."""

from __future__ import annotations

from console.core.records import View
from console.remote.records import ApplyRecord, BootRecord, PollRecord, Rollback


class PluginView(View, frozen=True):
    name: str
    version: str
    state: str  # installed | removed | failed
    reason: str = ""


class RemoteConfigView(View, frozen=True):
    """The host's remote config as the operator needs it: what runs, whether it is on probation,
    what was refused or rolled back and why, and how the last poll went."""

    state: str = "none"  # none | probation | active | rejected | rolled_back
    reason: str = ""
    running_etag: str | None = None
    slot: str | None = None
    poll_interval_seconds: float = 300.0
    probation_etag: str | None = None
    probation_started_at: float | None = None
    probation_deadline: float | None = None
    probation_seconds_left: float | None = None  # at the snapshot's generated_at
    bad_etag: str | None = None
    bad_until: float | None = None
    last_rollback: Rollback | None = None
    last_apply: ApplyRecord | None = None
    last_boot: BootRecord | None = None
    last_poll: PollRecord | None = None
    next_poll_at: float | None = None
    host_status: str = ""
