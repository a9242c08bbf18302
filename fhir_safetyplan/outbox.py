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
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from fhir_safetyplan.errors import JSON, ConfigError, InputError

log = logging.getLogger("fhir_safetyplan.outbox")

Status = Literal["pending", "delivered", "rejected"]
_REASON_MAX = 500

_COLUMNS = (
    "seq, submission_id, server_url, status, attempts, last_error, created_at, updated_at, "
    "delivered_at, response_summary, bundle"
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    submission_id    TEXT NOT NULL UNIQUE,
    server_url       TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'rejected')),
    bundle           TEXT,
    attempts         INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    delivered_at     TEXT,
    response_summary TEXT
);
CREATE INDEX IF NOT EXISTS outbox_status ON outbox (status, seq);
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

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary for listings: everything except the bundle."""
        return {
            "seq": self.seq,
            "submissionId": self.submission_id,
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


class Outbox:
    """The outbox at ``path`` (created if missing, mode 0600: it holds personal data).

    Safe to use from several threads of one process and from several processes at once.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            _create_private_file(self.path)
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA secure_delete=ON")
            conn.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(
                f"The outbox {self.path} cannot be opened ({exc}); give a writable file path with --outbox "
                "or SAFETYPLAN_OUTBOX."
            ) from None
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

        The same ``submission_id`` again replaces the bundle of its one entry (keeping its place in the queue)
        and makes it pending again, also when an earlier version was delivered.
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
                ON CONFLICT (submission_id) DO UPDATE SET
                    server_url = excluded.server_url, status = 'pending', bundle = excluded.bundle,
                    attempts = 0, last_error = NULL, updated_at = excluded.updated_at,
                    delivered_at = NULL, response_summary = NULL
                """,
                (submission_id, server_url, text, now, now),
            )
        log.info("outbox: stored submission %s as pending", submission_id)
        entry = self.get(submission_id)
        assert entry is not None  # just written under the lock
        return entry

    def get(self, submission_id: str) -> OutboxEntry | None:
        """The entry for ``submission_id``, or None."""
        rows = self._select("WHERE submission_id = ?", (submission_id,))
        return rows[0] if rows else None

    def pending(self) -> builtins.list[OutboxEntry]:
        """Entries still to deliver, oldest first (FIFO), with their bundles."""
        return self._select("WHERE status = 'pending' ORDER BY seq", ())

    def list(self, status: Status | None = None) -> builtins.list[OutboxEntry]:
        """All entries (or those with ``status``), oldest first."""
        if status is None:
            return self._select("ORDER BY seq", ())
        return self._select("WHERE status = ? ORDER BY seq", (status,))

    def mark_delivered(self, submission_id: str, response_summary: builtins.list[JSON]) -> None:
        """The server acknowledged it: keep only ``response_summary`` (ids, locations) and drop the bundle."""
        now = _now()
        self._update(
            submission_id,
            "status = 'delivered', bundle = NULL, delivered_at = ?, updated_at = ?, response_summary = ?, "
            "last_error = NULL",
            (now, now, json.dumps(response_summary, ensure_ascii=False)),
        )
        log.info("outbox: submission %s delivered", submission_id)

    def record_failure(self, submission_id: str, reason: str) -> None:
        """Count a failed attempt; the entry stays pending. ``reason`` must hold no personal data."""
        self._update(
            submission_id,
            "attempts = attempts + 1, last_error = ?, updated_at = ?",
            (reason[:_REASON_MAX], _now()),
        )

    def mark_rejected(self, submission_id: str, reason: str) -> None:
        """The server refused it (4xx) or policy did: it leaves the queue but keeps its bundle for review.

        Resubmitting the same submission id (:meth:`put`) makes it pending again; :meth:`remove` discards it.
        """
        self._update(
            submission_id,
            "status = 'rejected', attempts = attempts + 1, last_error = ?, updated_at = ?",
            (reason[:_REASON_MAX], _now()),
        )

    def remove(self, submission_id: str) -> bool:
        """Delete an entry and its bundle for good; True if there was one."""
        with self._write() as db:
            cur = db.execute("DELETE FROM outbox WHERE submission_id = ?", (submission_id,))
        return cur.rowcount > 0

    def _update(self, submission_id: str, assignments: str, values: tuple[Any, ...]) -> None:
        with self._write() as db:
            cur = db.execute(
                f"UPDATE outbox SET {assignments} WHERE submission_id = ?",  # noqa: S608 - fixed fragments only
                (*values, submission_id),
            )
        if cur.rowcount == 0:
            raise InputError(f"The outbox has no submission {submission_id!r}.")

    def _select(self, where: str, values: tuple[Any, ...]) -> builtins.list[OutboxEntry]:
        with self._lock:
            query = f"SELECT {_COLUMNS} FROM outbox {where}"  # noqa: S608 - fixed fragments only
            rows = self._conn.execute(query, values).fetchall()
        return [
            OutboxEntry(
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
            )
            for r in rows
        ]
