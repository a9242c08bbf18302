"""The SQLite outbox (the embedded default): plans wait here until the FHIR server has acknowledged them.

One of the two stores behind :class:`fhir_safetyplan.delivery.outbox_rules.OutboxStore` (the other is PostgreSQL,
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
from typing import Any, Literal

from fhir_safetyplan.delivery.outbox_keys import SharedSubmission
from fhir_safetyplan.delivery.outbox_rules import OutboxStore, prepare_put
from fhir_safetyplan.delivery.outbox_sqlite import (
    OutboxDamaged,
    create_private_file,
    damaged,
    ensure_schema,
    is_damage,
    narrow_mode,
    use_wal,
)
from fhir_safetyplan.delivery.store import COLUMNS as _COLUMNS
from fhir_safetyplan.delivery.store import LEASE_SECONDS, STATUSES, OutboxEntry, Status, entry_from_row
from fhir_safetyplan.errors import JSON, ConfigError

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


class Outbox(OutboxStore):
    """The outbox at ``path`` (created if missing, mode 0600: it holds personal data).

    The rules (lookups, listings, outcomes) are :class:`~fhir_safetyplan.delivery.outbox_rules.OutboxStore`';
    this class holds the SQLite mechanics.

    Safe to use from several threads of one process and from several processes at once.
    """

    _table = "outbox"
    _mark = "?"

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
            mode = use_wal(conn)
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
        key, text = prepare_put(submission_id, bundle)
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
        return self._entry(row)

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
        return self._entry(found)

    def purge(
        self, status: Literal["delivered", "rejected", "damaged"], older_than_days: float | None = None
    ) -> int:
        """Delete entries with ``status`` (last changed more than ``older_than_days`` ago); how many.

        Pending entries are never purged: they are plans not yet on the server.
        """
        if older_than_days is None:
            return self._purge(status, "", ())
        cutoff = datetime.now(UTC) - timedelta(days=older_than_days)
        return self._purge(status, " AND updated_at < ?", (cutoff.isoformat(timespec="milliseconds"),))

    # ---- the mechanics the shared rules use -----------------------------------------------------

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._damage_reported():
            yield self._conn

    def _stamp(self) -> tuple[str, tuple[Any, ...]]:
        return "?", (_now(),)

    def _entry(self, row: Any) -> OutboxEntry:
        return entry_from_row(row)


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
