"""Getting plans out of a damaged outbox: ``outbox check`` (what is readable) and ``outbox export``.

Both read the file read-only, row by row, so one unreadable page or row costs only what is on it. ``export``
copies every readable plan that is not yet delivered (pending, rejected or set aside with a readable bundle)
into a *new* outbox file, which ``outbox flush`` then delivers; the damaged file is never written to.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fhir_safetyplan.errors import ConfigError

#: rows probed by seq when the table cannot even be listed (damaged index or table pages)
_PROBE_LIMIT = 100_000


@dataclass
class Report:
    """What a read of an outbox file found (counts and submission ids only: no personal data)."""

    #: the outbox read: a file, or a PostgreSQL outbox named without its password
    path: Path | str
    integrity: str = "not checked"
    #: readable rows per status
    readable: dict[str, int] = field(default_factory=dict)
    #: rows (seq, or a description) that could not be read
    unreadable: list[str] = field(default_factory=list)
    exported: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "outbox": str(self.path),
            "integrity": self.integrity,
            "readable": self.readable,
            "unreadable": self.unreadable,
            "exported": self.exported,
        }

    @property
    def damaged(self) -> bool:
        """True when anything in the file could not be read."""
        return self.integrity != "ok" or bool(self.unreadable)


def _connect(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise ConfigError(f"There is no outbox file at {path}.")
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)


def _seqs(conn: sqlite3.Connection, report: Report) -> list[int]:
    try:
        return [r[0] for r in conn.execute("SELECT seq FROM outbox ORDER BY seq")]
    except sqlite3.Error:
        pass
    try:  # the listing failed: probe every seq ever given out, one row at a time
        top = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").fetchone()
    except sqlite3.Error:
        report.unreadable.append("the list of entries (no row could be located)")
        return []
    return list(range(1, min(int(top[0]) if top else 0, _PROBE_LIMIT) + 1))


def _rows(conn: sqlite3.Connection, report: Report) -> Iterator[tuple[Any, ...]]:
    """Each readable row as (submission_id, server_url, status, bundle or None, last_error); unreadable ones
    noted."""
    missing = 0
    for seq in _seqs(conn, report):
        try:
            row = conn.execute(
                "SELECT submission_id, server_url, status, bundle, last_error FROM outbox WHERE seq = ?",
                (seq,),
            ).fetchone()
        except sqlite3.Error:
            report.unreadable.append(f"seq {seq}")
            continue
        if row is None:
            missing += 1
            continue
        bundle = None
        if row[3]:
            try:
                bundle = json.loads(row[3])
            except (ValueError, RecursionError):
                report.unreadable.append(f"seq {seq} (submission {row[0]}): bundle")
                continue
        report.readable[row[2]] = report.readable.get(row[2], 0) + 1
        yield row[0], row[1], row[2], bundle, row[4]


def check(path: Path) -> Report:
    """Read every row of the outbox at ``path`` (read-only) and report what is readable."""
    report = Report(path)
    try:
        with closing(_connect(path)) as conn:
            try:
                report.integrity = str(conn.execute("PRAGMA integrity_check(20)").fetchone()[0])
            except sqlite3.Error as exc:
                report.integrity = f"unreadable ({exc})"
            for _ in _rows(conn, report):
                pass
    except sqlite3.Error as exc:
        report.integrity = f"unreadable ({exc})"
    return report


def readable_count(path: Path) -> int | None:
    """How many plans not yet delivered can still be read from ``path`` (None if none can be told)."""
    try:
        report = check(path)
    except ConfigError:
        return None
    if not report.readable and report.integrity.startswith("unreadable"):
        return None
    return sum(n for status, n in report.readable.items() if status != "delivered")


def rows_of(path: Path, report: Report) -> Iterator[tuple[Any, ...]]:
    """Every readable row of the SQLite outbox at ``path`` (read-only), as :func:`_rows` gives them; the file's
    integrity is recorded on ``report`` first."""
    with closing(_connect(path)) as conn:
        try:
            report.integrity = str(conn.execute("PRAGMA integrity_check(20)").fetchone()[0])
        except sqlite3.Error as exc:
            report.integrity = f"unreadable ({exc})"
        yield from _rows(conn, report)


def export(path: Path, to: Path) -> Report:
    """Copy every readable, undelivered plan of ``path`` into a new outbox at ``to`` (see
    :func:`fhir_safetyplan.delivery.outbox_transfer.export`, which also takes PostgreSQL on either side)."""
    from fhir_safetyplan.delivery.outbox_transfer import export as export_any

    return export_any(path, to)
