"""The SQLite outbox (the embedded default): plans wait here until the FHIR server has acknowledged them.

One of the two stores behind :class:`fhir_safetyplan.delivery.store.OutboxStore` (the other is PostgreSQL,
:mod:`fhir_safetyplan.delivery.outbox_postgres`, for several hosts); :func:`fhir_safetyplan.delivery.store.open_outbox`
opens either from ``--outbox`` / ``SAFETYPLAN_OUTBOX``.

The rule it serves: a plan is always either in the outbox or acknowledged by the server, never neither.
:func:`fhir_safetyplan.delivery.deliver.deliver` writes the bundle here *before* sending and marks it delivered
only after the server's 2xx; ``safetyplan outbox flush`` sends what is still pending, oldest first.

Storage is one SQLite file in WAL mode with ``synchronous=FULL``: a write that returned is on disk,
and a crash (power cut, ``kill -9``) mid-write leaves the previous state intact.

**The file holds personal data** (each pending bundle is a person's safety plan). It is created with
mode 0600 (SQLite gives its ``-wal`` / ``-shm`` files the same mode), its directory with 0700, and a
wider mode found on an existing file is narrowed. Once the server has a plan, the local copy of the
bundle is deleted (``secure_delete`` overwrites it) and only ids, statuses and locations are kept.
Reasons recorded for failures must not contain personal data: pass status codes and error kinds.

An entry is keyed on (server, plan key): the plan key (:func:`fhir_safetyplan.delivery.outbox_keys.plan_key`) is the
sender's submission id scoped by the patient, so two patients' plans never share an entry even when their
senders gave them the same submission id; the same plan bound for two servers is two entries. The sender's
submission id is kept beside it (listings, logs); the methods that find an entry take either its plan key or a
submission id, and refuse (:class:`SharedSubmission`) a submission id that names plans for several patients.
Every :meth:`Outbox.put` raises the entry's ``revision``; the outcome of a send is recorded only if the
entry is still at the revision that was sent (compare-and-set), so a plan re-queued while an older version
of it was in flight stays pending and is sent next.

Several flushers (two ``outbox flush`` at once, several service processes) share one file safely: a sender
first *claims* an entry (:meth:`Outbox.claim`), which leases it to that process for a while; the others
leave a leased entry alone. A lease ends when its outcome is recorded, when it expires, or at once when its
holder on this machine has died. Outcomes are recorded only on a pending entry: nothing leaves
``delivered`` except a new revision of the plan.

A row whose bundle cannot be read is set aside as ``damaged`` and the rest is delivered; a file SQLite
cannot read is reported as :class:`OutboxDamaged` (exit 7) with how to get the readable plans out
(:mod:`fhir_safetyplan.delivery.outbox_repair`). Only our own outbox file ever has its mode changed: a directory,
a file that is not SQLite, or an SQLite file without our table is refused untouched.

Schema history (``PRAGMA user_version``): 0/1 = keyed on the submission alone, no revision; 2 = revisions;
3 = leases and the ``damaged`` status; 4 = keyed on the plan key. An older file is migrated in place when it is opened.
"""

from __future__ import annotations

import builtins
import json
import logging
import os
import socket
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from fhir_safetyplan.delivery.outbox_keys import SharedSubmission, plan_key, resolve_key
from fhir_safetyplan.delivery.outbox_sqlite import (
    OutboxDamaged,
    create_private_file,
    damaged,
    ensure_schema,
    is_damage,
    narrow_mode,
)
from fhir_safetyplan.delivery.store import COLUMNS as _COLUMNS
from fhir_safetyplan.delivery.store import LEASE_SECONDS, REASON_MAX, STATUSES, OutboxEntry, Status
from fhir_safetyplan.delivery.store import entry_from_row as _entry
from fhir_safetyplan.errors import JSON, ConfigError, InputError

__all__ = [
    "LEASE_SECONDS",
    "STATUSES",
    "Outbox",
    "OutboxDamaged",
    "OutboxEntry",
    "SharedSubmission",
    "Status",
]

log = logging.getLogger("fhir_safetyplan.delivery.outbox")


def _now(later: float = 0.0) -> str:
    return (datetime.now(UTC) + timedelta(seconds=later)).isoformat(timespec="milliseconds")


class Outbox:
    """The outbox at ``path`` (created if missing, mode 0600: it holds personal data).

    Safe to use from several threads of one process and from several processes at once.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, owner: str | None = None, lease_seconds: float = LEASE_SECONDS
    ) -> None:
        self.path = Path(path)
        #: how long this process's claims last (``deliver`` and ``flush`` take it from here)
        self.lease_seconds = lease_seconds
        #: this process's name on leases: host and pid (so a dead holder on this host is seen at once)
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        conn: sqlite3.Connection | None = None
        try:
            created = create_private_file(self.path)
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA secure_delete=ON")
            ensure_schema(conn, self.path)
            if not created:
                narrow_mode(self.path)  # only now that it is known to be an outbox
        except sqlite3.Error as exc:
            if conn is not None:
                conn.close()
            if is_damage(exc):
                raise damaged(self.path, exc) from None
            raise ConfigError(
                f"The outbox {self.path} cannot be opened ({exc}); give a writable file path with --outbox "
                "or SAFETYPLAN_OUTBOX."
            ) from None
        except OSError as exc:
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

    @property
    def location(self) -> str:
        """The file's path, for messages."""
        return str(self.path)

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
        with self._lock, self._damage_reported():
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    @contextmanager
    def _damage_reported(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            if is_damage(exc):
                raise damaged(self.path, exc) from None
            raise

    def put(
        self, submission_id: str, bundle: JSON, server_url: str, *, lease_seconds: float | None = None
    ) -> OutboxEntry:
        """Store ``bundle`` as pending for ``server_url``; returns once it is on disk.

        Keyed on the plan key (the submission scoped by the bundle's patient): the same submission for the
        same patient and server again replaces the bundle of its one entry (keeping
        its place in the queue), raises its ``revision`` and makes it pending again, also when an earlier
        version was delivered. The same submission for another patient, or for another server, is another entry. With
        ``lease_seconds`` the entry is claimed for this process at once (it is about to send it).
        """
        if not submission_id:
            raise InputError("A submission id is needed to keep the outbox free of duplicates.")
        text = json.dumps(bundle, ensure_ascii=False, separators=(",", ":"))
        key = plan_key(submission_id, bundle)
        now = _now()
        owner, until = (None, None) if lease_seconds is None else (self.owner, _now(lease_seconds))
        with self._write() as db:
            db.execute(
                """
                INSERT INTO outbox (plan_key, submission_id, server_url, status, bundle, created_at,
                                    updated_at, lease_owner, lease_until)
                VALUES (?, ?, ?, 'pending', ?, ?, ?, ?, ?)
                ON CONFLICT (server_url, plan_key) DO UPDATE SET
                    revision = revision + 1, status = 'pending', bundle = excluded.bundle,
                    attempts = 0, last_error = NULL, updated_at = excluded.updated_at,
                    delivered_at = NULL, response_summary = NULL,
                    lease_owner = excluded.lease_owner, lease_until = excluded.lease_until
                """,
                (key, submission_id, server_url, text, now, now, owner, until),
            )
            row = db.execute(
                f"SELECT {_COLUMNS} FROM outbox WHERE server_url = ? AND plan_key = ?",  # noqa: S608
                (server_url, key),
            ).fetchone()
        log.info("outbox: stored submission %s as pending", submission_id)
        return _entry(row)

    def get(self, key: str, server_url: str | None = None) -> OutboxEntry | None:
        """The entry of plan ``key`` or of a submission id (for ``server_url``; without it the oldest for any
        server), or None. Raises :class:`SharedSubmission` for a submission id of several patients' plans."""
        where, values = self._key(key, server_url)
        rows = self._select(f"{where} ORDER BY seq LIMIT 1", values)
        return rows[0] if rows else None

    def queue(self, server_url: str | None = None) -> builtins.list[OutboxEntry]:
        """Pending entries (for ``server_url``, or all), oldest first, *without* their bundles: what a flush
        goes through, claiming each (:meth:`claim`) before it reads the bundle."""
        where = "WHERE status = 'pending'" + ("" if server_url is None else " AND server_url = ?")
        values = () if server_url is None else (server_url,)
        return self._select(f"{where} ORDER BY seq", values, bundles=False)

    def claim(self, key: str, server_url: str, lease_seconds: float = LEASE_SECONDS) -> OutboxEntry | None:
        """Lease the pending entry to this process and return it with its bundle; None when it is not
        pending, or another live process holds an unexpired lease on it. Raises :class:`OutboxDamaged` when
        its bundle cannot be read (the caller sets it aside with :meth:`mark_damaged`)."""
        where, values = self._key(key, server_url)
        now = _now()
        with self._write() as db:
            row = db.execute(
                f"SELECT status, lease_owner, lease_until FROM outbox {where}",  # noqa: S608
                values,
            ).fetchone()
            if row is None or row[0] != "pending":
                return None
            owner, until = row[1], row[2]
            if owner and owner != self.owner and until and until > now and _alive(owner):
                return None
            db.execute(
                f"UPDATE outbox SET lease_owner = ?, lease_until = ? {where}",  # noqa: S608
                (self.owner, _now(lease_seconds), *values),
            )
            found = db.execute(f"SELECT {_COLUMNS} FROM outbox {where}", values).fetchone()  # noqa: S608
        return _entry(found)

    def release(self, key: str, server_url: str) -> None:
        """Give up this process's lease on the entry (nothing else changes)."""
        where, values = self._key(key, server_url)
        with self._write() as db:
            db.execute(
                f"UPDATE outbox SET lease_owner = NULL, lease_until = NULL {where} AND lease_owner = ?",  # noqa: S608
                (*values, self.owner),
            )

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

    def counts(self, server_url: str | None = None) -> dict[str, int]:
        """How many entries per status (for ``server_url``, or all; an SQL count: no bundle is read)."""
        out: dict[str, int] = dict.fromkeys(STATUSES, 0)
        where = "" if server_url is None else "WHERE server_url = ?"
        query = f"SELECT status, COUNT(*) FROM outbox {where} GROUP BY status"  # noqa: S608
        with self._lock, self._damage_reported():
            for status, n in self._conn.execute(query, () if server_url is None else (server_url,)):
                out[status] = n
        return out

    def list(self, status: Status | None = None) -> builtins.list[OutboxEntry]:
        """All entries (or those with ``status``), oldest first, without their bundles (see :meth:`get`)."""
        if status is None:
            return self._select("ORDER BY seq", (), bundles=False)
        return self._select("WHERE status = ? ORDER BY seq", (status,), bundles=False)

    def mark_delivered(
        self,
        key: str,
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
            key,
            server_url,
            revision,
            "status = 'delivered', bundle = NULL, delivered_at = ?, updated_at = ?, response_summary = ?, "
            "last_error = NULL, lease_owner = NULL, lease_until = NULL",
            (now, now, json.dumps(response_summary, ensure_ascii=False)),
        )
        if done:
            log.info("outbox: plan %s delivered", key)
        return done

    def record_failure(
        self, key: str, reason: str, *, server_url: str | None = None, revision: int | None = None
    ) -> bool:
        """Count a failed attempt; the entry stays pending. ``reason`` must hold no personal data.

        With ``revision``: False (nothing changed) when the entry has a newer revision by now.
        """
        return self._update(
            key,
            server_url,
            revision,
            "attempts = attempts + 1, last_error = ?, updated_at = ?, lease_owner = NULL, lease_until = NULL",
            (reason[:REASON_MAX], _now()),
        )

    def mark_rejected(
        self, key: str, reason: str, *, server_url: str | None = None, revision: int | None = None
    ) -> bool:
        """The server refused its content (or policy did): it leaves the queue but keeps its bundle for review.

        :meth:`requeue` or resubmitting the same submission id (:meth:`put`) makes it pending again;
        :meth:`remove` or :meth:`purge` discards it. With ``revision``: False (nothing changed) when the
        entry has a newer revision by now, which stays pending.
        """
        return self._update(
            key,
            server_url,
            revision,
            "status = 'rejected', attempts = attempts + 1, last_error = ?, updated_at = ?, "
            "lease_owner = NULL, lease_until = NULL",
            (reason[:REASON_MAX], _now()),
        )

    def mark_damaged(self, key: str, server_url: str) -> bool:
        """Set a pending entry whose bundle cannot be read aside (status ``damaged``), so the rest is sent.

        Its bytes are kept for ``outbox check`` / ``outbox export``; nothing is sent from it.
        """
        return self._update(
            key,
            server_url,
            None,
            "status = 'damaged', last_error = 'OutboxDamaged: the stored bundle cannot be read', "
            "updated_at = ?, lease_owner = NULL, lease_until = NULL",
            (_now(),),
        )

    def requeue(self, key: str, server_url: str | None = None) -> int:
        """Make the rejected entries of plan ``key`` or of a submission id (for ``server_url``, or any) pending
        again; how many. Raises :class:`SharedSubmission` for a submission id of several patients' plans."""
        where, values = self._key(key, server_url)
        with self._write() as db:
            cur = db.execute(
                f"UPDATE outbox SET status = 'pending', revision = revision + 1, updated_at = ? "  # noqa: S608
                f"{where} AND status = 'rejected' AND bundle IS NOT NULL",
                (_now(), *values),
            )
        return cur.rowcount

    def remove(self, key: str, server_url: str | None = None) -> bool:
        """Delete the entry (entries, without ``server_url``) of plan ``key`` or of a submission id and its
        bundle for good; True if there was one."""
        where, values = self._key(key, server_url)
        with self._write() as db:
            cur = db.execute(f"DELETE FROM outbox {where}", values)  # noqa: S608 - fixed fragments only
        return cur.rowcount > 0

    def purge(
        self, status: Literal["delivered", "rejected", "damaged"], older_than_days: float | None = None
    ) -> int:
        """Delete entries with ``status`` (last changed more than ``older_than_days`` ago); how many.

        Pending entries are never purged: they are plans not yet on the server.
        """
        if status not in ("delivered", "rejected", "damaged"):
            raise InputError(
                "Only delivered, rejected or damaged entries can be purged; pending plans are kept."
            )
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
        plan: str,
        server_url: str | None,
        revision: int | None,
        assignments: str,
        values: tuple[Any, ...],
    ) -> bool:
        where, key = self._key(plan, server_url)
        found_where, found_key = where, key
        where += " AND status = 'pending'"  # nothing leaves delivered (or rejected) but a new put/requeue
        if revision is not None:
            where += " AND revision = ?"
            key = (*key, revision)
        with self._write() as db:
            cur = db.execute(
                f"UPDATE outbox SET {assignments} {where}",  # noqa: S608 - fixed fragments only
                (*values, *key),
            )
            if cur.rowcount == 0:
                query = f"SELECT 1 FROM outbox {found_where}"  # noqa: S608 - fixed fragments only
                if db.execute(query, found_key).fetchone():
                    return False  # a newer revision (it stays pending), or already settled by another sender
        if cur.rowcount == 0:
            raise InputError(f"The outbox has no submission or plan key {plan!r}.")
        return True

    def _key(self, key: str, server_url: str | None) -> tuple[str, tuple[Any, ...]]:
        """The WHERE clause for one plan: ``key`` is its plan key, or a submission id that names one plan."""
        with self._lock, self._damage_reported():
            found = resolve_key(self._conn, key, server_url)
        if server_url is None:
            return "WHERE plan_key = ?", (found,)
        return "WHERE plan_key = ? AND server_url = ?", (found, server_url)

    def _select(
        self, where: str, values: tuple[Any, ...], *, bundles: bool = True
    ) -> builtins.list[OutboxEntry]:
        columns = _COLUMNS if bundles else _COLUMNS.replace("bundle,", "NULL,")
        with self._lock, self._damage_reported():
            query = f"SELECT {columns} FROM outbox {where}"  # noqa: S608 - fixed fragments only
            rows = self._conn.execute(query, values).fetchall()
        return [_entry(r) for r in rows]


def _alive(owner: str) -> bool:
    """False when ``owner`` (``host:pid:nonce``) is a process on this host that no longer exists."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return True  # another machine's: only its lease's expiry can tell
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by another user
    return True
