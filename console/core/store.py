"""The state database: SQLite in WAL mode, schema migrations by PRAGMA user_version, and the one
write path for every status change (`Store.transition`).

Durability: `synchronous=FULL`, so a committed transition survives power loss.

Observers that find no engine running must not mutate the state directory. A plain read-only open
would create -wal/-shm files, so: when the WAL is absent (clean stop: everything is in the main
file) the file is opened `immutable=1`; when a WAL is present (the engine was killed before it
checkpointed) it is opened `mode=ro`, which reads the WAL and creates nothing. Only the shared
memory index (-shm) is touched then; the database and WAL bytes stay as they were. `immutable=1`
would silently miss every write still in the WAL.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import msgspec

from console.core.clock import Clock
from console.core.errors import StoreError
from console.core.records import View
from console.core.transitions import Transition, TransitionBus

# Each entry migrates from version i to i+1. Never edit a shipped entry: append a new one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE things (
        kind   TEXT NOT NULL,
        name   TEXT NOT NULL,
        state  TEXT NOT NULL,
        reason TEXT NOT NULL DEFAULT '',
        detail TEXT NOT NULL DEFAULT '{}',
        since  REAL NOT NULL,
        PRIMARY KEY (kind, name)
    ) WITHOUT ROWID;
    CREATE TABLE events (
        id       INTEGER PRIMARY KEY AUTOINCREMENT,
        at       REAL NOT NULL,
        kind     TEXT NOT NULL,
        name     TEXT NOT NULL,
        previous TEXT,
        new      TEXT NOT NULL,
        reason   TEXT NOT NULL,
        detail   TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX events_by_thing ON events (kind, name, id);
    """,
    # v2: the run ledger. Runs keep their state here, not in `things`: a ledger of 100,000 runs
    # must never be loaded whole.
    """
    CREATE TABLE runs (
        id                       TEXT PRIMARY KEY,
        loop_id                  TEXT NOT NULL,
        status                   TEXT NOT NULL,
        pid                      INTEGER,
        pgid                     INTEGER,
        create_time              REAL,
        boot_time                REAL,
        session_token            TEXT,
        cmdline                  TEXT,
        queued_at                REAL NOT NULL,
        started_at               REAL,
        finished_at              REAL,
        exit_code                INTEGER,
        exit_signal              INTEGER,
        error_code               TEXT,
        error_text               TEXT,
        stop_reason              TEXT,
        timeout_configured       INTEGER NOT NULL DEFAULT 0,
        timeout_fired            INTEGER NOT NULL DEFAULT 0,
        effective_timeout_sec    REAL,
        liveness                 TEXT,
        liveness_reason          TEXT,
        next_action              TEXT,
        continuation_attempt     INTEGER NOT NULL DEFAULT 0,
        chain_id                 TEXT NOT NULL,
        retry_of_run_id          TEXT,
        process_loss_retry_count INTEGER NOT NULL DEFAULT 0,
        last_useful_action_at    REAL,
        summary                  TEXT
    ) WITHOUT ROWID;
    CREATE INDEX runs_by_loop ON runs (loop_id, id);
    CREATE INDEX runs_by_liveness ON runs (liveness, id);
    CREATE INDEX runs_unfinished ON runs (status) WHERE status IN ('queued', 'running');
    CREATE INDEX runs_by_chain ON runs (chain_id, continuation_attempt);
    CREATE INDEX runs_by_retry_of ON runs (retry_of_run_id) WHERE retry_of_run_id IS NOT NULL;
    """,
    # v3: each loop's last heartbeat outcome, overwritten by every heartbeat. Not a state change (the
    # loop's own transitions say those), so not an event: a heartbeat every 30 s per loop would bury
    # the event log, and the detail must show it after a restart, not only while the engine recalls it.
    """
    CREATE TABLE loop_heartbeats (
        loop_id TEXT PRIMARY KEY,
        at      REAL NOT NULL,
        outcome TEXT NOT NULL,
        verdict TEXT NOT NULL,
        reason  TEXT NOT NULL DEFAULT ''
    ) WITHOUT ROWID;
    """,
)
RUN_KIND = "run"
SCHEMA_VERSION = len(MIGRATIONS)
RUN_COLUMNS = frozenset({
    "loop_id", "pid", "pgid", "create_time", "boot_time", "session_token", "cmdline", "queued_at", "started_at",
    "finished_at", "exit_code", "exit_signal", "error_code", "error_text", "stop_reason", "timeout_configured",
    "timeout_fired", "effective_timeout_sec", "liveness", "liveness_reason", "next_action", "continuation_attempt",
    "chain_id", "retry_of_run_id", "process_loss_retry_count", "last_useful_action_at", "summary",
})


class ThingRecord(View, frozen=True):
    kind: str
    name: str
    state: str
    reason: str
    since: float
    detail: dict[str, Any]


class HeartbeatRecord(View, frozen=True):
    """A loop's last heartbeat: `outcome` ok | refused | failed, the classifier's `verdict`
    (`live`, `terminal/gone`, `transient/server_error`) and what it meant. Never a token."""

    loop_id: str
    at: float
    outcome: str
    verdict: str
    reason: str


def corrupt_error(path: Path, exc: Exception) -> StoreError:
    return StoreError(
        f"state database {path} is unreadable or corrupt ({exc}); it was left untouched: "
        f"move it aside to start fresh, or restore it from a backup"
    )


class Store:
    def __init__(self, conn: sqlite3.Connection, path: Path, clock: Clock, bus: TransitionBus,
                 *, writable: bool) -> None:
        self._conn = conn
        self.path = path
        self.clock = clock
        self.bus = bus
        self.writable = writable
        self._batch_depth = 0
        self._unpublished: list[Transition] = []

    # -- opening ----------------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path, clock: Clock, bus: TransitionBus | None = None) -> Store:
        """Open for the engine that owns the host: WAL, FULL sync, migrate to the current schema."""
        try:
            conn = sqlite3.connect(path, isolation_level=None, timeout=5.0)
        except sqlite3.Error as exc:
            raise StoreError(f"state database {path} cannot be opened ({exc}): check the state directory")\
                from None
        try:
            # Read before any write: a database we will refuse must not have even its header changed.
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise _newer(path, version)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            _migrate(conn, path)
            # A truncated file can have a valid header and fail only later, mid-transition: check now.
            verdict = conn.execute("PRAGMA quick_check").fetchone()[0]
            if verdict != "ok":
                raise sqlite3.DatabaseError(verdict)
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise corrupt_error(path, exc) from None
        except BaseException:
            conn.close()
            raise
        return cls(conn, path, clock, bus or TransitionBus(), writable=True)

    @classmethod
    def open_snapshot(cls, path: Path, clock: Clock) -> Store | None:
        """Open read-only while no engine runs, touching nothing on disk. None if there is no database."""
        if not path.exists():
            return None
        if not os.access(path, os.R_OK):
            raise StoreError(f"state database {path} is not readable (permission denied): run loopctl as its owner")
        wal = path.with_name(path.name + "-wal")
        shm = path.with_name(path.name + "-shm")
        mode = "mode=ro" if wal.exists() and shm.exists() else "mode=ro&immutable=1"
        uri = f"file:{quote(str(path))}?{mode}"
        try:
            conn = sqlite3.connect(uri, uri=True, isolation_level=None)
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.DatabaseError as exc:
            raise corrupt_error(path, exc) from None
        if version > SCHEMA_VERSION:
            conn.close()
            raise _newer(path, version)
        if version < SCHEMA_VERSION:
            # An older schema that the engine will migrate at its next start; nothing to show yet.
            conn.close()
            return None
        return cls(conn, path, clock, TransitionBus(), writable=False)

    def close(self) -> None:
        self._conn.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        if not self.writable:
            raise StoreError(f"state database {self.path} is open read-only: only the engine writes it")
        if self._batch_depth:
            yield self._conn  # the enclosing batch commits (or rolls back) everything at once
            return
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            self._unpublished.clear()
            raise
        self._conn.execute("COMMIT")
        self._publish()

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Several transitions in one transaction: all of them land, or none. Subscribers hear of
        them only after the commit."""
        if self._batch_depth:
            self._batch_depth += 1
            try:
                yield
            finally:
                self._batch_depth -= 1
            return
        if not self.writable:
            raise StoreError(f"state database {self.path} is open read-only: only the engine writes it")
        self._conn.execute("BEGIN IMMEDIATE")
        self._batch_depth = 1
        try:
            yield
        except BaseException:
            self._batch_depth = 0
            self._conn.execute("ROLLBACK")
            self._unpublished.clear()
            raise
        self._batch_depth = 0
        self._conn.execute("COMMIT")
        self._publish()

    def _publish(self) -> None:
        pending, self._unpublished = self._unpublished, []
        for transition in pending:
            self.bus.publish(transition)

    # -- the one write path -----------------------------------------------------------------------

    def transition(
        self, kind: str, name: str, new: str, reason: str, detail: dict[str, Any] | None = None,
        *, columns: dict[str, Any] | None = None,
    ) -> Transition | None:
        """Record `previous -> new` with a reason, append the event, then publish it.

        Runs keep their state in the ledger (`columns` sets other ledger fields in the same write);
        everything else in `things`. Returns None (and records nothing) when nothing changed.
        """
        detail = detail or {}
        detail_json = json.dumps(detail, sort_keys=True)
        now = self.clock.time()
        with self._write() as conn:
            if kind == RUN_KIND:
                previous = self._run_state(conn, name, new, columns or {})
            else:
                row = conn.execute(
                    "SELECT state, reason FROM things WHERE kind = ? AND name = ?", (kind, name)
                ).fetchone()
                previous = row[0] if row else None
                if row is not None and row[0] == new and row[1] == reason:
                    return None
                conn.execute(
                    "INSERT INTO things (kind, name, state, reason, detail, since) VALUES (?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (kind, name) DO UPDATE SET state = excluded.state, reason = excluded.reason, "
                    "detail = excluded.detail, since = CASE WHEN things.state = excluded.state "
                    "THEN things.since ELSE excluded.since END",
                    (kind, name, new, reason, detail_json, now),
                )
            cur = conn.execute(
                "INSERT INTO events (at, kind, name, previous, new, reason, detail) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (now, kind, name, previous, new, reason, detail_json),
            )
            event_id = cur.lastrowid
            assert event_id is not None
            transition = Transition(event_id, now, kind, name, previous, new, reason, detail)
            self._unpublished.append(transition)
        return transition

    def _run_state(self, conn: sqlite3.Connection, run_id: str, new: str, columns: dict[str, Any]) -> str | None:
        unknown = set(columns) - RUN_COLUMNS
        if unknown:
            raise ValueError(f"not ledger columns: {sorted(unknown)}")
        row = conn.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            if "loop_id" not in columns:
                raise StoreError(f"run {run_id} is not in the ledger")
            values = {"id": run_id, "status": new, "queued_at": self.clock.time(), "chain_id": run_id, **columns}
            names = ", ".join(values)
            marks = ", ".join("?" for _ in values)
            conn.execute(f"INSERT INTO runs ({names}) VALUES ({marks})", tuple(values.values()))
            return None
        sets = {"status": new, **columns}
        assignments = ", ".join(f"{column} = ?" for column in sets)
        conn.execute(f"UPDATE runs SET {assignments} WHERE id = ?", (*sets.values(), run_id))
        return str(row[0])

    # -- reads ------------------------------------------------------------------------------------

    # -- retention: not a state change of anything, so not a transition ---------------------------

    def delete_runs(self, run_ids: list[str]) -> None:
        """Forget finished runs that retention chose (runs/retention.py decides which)."""
        if not run_ids:
            return
        with self._write() as conn:
            conn.executemany("DELETE FROM runs WHERE id = ? AND status NOT IN ('queued', 'running')",
                             [(run_id,) for run_id in run_ids])

    def prune_events(self, keep: int, at_most: int = 5000) -> int:
        """Remove up to `at_most` of the oldest events beyond the newest `keep`; return how many went."""
        rows = self.rows("SELECT id FROM events ORDER BY id DESC LIMIT 1 OFFSET ?", (keep,))
        if not rows:
            return 0
        with self._write() as conn:
            return conn.execute("DELETE FROM events WHERE id IN (SELECT id FROM events WHERE id <= ? ORDER BY id "
                                "LIMIT ?)", (rows[0][0], at_most)).rowcount

    # -- heartbeats: the last outcome of each loop's, overwritten (not a state change, so not an event) --

    def record_heartbeat(self, loop_id: str, outcome: str, verdict: str, reason: str) -> bool:
        """Keep `loop_id`'s last heartbeat outcome, now. True when it differs from the one before
        (the time alone does not count: a change worth telling watchers)."""
        with self._write() as conn:
            row = conn.execute("SELECT outcome, verdict, reason FROM loop_heartbeats WHERE loop_id = ?",
                               (loop_id,)).fetchone()
            conn.execute("INSERT INTO loop_heartbeats (loop_id, at, outcome, verdict, reason) VALUES (?, ?, ?, ?, ?) "
                         "ON CONFLICT (loop_id) DO UPDATE SET at = excluded.at, outcome = excluded.outcome, "
                         "verdict = excluded.verdict, reason = excluded.reason",
                         (loop_id, self.clock.time(), outcome, verdict, reason))
        return row is None or tuple(row) != (outcome, verdict, reason)

    def heartbeats(self) -> dict[str, HeartbeatRecord]:
        rows = self._conn.execute("SELECT loop_id, at, outcome, verdict, reason FROM loop_heartbeats").fetchall()
        return {r[0]: HeartbeatRecord(r[0], r[1], r[2], r[3], r[4]) for r in rows}

    def thing(self, kind: str, name: str) -> ThingRecord | None:
        row = self._conn.execute(
            "SELECT kind, name, state, reason, since, detail FROM things WHERE kind = ? AND name = ?",
            (kind, name),
        ).fetchone()
        return _thing(row) if row else None

    def things(self, kind: str | None = None) -> list[ThingRecord]:
        sql = "SELECT kind, name, state, reason, since, detail FROM things"
        params: tuple[Any, ...] = ()
        if kind is not None:
            sql += " WHERE kind = ?"
            params = (kind,)
        return [_thing(r) for r in self._conn.execute(sql + " ORDER BY kind, name", params)]

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """A read for the ledger's queries (ledger.py holds the SQL)."""
        return self._conn.execute(sql, params).fetchall()

    def recent_events(self, limit: int = 50) -> list[Transition]:
        rows = self._conn.execute(
            "SELECT id, at, kind, name, previous, new, reason, detail FROM events ORDER BY id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [Transition(r[0], r[1], r[2], r[3], r[4], r[5], r[6], _detail(r[7])) for r in rows]


    def events_page(self, *, kind: str | None = None, name: str | None = None, since: float | None = None,
                    until: float | None = None, before: int | None = None, limit: int = 100) -> list[Transition]:
        """A page of the event log, newest first: of one kind or one thing, within a time window, older
        than event `before` (the last one of the previous page). Uses the (kind, name, id) index."""
        where, params = [], []
        for clause, value in (("kind = ?", kind), ("name = ?", name), ("at >= ?", since), ("at < ?", until),
                              ("id < ?", before)):
            if value is not None:
                where.append(clause)
                params.append(value)
        sql = "SELECT id, at, kind, name, previous, new, reason, detail FROM events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = self._conn.execute(sql + " ORDER BY id DESC LIMIT ?", (*params, limit)).fetchall()
        return [Transition(r[0], r[1], r[2], r[3], r[4], r[5], r[6], _detail(r[7])) for r in rows]


def _thing(row: tuple[Any, ...]) -> ThingRecord:
    return ThingRecord(row[0], row[1], row[2], row[3], row[4], _detail(row[5]))


_detail = msgspec.json.Decoder(dict[str, Any]).decode  # the JSON the store wrote itself: a third of json.loads's time


def _newer(path: Path, version: int) -> StoreError:
    return StoreError(
        f"state database {path} has schema {version}, newer than this loopctl understands ({SCHEMA_VERSION}): "
        f"upgrade loopctl"
    )


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise _newer(path, version)
        for index in range(version, SCHEMA_VERSION):
            for statement in MIGRATIONS[index].split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {index + 1}")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
