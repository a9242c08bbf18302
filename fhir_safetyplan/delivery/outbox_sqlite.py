"""The outbox's SQLite file: creating it privately, refusing what is not ours, its schema, and damage.

This is the SQLite-specific layer under :class:`fhir_safetyplan.delivery.outbox.Outbox` (PostgreSQL's is
:mod:`fhir_safetyplan.delivery.outbox_postgres`): a new file is created with mode 0600 before SQLite opens it; an existing path is used only when it
is an SQLite file with no tables but ours, and only then narrowed to 0600; the schema is created or migrated
under the write lock; and SQLite's "malformed" / "not a database" becomes :class:`OutboxDamaged` (exit 7),
saying how many plans can still be read and how to get them out.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import stat
import time
from pathlib import Path

from fhir_safetyplan.errors import ConfigError, SafetyPlanError
from fhir_safetyplan.outcomes import Kind

log = logging.getLogger("fhir_safetyplan.delivery.outbox")

_SQLITE_MAGIC = b"SQLite format 3\x00"
SCHEMA_VERSION = 4

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    plan_key         TEXT NOT NULL,
    submission_id    TEXT NOT NULL,
    server_url       TEXT NOT NULL,
    revision         INTEGER NOT NULL DEFAULT 1,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'rejected', 'damaged')),
    bundle           TEXT,
    attempts         INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    delivered_at     TEXT,
    response_summary TEXT,
    lease_owner      TEXT,
    lease_until      TEXT,
    UNIQUE (server_url, plan_key)
);
CREATE INDEX IF NOT EXISTS outbox_status ON outbox (status, seq);
CREATE INDEX IF NOT EXISTS outbox_submission ON outbox (submission_id);
"""

# An older table (version 1: ``submission_id UNIQUE``, no revision; 2: no leases, three statuses; 3: keyed
# on (server, submission) without the patient) is renamed and its rows copied into the current one, each
# keyed on its plan key (computed from its bundle by ``plan_key_of``).
_RENAME_OLD = """
ALTER TABLE outbox RENAME TO outbox_old;
DROP INDEX IF EXISTS outbox_status;
DROP INDEX IF EXISTS outbox_submission;
"""
_COPY_OLD = """
INSERT INTO outbox (seq, plan_key, submission_id, server_url, revision, status, bundle, attempts, last_error,
                    created_at, updated_at, delivered_at, response_summary, lease_owner, lease_until)
    SELECT seq, plan_key_of(submission_id, bundle), submission_id, server_url, {revision}, status, bundle,
           attempts, last_error, created_at, updated_at, delivered_at, response_summary, {lease} FROM outbox_old;
DROP TABLE outbox_old;
"""


def _plan_key_of(submission_id: str, bundle: str | None) -> str:
    """The plan key of an old row: from its bundle's patient; a row without a readable bundle (delivered,
    damaged) keeps a key of its submission alone (it was unique on that in the old schema)."""
    from fhir_safetyplan.delivery.outbox_keys import plan_key

    try:
        parsed = json.loads(bundle) if bundle else None
    except (ValueError, RecursionError):
        parsed = None
    return plan_key(submission_id, parsed)


class OutboxDamaged(SafetyPlanError):
    """The outbox file (or a row in it) cannot be read. Says what, how many plans, and how to get them out."""

    kind = Kind.DAMAGED


def create_private_file(path: Path) -> bool:
    """Create ``path`` with mode 0600 (True), or check that the existing file may be an outbox (False).

    Nothing that is not an outbox is touched: a directory, or a file that is not SQLite, is refused.
    """
    if path.is_dir():
        raise ConfigError(f"--outbox {path} is a directory; give the path of the outbox file inside it.")
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700, exist_ok=True)  # another process may make it too
    if path.exists() and not path.is_file():
        raise ConfigError(
            f"--outbox {path} is not a regular file (a device or pipe?); give an outbox file path."
        )
    if path.exists():
        with path.open("rb") as f:
            head = f.read(len(_SQLITE_MAGIC))
        if head and head != _SQLITE_MAGIC:
            raise ConfigError(
                f"--outbox {path} is an existing file that is not an outbox (not SQLite); it was left as it "
                "is. Give the path of an outbox file, or a new one."
            )
        return False
    # Created with 0600 before SQLite opens it, so there is no moment when others could read it.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        # Another process created it between our check and now (two replicas starting on a new outbox): it
        # is theirs, made the same way; check it as an existing one.
        return create_private_file(path)
    os.close(fd)
    return True


def use_wal(conn: sqlite3.Connection, wait: float = 30.0) -> str:
    """Switch the file to write-ahead logging; the journal mode in effect.

    SQLite answers "database is locked" at once, without its busy timeout, when another process is switching
    the same new file at that moment (replicas starting together): try again until ``wait`` seconds have passed.
    """
    deadline = time.monotonic() + wait
    while True:
        try:
            return str(conn.execute("PRAGMA journal_mode=WAL").fetchone()[0])
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def narrow_mode(path: Path) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("outbox file was readable by other users (mode %o); narrowing it to 600", mode)
        os.chmod(path, 0o600)


def damaged(path: Path, exc: BaseException) -> OutboxDamaged:
    """The error for an outbox SQLite cannot read: what, how many plans it holds (as far as readable), what to do."""
    from fhir_safetyplan.delivery.outbox_repair import readable_count

    held = readable_count(path)
    plans = (
        f"{held} plan(s) not yet delivered can still be read from it"
        if held is not None
        else "how many plans it holds cannot be read"
    )
    message = (
        f"The outbox {path} is damaged ({type(exc).__name__}: {exc}); {plans}. Nothing was sent from it. "
        f"See what is readable with 'safetyplan outbox check --outbox {path}', copy every readable plan into "
        f"a new outbox with 'safetyplan outbox export --outbox {path} --to NEW.sqlite', and flush that one. "
        "Keep the damaged file until then (it holds personal data: delete it securely afterwards)."
    )
    return OutboxDamaged(message)


def is_damage(exc: sqlite3.Error) -> bool:
    """SQLite's "malformed" / "not a database" (a plain DatabaseError), not a lock or a full disk."""
    return type(exc) is sqlite3.DatabaseError


def ensure_schema(conn: sqlite3.Connection, path: Path) -> None:
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise ConfigError(
            f"The outbox {path} was written by a newer fhir-safetyplan (schema {version}, this one knows "
            f"{SCHEMA_VERSION}): upgrade fhir-safetyplan, or deliver its plans with the newer version first."
        )
    if version == SCHEMA_VERSION:
        return
    if version == 0:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if tables - {"outbox", "sqlite_sequence"}:
            raise ConfigError(
                f"--outbox {path} is an SQLite database of something else (it has other tables); it was "
                "left as it is. Give the path of an outbox file, or a new one."
            )
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Re-read under the write lock: another process may have migrated it meanwhile.
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version < SCHEMA_VERSION:
            exists = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='outbox'"
            ).fetchone()
            columns = {r[1] for r in conn.execute("PRAGMA table_info(outbox)")} if exists else set()
            if exists and "plan_key" not in columns:
                log.info("outbox: migrating the file to schema %d", SCHEMA_VERSION)
                revision = "revision" if "revision" in columns else "1"
                lease = "lease_owner, lease_until" if "lease_owner" in columns else "NULL, NULL"
                conn.create_function("plan_key_of", 2, _plan_key_of, deterministic=True)
                script = _RENAME_OLD + _SCHEMA + _COPY_OLD.format(revision=revision, lease=lease)
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
