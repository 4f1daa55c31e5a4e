"""Retention: the run ledger, run directories and the event log stay bounded by policy.

A run is kept while it is among its loop's newest `keep_runs_per_loop`, while it is younger than
`keep_runs_days`, or while it is unfinished; any other run is pruned: its ledger row, then its
directory under `<state>/runs/`. The event log keeps its newest `keep_events`. The decision is pure
(`prunable`); the pass (`prune`) deletes at most `BATCH` runs at a time, so a host that comes back
to a years-old ledger catches up over a few passes without stalling its event loop.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from pathlib import Path

from console.core.records import View
from console.core.store import Store

DAY = 86400.0
BATCH = 500
PERIOD_SECONDS = 60.0  # how often the engine runs a pass
UNFINISHED = ("queued", "running")
_RUN_ID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")  # a ULID: only such a name is ever removed under runs/


class RetentionPolicy(View, frozen=True):
    keep_runs_per_loop: int = 200
    keep_runs_days: float = 7.0
    keep_events: int = 20_000


class Candidate(View, frozen=True):
    """A run past its loop's newest N, as the ledger has it."""

    id: str
    rank: int  # 1 = its loop's newest
    status: str
    finished_at: float | None
    queued_at: float


def prunable(run: Candidate, policy: RetentionPolicy, now: float) -> bool:
    if run.rank <= policy.keep_runs_per_loop or run.status in UNFINISHED:
        return False
    ended = run.finished_at if run.finished_at is not None else run.queued_at
    return now - ended >= policy.keep_runs_days * DAY


def candidates(store: Store, policy: RetentionPolicy, limit: int = BATCH * 4) -> list[Candidate]:
    rows = store.rows(
        "SELECT id, rank, status, finished_at, queued_at FROM ("
        " SELECT id, status, finished_at, queued_at,"
        "  ROW_NUMBER() OVER (PARTITION BY loop_id ORDER BY id DESC) AS rank FROM runs"
        ") WHERE rank > ? ORDER BY id LIMIT ?", (policy.keep_runs_per_loop, limit))
    return [Candidate(*row) for row in rows]


class PruneResult(View, frozen=True):
    runs: int
    directories: int
    events: int


async def prune(store: Store, runs_root: Path, policy: RetentionPolicy, now: float) -> PruneResult:
    """One pass: rows first (the ledger is the record), then the directories, off the event loop."""
    doomed = [c.id for c in candidates(store, policy) if prunable(c, policy, now)][:BATCH]
    store.delete_runs(doomed)
    gone = await asyncio.to_thread(_remove_directories, runs_root, doomed)
    events = store.prune_events(policy.keep_events)
    return PruneResult(len(doomed), gone, events)


def _remove_directories(runs_root: Path, run_ids: list[str]) -> int:
    removed = 0
    for run_id in run_ids:
        if not _RUN_ID.match(run_id):
            continue
        where = runs_root / run_id
        if where.is_symlink():  # never follow a link out of runs/: remove the link itself
            where.unlink(missing_ok=True)
            removed += 1
        elif where.is_dir():
            shutil.rmtree(where, ignore_errors=True)  # rmtree does not follow links inside it either
            removed += 1
    return removed
