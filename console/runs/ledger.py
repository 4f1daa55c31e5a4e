"""The run ledger: records, time-sortable ids and the indexed questions operators ask.

Writes go through `Store.transition(kind="run", ...)`, the one write path; this module reads.
"""

from __future__ import annotations

import json
import os
from typing import Any

from console.core.records import View, field_names
from console.core.run_ids import CROCKFORD, ulid
from console.core.store import RUN_KIND, Store
from console.runs.view import RunView

SNAPSHOT_RUNS = 50  # the newest runs a snapshot carries; the ledger itself is never loaded whole

class RunRecord(View, frozen=True):
    id: str
    loop_id: str
    status: str
    pid: int | None
    pgid: int | None
    create_time: float | None
    boot_time: float | None
    session_token: str | None
    cmdline: list[str]
    queued_at: float
    started_at: float | None
    finished_at: float | None
    exit_code: int | None
    exit_signal: int | None
    error_code: str | None
    error_text: str | None
    stop_reason: str | None
    timeout_configured: bool
    timeout_fired: bool
    effective_timeout_sec: float | None
    liveness: str | None
    liveness_reason: str | None
    next_action: str | None
    continuation_attempt: int
    chain_id: str
    retry_of_run_id: str | None
    process_loss_retry_count: int
    last_useful_action_at: float | None
    summary: str | None


class RunIds:
    """ULID-style ids (48-bit millisecond time + 80 bits): sorting by id sorts by creation time.
    Within one millisecond the random part counts up, so order holds there too."""

    def __init__(self) -> None:
        self._last_ms = -1
        self._last_rand = 0

    def new(self, now: float) -> str:
        ms = int(now * 1000)
        if ms <= self._last_ms:
            ms = self._last_ms
            self._last_rand += 1
        else:
            self._last_ms = ms
            self._last_rand = int.from_bytes(os.urandom(10), "big") >> 1  # room to count up
        return ulid(ms, self._last_rand)


COLUMNS = list(field_names(RunRecord))
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM runs"


def _record(row: tuple[Any, ...]) -> RunRecord:
    data = dict(zip(COLUMNS, row, strict=True))
    data["cmdline"] = json.loads(data["cmdline"]) if data["cmdline"] else []
    data["timeout_configured"] = bool(data["timeout_configured"])
    data["timeout_fired"] = bool(data["timeout_fired"])
    return RunRecord(**data)


def get_run(store: Store, run_id: str) -> RunRecord | None:
    rows = store.rows(f"{_SELECT} WHERE id = ?", (run_id,))
    return _record(rows[0]) if rows else None


SHORTEST_ENDING = 4  # as git takes no fewer characters of a hash


def run_ids_ending(store: Store, ending: str, limit: int = 2) -> list[str]:
    """Ids of runs whose id ends with `ending`, in any case (Crockford base 32 has one meaning per
    letter): what the console's short ids name. A scan of the ids, fine for an operator's action and
    never used on a snapshot's path. Nothing for an ending that is too short or no id could end with."""
    ending = ending.upper()
    if len(ending) < SHORTEST_ENDING or not set(ending) <= set(CROCKFORD):  # also keeps LIKE's % and _ out
        return []
    return [row[0] for row in store.rows("SELECT id FROM runs WHERE id LIKE ? LIMIT ?", (f"%{ending}", limit))]


def latest_runs(store: Store, loop_id: str, limit: int = 50) -> list[RunRecord]:
    """Newest first; served by the (loop_id, id) index."""
    return [_record(r) for r in store.rows(f"{_SELECT} WHERE loop_id = ? ORDER BY id DESC LIMIT ?", (loop_id, limit))]


def runs_by_liveness(store: Store, liveness: str, limit: int = 50) -> list[RunRecord]:
    """Newest first; served by the (liveness, id) index."""
    return [_record(r) for r in
            store.rows(f"{_SELECT} WHERE liveness = ? ORDER BY id DESC LIMIT ?", (liveness, limit))]


def recent_runs(store: Store, limit: int = 50) -> list[RunRecord]:
    return [_record(r) for r in store.rows(f"{_SELECT} ORDER BY id DESC LIMIT ?", (limit,))]


class LastRun(View, frozen=True):
    """A loop's last finished run, as its row in the Loops tab needs it."""

    id: str
    status: str
    liveness: str | None
    stop_reason: str | None
    finished_at: float | None


def last_finished(store: Store, loop_ids: list[str], chunk: int = 500) -> dict[str, LastRun]:
    """Each loop's newest finished run, from the per-loop index: one probe per loop inside one query,
    whatever the ledger's size (the newest 50 runs of the host would miss most loops of a busy one)."""
    found: dict[str, LastRun] = {}
    for start in range(0, len(loop_ids), chunk):
        part = loop_ids[start:start + chunk]
        values = ", ".join("(?)" for _ in part)
        rows = store.rows(
            f"WITH wanted(loop_id) AS (VALUES {values}) "
            "SELECT r.loop_id, r.id, r.status, r.liveness, r.stop_reason, r.finished_at FROM wanted "
            "JOIN runs r ON r.id = (SELECT id FROM runs WHERE loop_id = wanted.loop_id "
            "AND finished_at IS NOT NULL ORDER BY id DESC LIMIT 1)", tuple(part))
        for loop_id, *fact in rows:
            found[loop_id] = LastRun(*fact)
    return found


def unfinished_runs(store: Store) -> list[RunRecord]:
    """Queued and running runs, oldest first (the partial index keeps this cheap on a big ledger)."""
    return [_record(r) for r in
            store.rows(f"{_SELECT} WHERE status IN ('queued', 'running') ORDER BY id")]


def next_queued(store: Store, loop_id: str) -> RunRecord | None:
    rows = store.rows(f"{_SELECT} WHERE loop_id = ? AND status = 'queued' ORDER BY id LIMIT 1", (loop_id,))
    return _record(rows[0]) if rows else None


def retries_of(store: Store, run_id: str) -> list[RunRecord]:
    return [_record(r) for r in store.rows(f"{_SELECT} WHERE retry_of_run_id = ? ORDER BY id", (run_id,))]


def chain_runs(store: Store, chain_id: str) -> list[RunRecord]:
    return [_record(r) for r in
            store.rows(f"{_SELECT} WHERE chain_id = ? ORDER BY continuation_attempt, id", (chain_id,))]


def queue_run(store: Store, run_id: str, loop_id: str, reason: str, *, chain_id: str | None = None,
              continuation_attempt: int = 0, retry_of: str | None = None, process_loss_retry_count: int = 0,
              timeout: float | None = None) -> None:
    """A new run enters the ledger as `queued` (through the one write path, like every status)."""
    store.transition(RUN_KIND, run_id, "queued", reason, {"loop": loop_id}, columns={
        "loop_id": loop_id, "chain_id": chain_id or run_id, "continuation_attempt": continuation_attempt,
        "retry_of_run_id": retry_of, "process_loss_retry_count": process_loss_retry_count,
        "timeout_configured": timeout is not None, "effective_timeout_sec": timeout,
    })


def run_views(records: list[RunRecord]) -> list[RunView]:
    return [RunView(
        id=r.id, loop_id=r.loop_id, status=r.status, pid=r.pid, queued_at=r.queued_at, started_at=r.started_at,
        finished_at=r.finished_at, exit_code=r.exit_code, exit_signal=r.exit_signal, error_code=r.error_code,
        error_text=r.error_text, stop_reason=r.stop_reason, timeout_configured=r.timeout_configured,
        timeout_fired=r.timeout_fired, effective_timeout_sec=r.effective_timeout_sec, liveness=r.liveness,
        liveness_reason=r.liveness_reason, next_action=r.next_action, continuation_attempt=r.continuation_attempt,
        retry_of_run_id=r.retry_of_run_id, process_loss_retry_count=r.process_loss_retry_count,
        last_useful_action_at=r.last_useful_action_at, summary=r.summary,
    ) for r in records]
