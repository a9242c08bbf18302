"""Delivering journal Bundles: never lose a plan, never send one twice, never to the wrong kind of server.

:func:`deliver` sends one transaction Bundle. With an outbox the bundle is stored *before* it is sent and
marked delivered only after the server's 2xx, so at every moment a plan is either in the outbox or
acknowledged by the server. :func:`flush` sends what is still pending, oldest first, and stops at the first
server that cannot take it. Resends are harmless because only idempotent bundles (PUT with ids derived from
the submission, conditional creates) go through the outbox.

:func:`guard_public_server` refuses to send a real-looking national identity number to a public test
server such as hapi.fhir.org, where anyone can read everything.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from fhir_safetyplan import exitcodes
from fhir_safetyplan.client import (
    EntryResult,
    FhirClient,
    FhirError,
    ServerRejected,
    entry_results,
    is_idempotent_transaction,
)
from fhir_safetyplan.errors import JSON, ConfigError, InputError, SafetyPlanError, issue, operation_outcome
from fhir_safetyplan.outbox import Outbox

log = logging.getLogger("fhir_safetyplan.deliver")

#: public servers where anything sent is readable by anyone; more via SAFETYPLAN_PUBLIC_HOSTS
PUBLIC_HOSTS: tuple[str, ...] = ("hapi.fhir.org",)
FNR_SYSTEM = "urn:oid:2.16.578.1.12.4.1.4.1"
DNR_SYSTEM = "urn:oid:2.16.578.1.12.4.1.4.2"
_ELEVEN_DIGITS = re.compile(r"(?<!\d)(\d{6})\s?(\d{5})(?!\d)")

Status = Literal["delivered", "queued", "rejected", "refused"]
_EXIT = {
    "delivered": exitcodes.OK,
    "queued": exitcodes.QUEUED,
    "rejected": exitcodes.REJECTED,
    "refused": exitcodes.REFUSED,
}


class RefusedByPolicy(SafetyPlanError):
    """Not sent, by policy: e.g. a real-looking identity number bound for a public test server."""

    exit_code = exitcodes.REFUSED


@dataclass(frozen=True)
class DeliveryResult:
    """What became of one submission. ``outcome`` (the server's OperationOutcome) stays out of the repr."""

    submission_id: str
    status: Status
    server_url: str
    #: the server's answer per Bundle entry (statuses, locations, ids), when delivered
    entries: tuple[EntryResult, ...] = ()
    #: why it was not delivered (kind and status only: no personal data)
    reason: str | None = None
    outcome: JSON | None = field(default=None, repr=False)

    @property
    def exit_code(self) -> int:
        """The ``safetyplan`` exit code for this result."""
        return _EXIT[self.status]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form for printing."""
        out: dict[str, Any] = {
            "submissionId": self.submission_id,
            "status": self.status,
            "server": self.server_url,
            "entries": [e.as_dict() for e in self.entries],
        }
        if self.reason:
            out["reason"] = self.reason
        if self.outcome is not None:
            out["outcome"] = self.outcome
        return out


# ---- the public-sandbox guard -------------------------------------------------------------------


def public_hosts(extra: Iterable[str] = (), env: Mapping[str, str] | None = None) -> frozenset[str]:
    """Known public hosts, ``extra``, and those in ``SAFETYPLAN_PUBLIC_HOSTS`` (comma or space separated)."""
    env = os.environ if env is None else env
    listed = re.split(r"[,\s]+", env.get("SAFETYPLAN_PUBLIC_HOSTS", ""))
    return frozenset(h.strip().lower().rstrip(".") for h in (*PUBLIC_HOSTS, *extra, *listed) if h.strip())


def _is_public(server_url: str, hosts: frozenset[str]) -> str | None:
    host = (urlsplit(server_url).hostname or "").lower().rstrip(".")
    return host if any(host == h or host.endswith("." + h) for h in hosts) else None


def _walk(node: Any, path: str) -> Iterator[tuple[str, str]]:
    """(FHIRPath-like location, candidate number) for every identity-number candidate in ``node``."""
    if isinstance(node, dict):
        if node.get("system") in (FNR_SYSTEM, DNR_SYSTEM) and isinstance(node.get("value"), str):
            yield f"{path}.value", node["value"].strip()
        if isinstance(node.get("data"), str) and "contentType" in node:
            # Attachments (e.g. the journal note) are base64: look inside them too.
            try:
                text = base64.b64decode(node["data"], validate=False).decode("utf-8", "replace")
            except (binascii.Error, ValueError):
                text = ""
            for m in _ELEVEN_DIGITS.finditer(text):
                yield f"{path}.data", m.group(1) + m.group(2)
        for key, value in node.items():
            yield from _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{path}[{i}]")
    elif isinstance(node, str):
        # Free text, narratives and conditional URLs (ifNoneExist, search URLs) can carry a number too.
        for m in _ELEVEN_DIGITS.finditer(node):
            yield path, m.group(1) + m.group(2)


def guard_public_server(
    bundle: JSON,
    server_url: str,
    extra_public_hosts: Iterable[str] = (),
    *,
    env: Mapping[str, str] | None = None,
) -> None:
    """Refuse (:class:`RefusedByPolicy`) to send a real-looking identity number to a public server.

    Real-looking: a Norwegian FNR or D-number with valid check digits that is not a synthetic test number.

    Checked: FNR / D-number identifiers, and any 11-digit number in free text, narratives, conditional URLs
    and attachments. The message names where the number is, never the number.
    """
    host = _is_public(server_url, public_hosts(extra_public_hosts, env))
    if host is None:
        return
    from fhir_safetyplan.identifiers import is_real_looking

    found = sorted({where for where, value in _walk(bundle, "Bundle") if is_real_looking(value)})
    if not found:
        return
    what = (
        f"Refused to send to {host}: it is a public test server where anyone can read what is sent, and this "
        "looks like a real national identity number (valid check digits, not a synthetic test number)."
    )
    todo = "Use synthetic numbers (Tenor: month + 80, NAV: month + 40) or send to your own server."
    places = ", ".join(found[:5]) + (" and more" if len(found) > 5 else "")
    log.warning("refused delivery to public host %s: %d real-looking identity number(s)", host, len(found))
    raise RefusedByPolicy(
        f"{what} Found at {places}. {todo}",
        operation_outcome([issue("error", "security", f"{what} {todo}", where) for where in found]),
    )


# ---- delivery -----------------------------------------------------------------------------------


def _reason(err: SafetyPlanError) -> str:
    # Kind and status only: server diagnostics may quote the data they complain about.
    status = getattr(err, "status", None)
    return f"{type(err).__name__}" + (f" (HTTP {status})" if status else "")


def _send(bundle: JSON, client: FhirClient, outbox: Outbox | None, submission_id: str) -> DeliveryResult:
    server = client.base_url
    try:
        response = client.transaction(bundle)
    except ServerRejected as err:
        if outbox is not None:
            outbox.mark_rejected(submission_id, _reason(err))
        log.warning("submission %s rejected by the server (%s)", submission_id, err.status)
        raise
    except ConfigError as err:
        # Credentials or server capabilities: the plan waits in the outbox until the configuration is fixed.
        if outbox is not None:
            outbox.record_failure(submission_id, _reason(err))
        raise
    except FhirError as err:
        # No answer, 429/5xx after retries, or an answer we could not read: it may or may not have arrived,
        # and an idempotent resend from the outbox settles it either way.
        if outbox is None:
            raise
        outbox.record_failure(submission_id, _reason(err))
        log.warning("submission %s queued in the outbox: %s", submission_id, _reason(err))
        return DeliveryResult(submission_id, "queued", server, reason=str(err), outcome=err.outcome)
    entries = tuple(entry_results(response))
    if outbox is not None:
        outbox.mark_delivered(submission_id, [e.as_dict() for e in entries])
    log.info("submission %s delivered: %d entries", submission_id, len(entries))
    return DeliveryResult(submission_id, "delivered", server, entries=entries)


def deliver(
    bundle: JSON,
    client: FhirClient,
    *,
    outbox: Outbox | None = None,
    submission_id: str,
    public_hosts: Iterable[str] = (),
) -> DeliveryResult:
    """Send ``bundle`` as one transaction; the result says delivered or queued.

    Raises :class:`RefusedByPolicy` (public server guard, nothing stored or sent), :class:`ServerRejected`
    (4xx, with the server's OperationOutcome; the outbox entry is marked rejected), and
    :class:`~fhir_safetyplan.client.ServerUnavailable` when the server cannot take it and there is no outbox.
    With an outbox the bundle must be idempotent (every entry PUT, or POST with ``ifNoneExist``), because a
    later resend must not create a second copy.
    """
    if not submission_id:
        raise InputError("deliver needs a submission id (stable for the same plan) to avoid duplicates.")
    guard_public_server(bundle, client.base_url, public_hosts)
    if outbox is not None:
        if not is_idempotent_transaction(bundle):
            raise InputError(
                "This bundle cannot go through the outbox: resending it could create duplicates. Every entry "
                "must be a PUT with a stable id, or a POST with ifNoneExist (as build_bundle makes them)."
            )
        outbox.put(submission_id, bundle, client.base_url)
    return _send(bundle, client, outbox, submission_id)


def flush(
    outbox: Outbox,
    client_factory: Callable[[str], FhirClient],
    *,
    public_hosts: Iterable[str] = (),
) -> list[DeliveryResult]:
    """Deliver pending outbox entries oldest first; stop at the first that is queued again.

    ``client_factory(server_url)`` gives the client for an entry's server (called once per server).
    A rejected entry (4xx) or one refused by policy is reported and leaves the queue; the next one follows.
    """
    results: list[DeliveryResult] = []
    clients: dict[str, FhirClient] = {}
    for entry in outbox.pending():
        if entry.bundle is None:  # pragma: no cover - pending entries always keep their bundle
            continue
        try:
            guard_public_server(entry.bundle, entry.server_url, public_hosts)
        except RefusedByPolicy as err:
            outbox.mark_rejected(entry.submission_id, "RefusedByPolicy")
            results.append(
                DeliveryResult(
                    entry.submission_id, "refused", entry.server_url, reason=str(err), outcome=err.outcome
                )
            )
            continue
        client = clients.get(entry.server_url)
        if client is None:
            client = clients[entry.server_url] = client_factory(entry.server_url)
        try:
            result = _send(entry.bundle, client, outbox, entry.submission_id)
        except ServerRejected as err:
            results.append(
                DeliveryResult(
                    entry.submission_id, "rejected", entry.server_url, reason=str(err), outcome=err.outcome
                )
            )
            continue
        results.append(result)
        if result.status == "queued":
            break
    return results
