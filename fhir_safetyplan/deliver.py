"""Delivering journal Bundles: never lose a plan, never send one twice, never to the wrong kind of server.

:func:`deliver` sends one transaction Bundle. With an outbox the bundle is stored *before* it is sent and
marked delivered only after the server's 2xx, so at every moment a plan is either in the outbox or
acknowledged by the server. :func:`flush` sends what is still pending, oldest first; a server that cannot
take a plan now stops only that server's queue. Resends are harmless because only idempotent bundles (PUT
with ids derived from the submission, conditional creates) go through the outbox.

Outcomes are recorded compare-and-set on the outbox entry's revision: a plan re-queued while an older
version was in flight stays pending and is sent next.

What is final: only the server's verdict on the *content* (400/409/412/422 with an OperationOutcome) marks a
plan rejected. Credentials, redirects and a wrong base URL (:class:`~fhir_safetyplan.client.ServerConfigError`)
keep it pending ("held", exit 7) until the configuration is fixed.

Every journal bundle is sent as a revision of the patient's current plan, computed at send time
(:mod:`fhir_safetyplan.revise`). One that lost a race, or is older than the current plan, is "conflict" (exit 8):
nothing written, kept as rejected so that only a person's ``outbox requeue`` sends it again.

:func:`guard_public_server` refuses to send a real-looking national identity number to a public test
server such as hapi.fhir.org, where anyone can read everything. Caveat: NAV-style numbers (month + 40)
count as synthetic, as DESIGN.md decides, although some hospitals give real patients H-numbers with the
same offset; :func:`fhir_safetyplan.identifiers.is_real_looking` has ``plus40_is_synthetic=False`` for a
stricter check.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
from collections.abc import Callable, Container, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from fhir_safetyplan import codes, exitcodes, revise
from fhir_safetyplan.client import (
    EntryResult,
    FhirClient,
    FhirError,
    ServerRejected,
    entry_results,
    is_idempotent_transaction,
)
from fhir_safetyplan.errors import JSON, ConfigError, InputError, SafetyPlanError, issue, operation_outcome
from fhir_safetyplan.outbox import Outbox, OutboxEntry

log = logging.getLogger("fhir_safetyplan.deliver")

#: public servers where anything sent is readable by anyone; more via SAFETYPLAN_PUBLIC_HOSTS
PUBLIC_HOSTS: tuple[str, ...] = ("hapi.fhir.org",)
# 11 digits, also written with separators: 01019010046, 010190 10046, 010190-10046, 01.01.90 100 46.
_SEP = r"[\s.\-]?"
_ELEVEN_DIGITS = re.compile(
    rf"(?<!\d)(\d{{2}}){_SEP}(\d{{2}}){_SEP}(\d{{2}}){_SEP}(\d{{3}}){_SEP}(\d{{2}})(?!\d)"
)
_BASE64_KEYS = re.compile(r"^(data|value[A-Z]?\w*Base64Binary)$")

#: held: the server refused our configuration (credentials, URL); the plan stays pending (exit 7)
#: conflict: held for a person, the patient's plan changed on the server meanwhile (see revise); nothing written
Status = Literal["delivered", "queued", "rejected", "refused", "held", "conflict"]
_EXIT = {
    "delivered": exitcodes.OK,
    "conflict": exitcodes.CONFLICT,
    "queued": exitcodes.QUEUED,
    "held": exitcodes.CONFIG,
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


def _numbers(text: str) -> Iterator[str]:
    for m in _ELEVEN_DIGITS.finditer(text):
        yield "".join(m.groups())


def _walk(node: Any, path: str) -> Iterator[tuple[str, str]]:
    """(FHIRPath-like location, candidate number) for every identity-number candidate in ``node``."""
    if isinstance(node, dict):
        if node.get("system") in (codes.FNR, codes.DNR) and isinstance(node.get("value"), str):
            yield f"{path}.value", re.sub(r"[\s.\-]", "", node["value"])
        for key, value in node.items():
            if isinstance(value, str) and _BASE64_KEYS.match(key):
                # Attachments (the journal note, any attachment, valueBase64Binary) are base64: look inside.
                try:
                    text = base64.b64decode(value, validate=False).decode("utf-8", "replace")
                except (binascii.Error, ValueError):
                    text = ""
                for number in _numbers(text):
                    yield f"{path}.{key}", number
            yield from _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{path}[{i}]")
    elif isinstance(node, str):
        # Free text, narratives and conditional URLs (ifNoneExist, search URLs) can carry a number too.
        for number in _numbers(node):
            yield path, number


def guard_public_server(
    bundle: JSON,
    server_url: str,
    extra_public_hosts: Iterable[str] = (),
    *,
    env: Mapping[str, str] | None = None,
    root: str = "Bundle",
) -> None:
    """Refuse (:class:`RefusedByPolicy`) to send a real-looking identity number to a public server.

    Real-looking: a Norwegian FNR or D-number with valid check digits that is not a synthetic test number
    (Tenor month + 80 and NAV month + 40 count as synthetic; see the module note on H-numbers).

    Checked: FNR / D-number identifiers, and any 11-digit number (also with spaces, dots or dashes) in free
    text, narratives, conditional URLs, and base64 data (``data``, ``value...Base64Binary``). ``bundle`` may
    be any JSON value, e.g. the parameters of a search (``root`` names it in messages). The message names
    where the number is, never the number.
    """
    host = _is_public(server_url, public_hosts(extra_public_hosts, env))
    if host is None:
        return
    from fhir_safetyplan.identifiers import is_real_looking

    found = sorted({where for where, value in _walk(bundle, root) if is_real_looking(value)})
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


def reason_of(err: SafetyPlanError) -> str:
    """``Kind (HTTP n)``: what went wrong without personal data (server diagnostics may quote the data)."""
    status = getattr(err, "status", None)
    return f"{type(err).__name__}" + (f" (HTTP {status})" if status else "")


def _send(
    bundle: JSON, client: FhirClient, outbox: Outbox | None, entry: OutboxEntry | None, submission_id: str
) -> DeliveryResult:
    """Send once; record the outcome on ``entry`` only if it is still the revision that was sent."""
    server = client.base_url
    key: dict[str, Any] = (
        {} if entry is None else {"server_url": entry.server_url, "revision": entry.revision}
    )
    try:
        response = revise.send(bundle, client)  # a revision of the patient's current plan, read right now
    except revise.RevisionConflict as err:
        if outbox is not None:  # kept, as rejected: only a person's `outbox requeue` sends it again
            outbox.mark_rejected(submission_id, reason_of(err), **key)
        log.warning("submission %s held for a person: the patient's plan changed meanwhile", submission_id)
        return DeliveryResult(submission_id, "conflict", server, reason=str(err), outcome=err.outcome)
    except ServerRejected as err:
        if outbox is not None and not outbox.mark_rejected(submission_id, reason_of(err), **key):
            log.info("submission %s: a newer revision is queued; it stays pending", submission_id)
        log.warning("submission %s rejected by the server (%s)", submission_id, err.status)
        raise
    except ConfigError as err:
        # Credentials, URL or server capabilities: the plan waits in the outbox until the configuration is fixed.
        if outbox is not None:
            outbox.record_failure(submission_id, reason_of(err), **key)
        raise
    except FhirError as err:
        # No answer, 429/5xx after retries, or an answer we could not read: it may or may not have arrived,
        # and an idempotent resend from the outbox settles it either way.
        if outbox is None:
            raise
        outbox.record_failure(submission_id, reason_of(err), **key)
        log.warning("submission %s queued in the outbox: %s", submission_id, reason_of(err))
        return DeliveryResult(submission_id, "queued", server, reason=str(err), outcome=err.outcome)
    entries = tuple(entry_results(response))
    if outbox is not None and not outbox.mark_delivered(submission_id, [e.as_dict() for e in entries], **key):
        # The server has the revision we sent; the newer one stays pending and goes next.
        log.info("submission %s: delivered, but a newer revision is queued and stays pending", submission_id)
    log.info("submission %s delivered: %d entries", submission_id, len(entries))
    return DeliveryResult(submission_id, "delivered", server, entries=entries)


def deliver(
    bundle: JSON,
    client: FhirClient,
    *,
    outbox: Outbox | None = None,
    submission_id: str,
    public_hosts: Iterable[str] = (),
    check_capabilities: bool = False,
) -> DeliveryResult:
    """Send ``bundle`` as one transaction; the result says delivered or queued.

    Raises :class:`RefusedByPolicy` (public server guard, nothing stored or sent), :class:`ServerRejected`
    (the server refused the content, with its OperationOutcome; the outbox entry is marked rejected),
    :class:`~fhir_safetyplan.errors.ConfigError` (credentials, URL, capabilities: the entry stays pending),
    and :class:`~fhir_safetyplan.client.ServerUnavailable` when the server cannot take it and there is no
    outbox. With an outbox the bundle must be idempotent (every entry PUT, or POST with ``ifNoneExist``),
    because a later resend must not create a second copy. With ``check_capabilities`` the server's
    CapabilityStatement is checked first (after the plan is stored).
    """
    if not submission_id:
        raise InputError("deliver needs a submission id (stable for the same plan) to avoid duplicates.")
    guard_public_server(bundle, client.base_url, public_hosts)
    entry = None
    if outbox is not None:
        if not is_idempotent_transaction(bundle) or bundle.get("type") != "transaction":
            raise InputError(
                "This bundle cannot go through the outbox: resending it could create duplicates, or (a batch) "
                "deliver only part of it. It must be a transaction whose every entry is a PUT with a stable "
                "id, or a POST with ifNoneExist (as build_bundle makes them)."
            )
        entry = outbox.put(submission_id, bundle, client.base_url)
    if check_capabilities:
        key: dict[str, Any] = (
            {} if entry is None else {"server_url": entry.server_url, "revision": entry.revision}
        )
        try:
            client.check_capabilities()
        except ConfigError as err:
            if outbox is not None:
                outbox.record_failure(submission_id, reason_of(err), **key)
            raise
        except FhirError as err:
            # The server cannot be asked now; the plan must still not be lost.
            if outbox is None:
                raise
            outbox.record_failure(submission_id, reason_of(err), **key)
            return DeliveryResult(
                submission_id, "queued", client.base_url, reason=str(err), outcome=err.outcome
            )
    return _send(bundle, client, outbox, entry, submission_id)


#: how often flush resends one submission that was re-queued while it was being sent
_MAX_RESENDS = 3


def flush(
    outbox: Outbox,
    client_factory: Callable[[str], FhirClient],
    *,
    public_hosts: Iterable[str] = (),
    server_url: str | None = None,
    limit: int | None = None,
    skip: Container[str] = (),
    close_clients: bool = True,
) -> list[DeliveryResult]:
    """Deliver pending outbox entries oldest first; per server, stop at the first that is queued again.

    ``client_factory(server_url)`` gives the client for an entry's server (called once per server; the
    clients are closed at the end unless ``close_clients`` is False, for a factory that hands out clients it
    keeps). ``server_url``: only that server's entries. ``limit``: at most that many
    sends. ``skip``: submission ids to leave alone (being sent elsewhere right now).

    A rejected entry (content) or one refused by policy is reported and leaves the queue; the next one
    follows. A server that cannot take a plan now ("queued") or refuses our configuration ("held", the
    entry stays pending) stops that server's queue; other servers' entries still go.
    """
    results: list[DeliveryResult] = []
    clients: dict[str, FhirClient] = {}
    stopped: set[str] = set()
    sent = 0
    try:
        for snapshot in outbox.pending(server_url):
            if limit is not None and sent >= limit:
                break
            if snapshot.server_url in stopped or snapshot.submission_id in skip:
                continue
            for _ in range(_MAX_RESENDS):
                # Re-read just before sending: a newer revision may have been queued since the listing.
                entry = outbox.get(snapshot.submission_id, snapshot.server_url)
                if entry is None or entry.status != "pending" or entry.bundle is None:
                    break
                sent += 1
                result = _flush_one(outbox, entry, clients, client_factory, public_hosts)
                results.append(result)
                if result.status in ("queued", "held"):
                    stopped.add(entry.server_url)
                    break
                latest = outbox.get(entry.submission_id, entry.server_url)
                if latest is None or latest.revision == entry.revision or latest.status != "pending":
                    break
    finally:
        if close_clients:
            for client in clients.values():
                client.close()
    return results


def _flush_one(
    outbox: Outbox,
    entry: OutboxEntry,
    clients: dict[str, FhirClient],
    client_factory: Callable[[str], FhirClient],
    public_hosts: Iterable[str],
) -> DeliveryResult:
    assert entry.bundle is not None
    sid, server = entry.submission_id, entry.server_url
    try:
        guard_public_server(entry.bundle, server, public_hosts)
    except RefusedByPolicy as err:
        outbox.mark_rejected(sid, "RefusedByPolicy", server_url=server, revision=entry.revision)
        return DeliveryResult(sid, "refused", server, reason=str(err), outcome=err.outcome)
    try:
        client = clients.get(server)
        if client is None:
            client = clients[server] = client_factory(server)
        return _send(entry.bundle, client, outbox, entry, sid)
    except ServerRejected as err:
        return DeliveryResult(sid, "rejected", server, reason=str(err), outcome=err.outcome)
    except ConfigError as err:
        log.warning("submission %s held: the server refused the configuration (%s)", sid, reason_of(err))
        return DeliveryResult(sid, "held", server, reason=str(err), outcome=err.outcome)
