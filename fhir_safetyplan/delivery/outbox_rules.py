"""The one outbox interface, :class:`OutboxStore`, with the rules both stores follow written once in it.

Each store supplies only its database's mechanics. :class:`OutboxStore` holds what every store promises
(:mod:`fhir_safetyplan.delivery.store` states the guarantees): finding one plan by its plan key or a submission id, the queue and listings, and the outcomes (delivered / failed / rejected /
damaged) recorded compare-and-set on a pending entry only, each ending the entry's lease. A store says how
it reads and writes (:meth:`OutboxStore._read`, :meth:`OutboxStore._write`), how it stamps the time
(:meth:`OutboxStore._stamp`: a value from this host for SQLite, the database's ``now()`` for PostgreSQL), its
table and parameter mark, and how a row becomes an :class:`~fhir_safetyplan.delivery.store.OutboxEntry`.
What stays in each store is where the two databases differ: opening, schema, ``put`` (an upsert in each
dialect), ``claim`` (a live-pid check against row locks), ``purge`` (time arithmetic).
"""

from __future__ import annotations

import builtins
import json
import logging
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from typing import Any, ClassVar, Literal, Self

from fhir_safetyplan.delivery.outbox_keys import plan_key, resolve_key
from fhir_safetyplan.delivery.store import COLUMNS, LEASE_SECONDS, REASON_MAX, STATUSES, OutboxEntry, Status
from fhir_safetyplan.errors import JSON, InputError

__all__ = ["UNLEASE", "OutboxStore", "check_purgeable", "prepare_put"]

log = logging.getLogger("fhir_safetyplan.delivery.outbox")

#: what ends a lease on an entry: its outcome (every outcome clears it) or a release
UNLEASE = "lease_owner = NULL, lease_until = NULL"
PURGEABLE = ("delivered", "rejected", "damaged")


def prepare_put(submission_id: str, bundle: JSON) -> tuple[str, str]:
    """The plan key and the stored text of ``bundle``; an InputError without a submission id."""
    if not submission_id:
        raise InputError("A submission id is needed to keep the outbox free of duplicates.")
    return plan_key(submission_id, bundle), json.dumps(bundle, ensure_ascii=False, separators=(",", ":"))


def check_purgeable(status: str) -> None:
    """Pending entries are never purged: they are plans not yet on the server."""
    if status not in PURGEABLE:
        raise InputError("Only delivered, rejected or damaged entries can be purged; pending plans are kept.")


class OutboxStore(ABC):
    """An outbox: what delivery, flushing, the service and the ``outbox`` commands need of one. The methods
    written here are the same rule in every store; the abstract ones are each store's own."""

    #: the table and the parameter placeholder (``?`` for sqlite3, ``%s`` for psycopg); fixed, never input
    _table: ClassVar[str]
    _mark: ClassVar[str]
    #: this process's name on its leases (``host:pid:nonce``)
    owner: str
    #: how long this process's claims last unless their outcome is recorded first
    lease_seconds: float

    @property
    @abstractmethod
    def location(self) -> str:
        """Where it is, safe to print and log (a path, or a URL without its password)."""

    @abstractmethod
    def close(self) -> None:
        """Close the database connection."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @abstractmethod
    def put(
        self, submission_id: str, bundle: JSON, server_url: str, *, lease_seconds: float | None = None
    ) -> OutboxEntry:
        """Store ``bundle`` pending for ``server_url`` (a new revision when the plan is already there)."""

    @abstractmethod
    def claim(self, key: str, server_url: str, lease_seconds: float = LEASE_SECONDS) -> OutboxEntry | None:
        """Lease the pending entry to this process and return it with its bundle; None when it is not pending
        or another live process holds it."""

    @abstractmethod
    def purge(
        self, status: Literal["delivered", "rejected", "damaged"], older_than_days: float | None = None
    ) -> int:
        """Remove the entries in ``status`` (last changed more than ``older_than_days`` ago); how many."""

    @abstractmethod
    def _read(self) -> AbstractContextManager[Any]:
        """The connection for reading, its errors made into the store's own."""

    @abstractmethod
    def _write(self) -> AbstractContextManager[Any]:
        """The connection inside one write transaction, committed on leaving it."""

    @abstractmethod
    def _stamp(self) -> tuple[str, tuple[Any, ...]]:
        """The SQL for "now" and its values (``?`` with this host's time, or ``now()`` with none)."""

    @abstractmethod
    def _entry(self, row: Any) -> OutboxEntry:
        """An entry from a row of :data:`~fhir_safetyplan.delivery.store.COLUMNS`."""

    # ---- finding entries ------------------------------------------------------------------------

    def get(self, key: str, server_url: str | None = None) -> OutboxEntry | None:
        """The entry of plan ``key`` or of a submission id (for ``server_url``; without it the oldest for any
        server), or None. Raises :class:`SharedSubmission` for a submission id of several patients' plans."""
        where, values = self._key(key, server_url)
        rows = self._select(f"{where} ORDER BY seq LIMIT 1", values)
        return rows[0] if rows else None

    def queue(self, server_url: str | None = None) -> builtins.list[OutboxEntry]:
        """Pending entries (for ``server_url``, or all), oldest first, *without* their bundles: what a flush
        goes through, claiming each (``claim``) before it reads the bundle."""
        where, values = self._pending_where(server_url)
        return self._select(f"{where} ORDER BY seq", values, bundles=False)

    def pending(self, server_url: str | None = None) -> builtins.list[OutboxEntry]:
        """Entries still to deliver (for ``server_url``, or all), oldest first (FIFO), with their bundles."""
        where, values = self._pending_where(server_url)
        return self._select(f"{where} ORDER BY seq", values)

    def pending_servers(self) -> builtins.list[str]:
        """The servers that pending entries are bound for, in queue order."""
        query = f"SELECT server_url FROM {self._table} WHERE status = 'pending' GROUP BY server_url ORDER BY MIN(seq)"  # noqa: S608
        with self._read() as db:
            rows = db.execute(query).fetchall()
        return [r[0] for r in rows]

    def counts(self, server_url: str | None = None) -> dict[str, int]:
        """How many entries per status (for ``server_url``, or all; an SQL count: no bundle is read)."""
        out: dict[str, int] = dict.fromkeys(STATUSES, 0)
        where = "" if server_url is None else f"WHERE server_url = {self._mark}"
        query = f"SELECT status, COUNT(*) FROM {self._table} {where} GROUP BY status"  # noqa: S608
        with self._read() as db:
            rows = db.execute(query, () if server_url is None else (server_url,)).fetchall()
        for status, n in rows:
            out[status] = int(n)
        return out

    def list(self, status: Status | None = None) -> builtins.list[OutboxEntry]:
        """All entries (or those with ``status``), oldest first, without their bundles (see :meth:`get`)."""
        if status is None:
            return self._select("ORDER BY seq", (), bundles=False)
        return self._select(f"WHERE status = {self._mark} ORDER BY seq", (status,), bundles=False)

    # ---- leases and outcomes (compare-and-set on a pending entry) ---------------------------------

    def release(self, key: str, server_url: str) -> None:
        """Give up this process's lease on the entry (nothing else changes)."""
        where, values = self._key(key, server_url)
        with self._write() as db:
            db.execute(
                f"UPDATE {self._table} SET {UNLEASE} {where} AND lease_owner = {self._mark}",  # noqa: S608
                (*values, self.owner),
            )

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
        revision was queued meanwhile (that one stays pending and is sent next) or another sender settled it.
        """
        now, at = self._stamp()
        done = self._update(
            key,
            server_url,
            revision,
            f"status = 'delivered', bundle = NULL, delivered_at = {now}, updated_at = {now}, "
            f"response_summary = {self._mark}, last_error = NULL, {UNLEASE}",
            (*at, *at, json.dumps(response_summary, ensure_ascii=False)),
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
        now, at = self._stamp()
        return self._update(
            key,
            server_url,
            revision,
            f"attempts = attempts + 1, last_error = {self._mark}, updated_at = {now}, {UNLEASE}",
            (reason[:REASON_MAX], *at),
        )

    def mark_rejected(
        self, key: str, reason: str, *, server_url: str | None = None, revision: int | None = None
    ) -> bool:
        """The server refused its content (or policy did): it leaves the queue but keeps its bundle for review.

        :meth:`requeue` or resubmitting the same submission id (``put``) makes it pending again;
        :meth:`remove` or ``purge`` discards it. With ``revision``: False (nothing changed) when the
        entry has a newer revision by now, which stays pending.
        """
        now, at = self._stamp()
        return self._update(
            key,
            server_url,
            revision,
            f"status = 'rejected', attempts = attempts + 1, last_error = {self._mark}, updated_at = {now}, "
            f"{UNLEASE}",
            (reason[:REASON_MAX], *at),
        )

    def mark_damaged(self, key: str, server_url: str) -> bool:
        """Set a pending entry whose bundle cannot be read aside (status ``damaged``), so the rest is sent.

        Its bytes are kept for ``outbox check`` / ``outbox export``; nothing is sent from it.
        """
        now, at = self._stamp()
        return self._update(
            key,
            server_url,
            None,
            "status = 'damaged', last_error = 'OutboxDamaged: the stored bundle cannot be read', "
            f"updated_at = {now}, {UNLEASE}",
            at,
        )

    def requeue(self, key: str, server_url: str | None = None) -> int:
        """Make the rejected entries of plan ``key`` or of a submission id (for ``server_url``, or any) pending
        again; how many. Raises :class:`SharedSubmission` for a submission id of several patients' plans."""
        where, values = self._key(key, server_url)
        now, at = self._stamp()
        with self._write() as db:
            cur = db.execute(
                f"UPDATE {self._table} SET status = 'pending', revision = revision + 1, "  # noqa: S608
                f"updated_at = {now} {where} AND status = 'rejected' AND bundle IS NOT NULL",
                (*at, *values),
            )
        return int(cur.rowcount)

    def remove(self, key: str, server_url: str | None = None) -> bool:
        """Delete the entry (entries, without ``server_url``) of plan ``key`` or of a submission id and its
        bundle for good; True if there was one."""
        where, values = self._key(key, server_url)
        with self._write() as db:
            cur = db.execute(f"DELETE FROM {self._table} {where}", values)  # noqa: S608 - fixed fragments
        return bool(cur.rowcount > 0)

    def _purge(
        self, status: Literal["delivered", "rejected", "damaged"], older: str, values: tuple[Any, ...]
    ) -> int:
        """Delete entries with ``status`` (and the store's ``older`` condition on ``updated_at``); how many."""
        check_purgeable(status)
        where = f"WHERE status = {self._mark}{older}"
        with self._write() as db:
            cur = db.execute(f"DELETE FROM {self._table} {where}", (status, *values))  # noqa: S608
        return int(cur.rowcount)

    # ---- the mechanics the rules share ----------------------------------------------------------

    def _update(
        self,
        plan: str,
        server_url: str | None,
        revision: int | None,
        assignments: str,
        values: tuple[Any, ...],
    ) -> bool:
        """Record an outcome on the pending entry (at ``revision``, when given): True if done; False when a
        newer revision or another sender's outcome is there by now; an InputError when there is no entry."""
        where, key = self._key(plan, server_url)
        # nothing leaves delivered (or rejected) but a new put/requeue
        condition, condition_key = where + " AND status = 'pending'", key
        if revision is not None:
            condition += f" AND revision = {self._mark}"
            condition_key = (*key, revision)
        with self._write() as db:
            cur = db.execute(
                f"UPDATE {self._table} SET {assignments} {condition}",  # noqa: S608 - fixed fragments only
                (*values, *condition_key),
            )
            if cur.rowcount == 0:
                query = f"SELECT 1 FROM {self._table} {where}"  # noqa: S608 - fixed fragments only
                if db.execute(query, key).fetchone():
                    return False  # a newer revision (it stays pending), or already settled by another sender
        if cur.rowcount == 0:
            raise InputError(f"The outbox has no submission or plan key {plan!r}.")
        return True

    def _key(self, key: str, server_url: str | None) -> tuple[str, tuple[Any, ...]]:
        """The WHERE clause for one plan: ``key`` is its plan key, or a submission id that names one plan."""
        with self._read() as db:
            found = resolve_key(db, key, server_url, table=self._table, mark=self._mark)
        if server_url is None:
            return f"WHERE plan_key = {self._mark}", (found,)
        return f"WHERE plan_key = {self._mark} AND server_url = {self._mark}", (found, server_url)

    def _pending_where(self, server_url: str | None) -> tuple[str, tuple[Any, ...]]:
        if server_url is None:
            return "WHERE status = 'pending'", ()
        return f"WHERE status = 'pending' AND server_url = {self._mark}", (server_url,)

    def _select(
        self, where: str, values: tuple[Any, ...], *, bundles: bool = True
    ) -> builtins.list[OutboxEntry]:
        columns = COLUMNS if bundles else COLUMNS.replace("bundle,", "NULL,")
        query = f"SELECT {columns} FROM {self._table} {where}"  # noqa: S608 - fixed fragments only
        with self._read() as db:
            rows = db.execute(query, values).fetchall()
        return [self._entry(r) for r in rows]
