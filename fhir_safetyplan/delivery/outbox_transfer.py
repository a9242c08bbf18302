"""``outbox check`` on PostgreSQL, and ``outbox export`` between any two stores (SQLite file or PostgreSQL).

``check`` on a PostgreSQL outbox opens it (which checks its schema version and that the tables are ours) and
reads every row, saying how many per status are readable and which cannot be read (a bundle or an answer that
is not JSON). It never writes.

``export`` copies every readable plan not yet delivered into a *new* outbox: a file that does not exist yet,
or a PostgreSQL database whose outbox is empty. That is also how a hospital moves its queue from one store to
the other and back (SQLite → PostgreSQL when it grows to several replicas; PostgreSQL → an SQLite file to take
the queue elsewhere). Pending plans (and readable ones set aside as damaged) arrive pending; rejected ones stay
rejected with their reason, so a plan held for a person is still sent only after a person's ``outbox requeue``.
Delivered entries are not copied (they hold no plan, only the server's ids). The source is never written to:
stop its flushers and services first, or plans they send meanwhile are sent again from the copy (harmless,
every bundle is idempotent, but not needed).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fhir_safetyplan.delivery.outbox_repair import Report, rows_of
from fhir_safetyplan.delivery.outbox_repair import check as check_file
from fhir_safetyplan.delivery.store import OutboxSpec, OutboxUrl, open_outbox, outbox_spec
from fhir_safetyplan.errors import ConfigError

__all__ = ["check", "export"]


def _readable(text: str | None) -> tuple[bool, Any]:
    if not text:
        return True, None
    try:
        return True, json.loads(text)
    except (ValueError, RecursionError):
        return False, None


def _postgres_rows(url: OutboxUrl, report: Report) -> Iterator[tuple[Any, ...]]:
    """Each readable row of the PostgreSQL outbox as (submission_id, server_url, status, bundle, last_error)."""
    from fhir_safetyplan.delivery.outbox_postgres import PostgresOutbox

    with PostgresOutbox(url, create=False) as box:
        report.integrity = "ok"  # opening it checked the schema (version, our tables)
        for seq, submission_id, server_url, status, bundle, answer, last_error in box.raw_rows():
            ok_bundle, parsed = _readable(bundle)
            ok_answer, _ = _readable(answer)
            if not (ok_bundle and ok_answer):
                what = "bundle" if not ok_bundle else "server's answer"
                report.unreadable.append(f"seq {seq} (submission {submission_id}): {what}")
                continue
            report.readable[status] = report.readable.get(status, 0) + 1
            yield submission_id, server_url, status, parsed, last_error


def _rows(source: OutboxSpec, report: Report) -> Iterator[tuple[Any, ...]]:
    if isinstance(source, OutboxUrl):
        return _postgres_rows(source, report)
    return rows_of(source, report)


def check(value: str | Path | OutboxUrl) -> Report:
    """Read every row of the outbox ``value`` names (without writing) and report what is readable."""
    source = outbox_spec(value)
    if isinstance(source, Path):
        return check_file(source)
    report = Report(str(source))
    for _ in _rows(source, report):
        pass
    return report


def _new_target(source: OutboxSpec, to: OutboxSpec) -> Any:
    """The target outbox, opened: a file that did not exist, or an empty PostgreSQL outbox."""
    if isinstance(to, Path):
        if to.exists():
            raise ConfigError(f"--to {to} exists; export writes a new outbox file only.")
        if isinstance(source, Path) and to.resolve() == source.resolve():
            raise ConfigError("--to must be another file than the outbox exported.")
        return open_outbox(to)
    if isinstance(source, OutboxUrl) and source.url == to.url:
        raise ConfigError("--to must be another outbox than the one exported.")
    target = open_outbox(to)
    if any(target.counts().values()):
        target.close()
        raise ConfigError(
            f"--to {to} already holds an outbox with entries; export writes into a new, empty outbox only "
            "(give another database, or empty that one first)."
        )
    return target


def export(value: str | Path | OutboxUrl, to: str | Path | OutboxUrl) -> Report:
    """Copy every readable, undelivered plan of the outbox ``value`` into the new outbox ``to``."""
    source, target_spec = outbox_spec(value), outbox_spec(to)
    if isinstance(source, Path) and not source.is_file():
        raise ConfigError(f"There is no outbox file at {source}.")
    report = Report(source if isinstance(source, Path) else str(source))
    with _new_target(source, target_spec) as target:
        for submission_id, server_url, status, bundle, last_error in _rows(source, report):
            if status == "delivered" or not isinstance(bundle, dict):
                continue
            entry = target.put(submission_id, bundle, server_url)
            if status == "rejected":  # a person decides when it is sent again (outbox requeue)
                target.mark_rejected(
                    entry.plan_key, last_error or "rejected before the export", server_url=server_url
                )
            report.exported += 1
    return report
