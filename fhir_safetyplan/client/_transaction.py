"""Pure helpers about transaction Bundles: is one safe to resend, and what did the server say about it."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from typing import Any

from fhir_safetyplan.errors import JSON

_SAFE_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE"})
#: HAPI's code for a ResourceVersionConflictException: two requests wrote the same rows at once
_RACING_WRITE = "HAPI-0550"


def is_idempotent_transaction(bundle: JSON) -> bool:
    """True when sending ``bundle`` twice leaves the server as sending it once.

    That holds when every entry is GET/HEAD/PUT/DELETE, or a POST with ``ifNoneExist`` (a conditional
    create: the second time it matches the first one's resource). A plain POST creates a new resource
    each time; PATCH is not idempotent in general. Only such bundles are retried after a lost answer.
    """
    if bundle.get("resourceType") != "Bundle" or bundle.get("type") not in ("transaction", "batch"):
        return False
    for entry in bundle.get("entry") or []:
        request = entry.get("request") if isinstance(entry, dict) else None
        if not isinstance(request, dict):
            return False
        method = str(request.get("method", "")).upper()
        if method in _SAFE_METHODS:
            continue
        if method == "POST" and request.get("ifNoneExist"):
            continue
        return False
    return True


_LOCATION = re.compile(
    r"(?:^|/)([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/([A-Za-z0-9\-.]{1,64}))?/?$"
)


@dataclass(frozen=True)
class EntryResult:
    """The server's answer for one transaction entry (ids and statuses only: no personal data)."""

    status: str
    location: str | None = None
    resource_type: str | None = None
    id: str | None = None
    version_id: str | None = None
    etag: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, without empty fields."""
        return {k: v for k, v in asdict(self).items() if v is not None}


def check_transaction_response(request: JSON, response: JSON) -> None:
    """FhirError unless ``response`` answers every entry of ``request`` with a 2xx status.

    A transaction is all or nothing, but a batch is not, and a misbehaving proxy may cut entries: only a
    complete, all-2xx answer counts as delivered.
    """
    from fhir_safetyplan.client._errors import (
        BatchEntryRejected,
        FhirError,
        WriteConflict,
        synthesised_outcome,
    )

    entries = response.get("entry") or []
    asked = request.get("entry") or []
    if not isinstance(entries, list) or len(entries) != len(asked):
        raise FhirError(
            f"The server's transaction-response has {len(entries) if isinstance(entries, list) else 'no'} "
            f"entries for {len(asked)} requested; not counted as delivered."
        )
    for i, entry in enumerate(entries):
        answer = entry.get("response") if isinstance(entry, dict) else None
        status = answer.get("status") if isinstance(answer, dict) else None
        code = status.strip()[:3] if isinstance(status, str) else ""
        if request.get("type") == "batch" and code[:1] == "4" and code.isdigit():
            outcome = answer.get("outcome") if isinstance(answer, dict) else None
            outcome = outcome if isinstance(outcome, dict) else None
            if code == "409" and _RACING_WRITE in json.dumps(outcome):
                # HAPI lost a race with another request inside its own storage (HAPI-0550: e.g. two searches'
                # bookkeeping at once): not a verdict on this entry, the same batch may be sent again.
                msg = (
                    f"The server's entry {i} of the batch conflicted with a concurrent write (HTTP 409) "
                    f"[{_RACING_WRITE}]."
                )
                # Our words only, as for a 409 on a whole request: HAPI's diagnostics can quote search URLs.
                raise WriteConflict(msg + " Try again later.", 409, synthesised_outcome("conflict", msg))
            # A batch is not all or nothing: this entry was refused, the server itself answered.
            raise BatchEntryRejected(
                f"The server refused entry {i} of the batch (HTTP {code}).", int(code), outcome, i
            )
        if not isinstance(status, str) or not status.strip()[:1] == "2":
            raise FhirError(
                f"The server's transaction-response entry {i} has no 2xx status; not counted as delivered."
            )


def entry_results(response_bundle: JSON) -> list[EntryResult]:
    """The per-entry results of a transaction-response Bundle, in the order of the request's entries.

    Entries that are not objects give an empty result rather than an error (see
    :func:`check_transaction_response` for the strict check).
    """
    results = []
    entries = response_bundle.get("entry")
    for entry in entries if isinstance(entries, list) else []:
        response = entry.get("response") if isinstance(entry, dict) else None
        response = response if isinstance(response, dict) else {}
        location = response.get("location")
        rtype = rid = version = None
        if isinstance(location, str):
            # HAPI answers "Type/id/_history/n", relative or absolute; the query part never carries ids.
            m = _LOCATION.search(location.split("?", 1)[0])
            if m:
                rtype, rid, version = m.group(1), m.group(2), m.group(3)
        results.append(
            EntryResult(
                status=str(response.get("status", "")),
                location=location if isinstance(location, str) else None,
                resource_type=rtype,
                id=rid,
                version_id=version,
                etag=response.get("etag") if isinstance(response.get("etag"), str) else None,
            )
        )
    return results
