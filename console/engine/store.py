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
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from console.engine.clock import Clock
from console.engine.errors import StoreError
from console.engine.transitions import Transition, TransitionBus

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
)
SCHEMA_VERSION = len(MIGRATIONS)


@dataclass(frozen=True)
class ThingRecord:
    kind: str
    name: str
    state: str
    reason: str
    since: float
    detail: dict[str, Any]


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
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    # -- the one write path -----------------------------------------------------------------------

    def transition(
        self, kind: str, name: str, new: str, reason: str, detail: dict[str, Any] | None = None
    ) -> Transition | None:
        """Record `previous -> new` with a reason, append the event, then publish it.

        Returns None (and records nothing) when neither the state nor the reason changed.
        """
        detail = detail or {}
        detail_json = json.dumps(detail, sort_keys=True)
        now = self.clock.time()
        with self._write() as conn:
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
                "INSERT INTO events (at, kind, name, previous, new, reason, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (now, kind, name, previous, new, reason, detail_json),
            )
            event_id = cur.lastrowid
        assert event_id is not None
        transition = Transition(event_id, now, kind, name, previous, new, reason, detail)
        self.bus.publish(transition)
        return transition

    # -- reads ------------------------------------------------------------------------------------

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

    def recent_events(self, limit: int = 50) -> list[Transition]:
        rows = self._conn.execute(
            "SELECT id, at, kind, name, previous, new, reason, detail FROM events ORDER BY id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [Transition(r[0], r[1], r[2], r[3], r[4], r[5], r[6], json.loads(r[7])) for r in rows]


def _thing(row: tuple[Any, ...]) -> ThingRecord:
    return ThingRecord(row[0], row[1], row[2], row[3], row[4], json.loads(row[5]))


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
