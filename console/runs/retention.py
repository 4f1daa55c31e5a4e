"""Retention: the run ledger, run directories and the event log stay bounded by policy.

A run is kept while it is among its loop's newest `keep_runs_per_loop`, while it is younger than
`keep_runs_days`, or while it is unfinished; any other run is pruned: its ledger row, then its
directory under `<state>/runs/`; never a run a continuation or a retry still to come needs. The
event log keeps its newest `keep_events`. The decision is pure (`prunable`); the pass (`prune`) reads
only the old part of each loop's index and deletes at most `BATCH` runs and a few bounded batches of
events at a time; while a pass finds more than that, the next comes a second later, not a minute, so
a busy host keeps up and one that comes back to a years-old ledger catches up without stalling its
event loop.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from pathlib import Path

from console.core.records import View
from console.core.run_ids import ulid
from console.core.store import Store

DAY = 86400.0
BATCH = 500
EVENT_BATCH = 5000  # events deleted per statement
EVENT_BATCHES = 4  # statements per pass: a years-old log catches up over passes
PERIOD_SECONDS = 60.0  # how often the engine runs a pass ...
CATCH_UP_SECONDS = 1.0  # ... or the next one this soon after a pass that found more than a batch
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


def loop_ids(store: Store) -> list[str]:
    """Every loop the ledger has runs of, by a skip over the per-loop index (one probe per loop, not a
    scan of the ledger): loops gone from the config are pruned too."""
    rows = store.rows(
        "WITH RECURSIVE l(id) AS (SELECT MIN(loop_id) FROM runs UNION ALL "
        "SELECT (SELECT MIN(loop_id) FROM runs WHERE loop_id > l.id) FROM l WHERE l.id IS NOT NULL) "
        "SELECT id FROM l WHERE id IS NOT NULL")
    return [str(row[0]) for row in rows]


def candidates(store: Store, policy: RetentionPolicy, now: float, limit: int = BATCH) -> list[Candidate]:
    """Finished runs past their loop's newest `keep_runs_per_loop` finished ones and queued before the age
    horizon (a run id starts with its queue time, so only that old part of each loop's index is read).
    Never a run whose chain has a run still to come, nor one an unfinished retry is the retry of."""
    horizon = ulid(max(0, int((now - policy.keep_runs_days * DAY) * 1000)), 0)
    found: list[Candidate] = []
    for loop_id in loop_ids(store):
        newest = store.rows(
            "SELECT id FROM runs WHERE loop_id = ? AND status NOT IN ('queued', 'running') "
            "ORDER BY id DESC LIMIT 1 OFFSET ?", (loop_id, policy.keep_runs_per_loop - 1))
        if not newest:
            continue  # no more finished runs than it keeps
        below = min(str(newest[0][0]), horizon)
        rows = store.rows(
            "SELECT id, status, finished_at, queued_at FROM runs WHERE loop_id = ? AND id < ? "
            "AND status NOT IN ('queued', 'running') "
            "AND chain_id NOT IN (SELECT chain_id FROM runs WHERE status IN ('queued', 'running')) "
            "AND id NOT IN (SELECT retry_of_run_id FROM runs WHERE status IN ('queued', 'running') "
            "AND retry_of_run_id IS NOT NULL) ORDER BY id LIMIT ?", (loop_id, below, limit - len(found)))
        # rank: past the newest N finished by construction (below the N-th newest)
        found += [Candidate(row[0], policy.keep_runs_per_loop + 1, row[1], row[2], row[3]) for row in rows]
        if len(found) >= limit:
            break
    return found


class PruneResult(View, frozen=True):
    runs: int
    directories: int
    events: int
    more: bool = False  # a batch was full: more may be left, the next pass comes at once (CATCH_UP_SECONDS)


async def prune(store: Store, runs_root: Path, policy: RetentionPolicy, now: float) -> PruneResult:
    """One pass: rows first (the ledger is the record), then the directories, off the event loop."""
    found = candidates(store, policy, now)
    doomed = [c.id for c in found if prunable(c, policy, now)][:BATCH]
    store.delete_runs(doomed)
    gone = await asyncio.to_thread(_remove_directories, runs_root, doomed)
    events = 0
    removed = 0
    for _ in range(EVENT_BATCHES):  # a few bounded deletes, the loop free between them
        removed = store.prune_events(policy.keep_events, at_most=EVENT_BATCH)
        events += removed
        if removed < EVENT_BATCH:
            break
        await asyncio.sleep(0)
    # A host that makes more than a batch a minute (20 runs/s is 1,200) is caught up by passes a
    # second apart, each bounded, instead of falling behind by the difference every minute.
    return PruneResult(len(doomed), gone, events, more=len(found) >= BATCH or removed >= EVENT_BATCH)


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
