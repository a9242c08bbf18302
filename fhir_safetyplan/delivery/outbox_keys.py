"""The outbox's key for a plan: the sender's submission id *scoped by the patient*.

Senders number their messages themselves, and two of them (or one that reuses a number) can give the same
submission id to plans for two patients. Keyed on the submission id alone, the second plan would replace the
first one's queued bundle and a plan would be lost. Keyed on :func:`plan_key` (the same scope every server id
of the plan is derived from, :func:`fhir_safetyplan.ids.plan_scope`), two patients' plans never share an
outbox entry, and the same submission for the same patient still updates its one entry.
"""

from __future__ import annotations

from typing import Any, Protocol

from fhir_safetyplan.errors import InputError
from fhir_safetyplan.ids import plan_scope

__all__ = ["SharedSubmission", "bundle_subject", "plan_key", "resolve_key"]


class SharedSubmission(InputError):
    """A submission id that names plans for several patients was given where one entry is meant."""


def bundle_subject(bundle: Any) -> Any:
    """The patient a transaction Bundle documents: the QuestionnaireResponse's ``subject`` (else the first
    entry's resource that has one); None when it names none."""
    entries = bundle.get("entry") if isinstance(bundle, dict) else None
    if not isinstance(entries, list):
        return None
    resources: list[dict[str, Any]] = [
        e["resource"]
        for e in entries
        if isinstance(e, dict)
        and isinstance(e.get("resource"), dict)
        and isinstance(e["resource"].get("subject"), dict)
    ]
    for resource in resources:
        if resource.get("resourceType") == "QuestionnaireResponse":
            return resource["subject"]
    return resources[0]["subject"] if resources else None


def plan_key(submission_id: str, bundle: Any) -> str:
    """The outbox key of ``bundle`` sent as ``submission_id``: stable for the same submission and patient,
    different for another patient (a hash: it reveals neither)."""
    return plan_scope(submission_id, bundle_subject(bundle))


class _Database(Protocol):
    """A DB-API connection (sqlite3's, psycopg's): ``execute`` returns a cursor."""

    def execute(self, query: Any, params: Any = ..., /) -> Any: ...


def resolve_key(
    conn: _Database, key: str, server_url: str | None, *, table: str = "outbox", mark: str = "?"
) -> str:
    """The plan key meant by ``key``: itself when an entry has that plan key, else the one plan key of the
    entries with that submission id (``key`` when there is none). Raises :class:`SharedSubmission` when the
    submission id names plans for several patients: which one is meant must be said by its plan key.

    ``table`` and ``mark`` (the parameter placeholder: ``?`` for sqlite3, ``%s`` for psycopg) are fixed by
    the store, never taken from input."""
    where = "" if server_url is None else f" AND server_url = {mark}"
    extra: tuple[str, ...] = () if server_url is None else (server_url,)
    query = f"SELECT 1 FROM {table} WHERE plan_key = {mark}{where} LIMIT 1"  # noqa: S608 - fixed fragments
    if conn.execute(query, (key, *extra)).fetchone():
        return key
    query = (
        f"SELECT plan_key FROM {table} WHERE submission_id = {mark}{where} "  # noqa: S608 - fixed fragments
        "GROUP BY plan_key ORDER BY MIN(seq)"
    )
    keys = [str(r[0]) for r in conn.execute(query, (key, *extra))]
    if len(keys) > 1:
        raise SharedSubmission(
            f"Submission {key} names plans for {len(keys)} different patients in this outbox (their senders "
            "gave them the same submission id); say which one by its plan key instead of the submission id. "
            f"The plan keys, oldest first: {', '.join(keys)} ('safetyplan outbox list' shows each entry's "
            "planKey beside its submissionId)."
        )
    return keys[0] if keys else key
