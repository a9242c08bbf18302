"""A durable local outbox: plans wait here until the FHIR server has acknowledged them.

The rule it serves: a plan is always either in the outbox or acknowledged by the server, never neither.
:func:`fhir_safetyplan.deliver.deliver` writes the bundle here *before* sending and marks it delivered
only after the server's 2xx; ``safetyplan outbox flush`` sends what is still pending, oldest first.

Storage is one SQLite file in WAL mode with ``synchronous=FULL``: a write that returned is on disk,
and a crash (power cut, ``kill -9``) mid-write leaves the previous state intact.

**The file holds personal data** (each pending bundle is a person's safety plan). It is created with
mode 0600 (SQLite gives its ``-wal`` / ``-shm`` files the same mode), its directory with 0700, and a
wider mode found on an existing file is narrowed. Once the server has a plan, the local copy of the
bundle is deleted (``secure_delete`` overwrites it) and only ids, statuses and locations are kept.
Reasons recorded for failures must not contain personal data: pass status codes and error kinds.

An entry is keyed on (server, submission): the same submission bound for two servers is two entries.
Every :meth:`Outbox.put` raises the entry's ``revision``; the outcome of a send is recorded only if the
entry is still at the revision that was sent (compare-and-set), so a plan re-queued while an older version
of it was in flight stays pending and is sent next.

Schema history (``PRAGMA user_version``): 0/1 = keyed on the submission alone, no revision; 2 = now.
An older file is migrated in place when it is opened.
"""

from __future__ import annotations

import builtins
import json
import logging
import os
import sqlite3
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from fhir_safetyplan.errors import JSON, ConfigError, InputError

log = logging.getLogger("fhir_safetyplan.outbox")

Status = Literal["pending", "delivered", "rejected"]
_REASON_MAX = 500

_COLUMNS = (
    "seq, submission_id, server_url, status, attempts, last_error, created_at, updated_at, "
    "delivered_at, response_summary, bundle, revision"
)
SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    submission_id    TEXT NOT NULL,
    server_url       TEXT NOT NULL,
    revision         INTEGER NOT NULL DEFAULT 1,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'rejected')),
    bundle           TEXT,
    attempts         INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    delivered_at     TEXT,
    response_summary TEXT,
    UNIQUE (server_url, submission_id)
);
CREATE INDEX IF NOT EXISTS outbox_status ON outbox (status, seq);
"""

# Version 1 had ``submission_id UNIQUE`` and no revision: copy its rows into the version 2 table.
_RENAME_V1 = """
ALTER TABLE outbox RENAME TO outbox_v1;
DROP INDEX IF EXISTS outbox_status;
"""
_COPY_V1 = """
INSERT INTO outbox (seq, submission_id, server_url, revision, status, bundle, attempts, last_error,
                    created_at, updated_at, delivered_at, response_summary)
    SELECT seq, submission_id, server_url, 1, status, bundle, attempts, last_error,
           created_at, updated_at, delivered_at, response_summary FROM outbox_v1;
DROP TABLE outbox_v1;
"""


@dataclass(frozen=True)
class OutboxEntry:
    """One submission in the outbox. ``bundle`` (personal data) is left out of the repr."""

    seq: int
    submission_id: str
    server_url: str
    status: Status
    attempts: int
    last_error: str | None
    created_at: str
    updated_at: str
    delivered_at: str | None
    #: per-entry server answers after delivery: status, location, type, id, version (no personal data)
    response_summary: list[JSON] | None
    #: the transaction Bundle while it is not yet delivered; None once the server has it
    bundle: JSON | None = field(default=None, repr=False)
    #: raised by every put; results are recorded only for the revision that was sent
    revision: int = 1

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary for listings: everything except the bundle."""
        return {
            "seq": self.seq,
            "submissionId": self.submission_id,
            "revision": self.revision,
            "server": self.server_url,
            "status": self.status,
            "attempts": self.attempts,
            "lastError": self.last_error,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "deliveredAt": self.delivered_at,
            "response": self.response_summary,
        }


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _create_private_file(path: Path) -> None:
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700)
    if path.exists():
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            log.warning("outbox file was readable by other users (mode %o); narrowing it to 600", mode)
            os.chmod(path, 0o600)
        return
    # Created with 0600 before SQLite opens it, so there is no moment when others could read it.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)


def _ensure_schema(conn: sqlite3.Connection, path: Path) -> None:
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise ConfigError(
            f"The outbox {path} was written by a newer fhir-safetyplan (schema {version}, this one knows "
            f"{SCHEMA_VERSION}): upgrade fhir-safetyplan, or deliver its plans with the newer version first."
        )
    if version == SCHEMA_VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Re-read under the write lock: another process may have migrated it meanwhile.
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version < SCHEMA_VERSION:
            exists = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='outbox'"
            ).fetchone()
            columns = {r[1] for r in conn.execute("PRAGMA table_info(outbox)")} if exists else set()
            if exists and "revision" not in columns:
                log.info(
                    "outbox: migrating the file to schema %d (keyed on server and submission)", SCHEMA_VERSION
                )
                script = _RENAME_V1 + _SCHEMA + _COPY_V1
            else:
                script = _SCHEMA
            # One statement at a time: executescript would commit the transaction that holds the lock.
            for statement in script.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


class Outbox:
    """The outbox at ``path`` (created if missing, mode 0600: it holds personal data).

    Safe to use from several threads of one process and from several processes at once.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        conn: sqlite3.Connection | None = None
        try:
            _create_private_file(self.path)
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA secure_delete=ON")
            _ensure_schema(conn, self.path)
        except (OSError, sqlite3.Error) as exc:
            if conn is not None:
                conn.close()
            raise ConfigError(
                f"The outbox {self.path} cannot be opened ({exc}); give a writable file path with --outbox "
                "or SAFETYPLAN_OUTBOX."
            ) from None
        except BaseException:
            if conn is not None:
                conn.close()
            raise
        if str(mode).lower() != "wal":
            log.warning("outbox: the file system does not support WAL; using %s journal", mode)
        self._conn = conn
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Outbox({str(self.path)!r})"

    def close(self) -> None:
        """Close the database connection."""
        self._conn.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        # BEGIN IMMEDIATE takes the write lock up front, so two flushing processes never interleave a change.
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def put(self, submission_id: str, bundle: JSON, server_url: str) -> OutboxEntry:
        """Store ``bundle`` as pending for ``server_url``; returns once it is on disk.

        The same ``submission_id`` for the same server again replaces the bundle of its one entry (keeping
        its place in the queue), raises its ``revision`` and makes it pending again, also when an earlier
        version was delivered. The same submission for another server is another entry.
        """
        if not submission_id:
            raise InputError("A submission id is needed to keep the outbox free of duplicates.")
        text = json.dumps(bundle, ensure_ascii=False, separators=(",", ":"))
        now = _now()
        with self._write() as db:
            db.execute(
                """
                INSERT INTO outbox (submission_id, server_url, status, bundle, created_at, updated_at)
                VALUES (?, ?, 'pending', ?, ?, ?)
                ON CONFLICT (server_url, submission_id) DO UPDATE SET
                    revision = revision + 1, status = 'pending', bundle = excluded.bundle,
                    attempts = 0, last_error = NULL, updated_at = excluded.updated_at,
                    delivered_at = NULL, response_summary = NULL
                """,
                (submission_id, server_url, text, now, now),
            )
            row = db.execute(
                f"SELECT {_COLUMNS} FROM outbox WHERE server_url = ? AND submission_id = ?",  # noqa: S608
                (server_url, submission_id),
            ).fetchone()
        log.info("outbox: stored submission %s as pending", submission_id)
        return _entry(row)

    def get(self, submission_id: str, server_url: str | None = None) -> OutboxEntry | None:
        """The entry for ``submission_id`` (for ``server_url``; without it the oldest for any server), or None."""
        where, values = _key(submission_id, server_url)
        rows = self._select(f"{where} ORDER BY seq LIMIT 1", values)
        return rows[0] if rows else None

    def pending(self, server_url: str | None = None) -> builtins.list[OutboxEntry]:
        """Entries still to deliver (for ``server_url``, or all), oldest first (FIFO), with their bundles."""
        if server_url is None:
            return self._select("WHERE status = 'pending' ORDER BY seq", ())
        return self._select("WHERE status = 'pending' AND server_url = ? ORDER BY seq", (server_url,))

    def pending_servers(self) -> builtins.list[str]:
        """The servers that pending entries are bound for, in queue order."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT server_url FROM outbox WHERE status = 'pending' GROUP BY server_url ORDER BY MIN(seq)"
            ).fetchall()
        return [r[0] for r in rows]

    def counts(self) -> dict[str, int]:
        """How many entries per status (an SQL count: no bundle is read)."""
        out = {"pending": 0, "rejected": 0, "delivered": 0}
        with self._lock:
            for status, n in self._conn.execute("SELECT status, COUNT(*) FROM outbox GROUP BY status"):
                out[status] = n
        return out

    def list(self, status: Status | None = None) -> builtins.list[OutboxEntry]:
        """All entries (or those with ``status``), oldest first."""
        if status is None:
            return self._select("ORDER BY seq", ())
        return self._select("WHERE status = ? ORDER BY seq", (status,))

    def mark_delivered(
        self,
        submission_id: str,
        response_summary: builtins.list[JSON],
        *,
        server_url: str | None = None,
        revision: int | None = None,
    ) -> bool:
        """The server acknowledged it: keep only ``response_summary`` (ids, locations) and drop the bundle.

        With ``revision`` only if the entry is still that revision; False (and nothing changed) when a newer
        revision was queued meanwhile: that one stays pending and is sent next.
        """
        now = _now()
        done = self._update(
            submission_id,
            server_url,
            revision,
            "status = 'delivered', bundle = NULL, delivered_at = ?, updated_at = ?, response_summary = ?, "
            "last_error = NULL",
            (now, now, json.dumps(response_summary, ensure_ascii=False)),
        )
        if done:
            log.info("outbox: submission %s delivered", submission_id)
        return done

    def record_failure(
        self, submission_id: str, reason: str, *, server_url: str | None = None, revision: int | None = None
    ) -> bool:
        """Count a failed attempt; the entry stays pending. ``reason`` must hold no personal data.

        With ``revision``: False (nothing changed) when the entry has a newer revision by now.
        """
        return self._update(
            submission_id,
            server_url,
            revision,
            "attempts = attempts + 1, last_error = ?, updated_at = ?",
            (reason[:_REASON_MAX], _now()),
        )

    def mark_rejected(
        self, submission_id: str, reason: str, *, server_url: str | None = None, revision: int | None = None
    ) -> bool:
        """The server refused its content (or policy did): it leaves the queue but keeps its bundle for review.

        :meth:`requeue` or resubmitting the same submission id (:meth:`put`) makes it pending again;
        :meth:`remove` or :meth:`purge` discards it. With ``revision``: False (nothing changed) when the
        entry has a newer revision by now, which stays pending.
        """
        return self._update(
            submission_id,
            server_url,
            revision,
            "status = 'rejected', attempts = attempts + 1, last_error = ?, updated_at = ?",
            (reason[:_REASON_MAX], _now()),
        )

    def requeue(self, submission_id: str, server_url: str | None = None) -> int:
        """Make rejected entries of ``submission_id`` (for ``server_url``, or any) pending again; how many."""
        where, values = _key(submission_id, server_url)
        with self._write() as db:
            cur = db.execute(
                f"UPDATE outbox SET status = 'pending', revision = revision + 1, updated_at = ? "  # noqa: S608
                f"{where} AND status = 'rejected' AND bundle IS NOT NULL",
                (_now(), *values),
            )
        return cur.rowcount

    def remove(self, submission_id: str, server_url: str | None = None) -> bool:
        """Delete the entry (entries, without ``server_url``) and bundle for good; True if there was one."""
        where, values = _key(submission_id, server_url)
        with self._write() as db:
            cur = db.execute(f"DELETE FROM outbox {where}", values)  # noqa: S608 - fixed fragments only
        return cur.rowcount > 0

    def purge(self, status: Literal["delivered", "rejected"], older_than_days: float | None = None) -> int:
        """Delete entries with ``status`` (last changed more than ``older_than_days`` ago); how many.

        Pending entries are never purged: they are plans not yet on the server.
        """
        if status not in ("delivered", "rejected"):
            raise InputError("Only delivered or rejected entries can be purged; pending plans are kept.")
        where, values = "WHERE status = ?", (status,)
        if older_than_days is not None:
            cutoff = datetime.now(UTC) - timedelta(days=older_than_days)
            where += " AND updated_at < ?"
            values = (status, cutoff.isoformat(timespec="milliseconds"))  # type: ignore[assignment]
        with self._write() as db:
            cur = db.execute(f"DELETE FROM outbox {where}", values)  # noqa: S608 - fixed fragments only
        return cur.rowcount

    def _update(
        self,
        submission_id: str,
        server_url: str | None,
        revision: int | None,
        assignments: str,
        values: tuple[Any, ...],
    ) -> bool:
        where, key = _key(submission_id, server_url)
        if revision is not None:
            where += " AND revision = ?"
            key = (*key, revision)
        with self._write() as db:
            cur = db.execute(
                f"UPDATE outbox SET {assignments} {where}",  # noqa: S608 - fixed fragments only
                (*values, *key),
            )
            if cur.rowcount == 0 and revision is not None:
                where, key = _key(submission_id, server_url)
                query = f"SELECT 1 FROM outbox {where}"  # noqa: S608 - fixed fragments only
                if db.execute(query, key).fetchone():
                    return False  # a newer revision: it stays pending
        if cur.rowcount == 0:
            raise InputError(f"The outbox has no submission {submission_id!r}.")
        return True

    def _select(self, where: str, values: tuple[Any, ...]) -> builtins.list[OutboxEntry]:
        with self._lock:
            query = f"SELECT {_COLUMNS} FROM outbox {where}"  # noqa: S608 - fixed fragments only
            rows = self._conn.execute(query, values).fetchall()
        return [_entry(r) for r in rows]


def _key(submission_id: str, server_url: str | None) -> tuple[str, tuple[Any, ...]]:
    if server_url is None:
        return "WHERE submission_id = ?", (submission_id,)
    return "WHERE submission_id = ? AND server_url = ?", (submission_id, server_url)


def _entry(r: Any) -> OutboxEntry:
    return OutboxEntry(
        seq=r[0],
        submission_id=r[1],
        server_url=r[2],
        status=r[3],
        attempts=r[4],
        last_error=r[5],
        created_at=r[6],
        updated_at=r[7],
        delivered_at=r[8],
        response_summary=json.loads(r[9]) if r[9] else None,
        bundle=json.loads(r[10]) if r[10] else None,
        revision=r[11],
    )
