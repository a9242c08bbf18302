"""Finding a patient's current safety plan on the server: one batch request (one round trip).

The *current plan* is the plan whose CarePlan and/or safety Flag written by this module (identifier system
``<base>/NamingSystem/submission``) is ``active`` for the patient. Dates and ``_lastUpdated`` are never used to
choose it: retiring an old plan bumps its ``_lastUpdated``. Normally there is one; data written before revisions
existed can have several, and a revision then retires them all.

:func:`find` sends one batch Bundle with these searches (each with ``_revinclude=Provenance:target`` and
``_include:iterate`` of the Provenance's targets and entities, so every resource of the plans found comes along):

- ``CarePlan?subject=…&status=active&identifier=<system>|``
- ``Flag?subject=…&identifier=<system>|`` (R4 Flag has no ``status`` search parameter: filtered here)
- with a submission: ``QuestionnaireResponse?subject=…&identifier=<system>|<submission>`` (is this plan already
  on the server, and is it still current?)

The patient is the response's subject: ``Patient/<id>``, or its FNR/D-number through the chained parameter
``subject:Patient.identifier``, so a patient given by identity number costs no extra read either.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fhir_safetyplan.client import (
    BatchEntryRejected,
    FhirClient,
    FhirError,
    ServerIncompatible,
    ServerRejected,
)
from fhir_safetyplan.errors import JSON, InputError, SafetyPlanError, one_issue
from fhir_safetyplan.jsonshape import obj as _obj
from fhir_safetyplan.jsonshape import objs as _objs
from fhir_safetyplan.outcomes import Kind

log = logging.getLogger(__name__)

#: the journal resource types a plan consists of (grouped by submission here, searched by subject in show)
PLAN_TYPES = ("QuestionnaireResponse", "CarePlan", "Flag", "DocumentReference")
_INCLUDES = (
    ("_revinclude", "Provenance:target"),
    ("_include:iterate", "Provenance:target"),
    ("_include:iterate", "Provenance:entity"),
)
#: matches per search; a patient has one plan per conversation, so more than this is not a safety plan history
PAGE = 200


@dataclass(frozen=True)
class StoredPlan:
    """The resources of one submission as the server returned them (``meta.versionId`` included)."""

    submission: str
    questionnaire_response: JSON | None = None
    care_plan: JSON | None = None
    flag: JSON | None = None
    document_reference: JSON | None = None
    provenance: tuple[JSON, ...] = ()
    #: more resources of one of the types above for this submission, under other ids (written before ids were
    #: scoped by the patient, or with the patient given another way): kept so a revision retires them too
    copies: tuple[JSON, ...] = ()

    @property
    def authored(self) -> str:
        """When the conversation took place (the response's ``authored``, else the CarePlan's ``created``,
        else the Flag's ``period.start``); '' when unknown."""
        for value in (
            (self.questionnaire_response or {}).get("authored"),
            (self.care_plan or {}).get("created"),
            _obj((self.flag or {}).get("period")).get("start"),
        ):
            if isinstance(value, str) and value:
                return value
        return ""

    @property
    def active(self) -> tuple[JSON, ...]:
        """Its CarePlans and Flags (copies included) that are still active."""
        return tuple(r for r in self.plan_resources() if r.get("status") == "active")

    def plan_resources(self) -> list[JSON]:
        """Its CarePlans and Flags, copies included (what a revision retires)."""
        found = [self.care_plan, self.flag, *self.copies]
        return [r for r in found if r is not None and r.get("resourceType") in ("CarePlan", "Flag")]

    def resources(self) -> list[JSON]:
        found = [self.questionnaire_response, self.care_plan, self.flag, self.document_reference]
        return [r for r in found if r is not None] + list(self.copies) + list(self.provenance)


@dataclass(frozen=True)
class CurrentPlan:
    """What the server holds for one patient: every plan the searches brought, by submission."""

    plans: dict[str, StoredPlan] = field(default_factory=dict)
    #: the submission asked about (None: not asked)
    submission: str | None = None

    @property
    def active(self) -> list[StoredPlan]:
        """The plans with an active CarePlan or Flag, newest conversation first."""
        return sorted(
            (p for p in self.plans.values() if p.active), key=lambda p: when(p.authored), reverse=True
        )

    @property
    def current(self) -> StoredPlan | None:
        """The current plan: the newest of the active ones (normally the only one)."""
        active = self.active
        return active[0] if active else None

    @property
    def own(self) -> StoredPlan | None:
        """The asked-about submission's plan as already stored, if it is."""
        if self.submission is None:
            return None
        own = self.plans.get(self.submission)
        return own if own is not None and own.questionnaire_response is not None else None

    def predecessors(self, plan: StoredPlan) -> list[StoredPlan]:
        """The plans ``plan`` names as revised in its Provenance (``entity.role = revision``), newest first."""
        ids = {
            str(_obj(e.get("what")).get("reference"))
            for prov in plan.provenance
            for e in _objs(prov.get("entity"))
            if e.get("role") == "revision"
        }
        found = [
            p
            for p in self.plans.values()
            if p.submission != plan.submission
            and any(f"{r['resourceType']}/{r.get('id')}" in ids for r in p.resources())
        ]
        return sorted(found, key=lambda p: when(p.authored), reverse=True)


class TooManyPlans(SafetyPlanError):
    """Held for a person: the patient's plan history on the server is longer than one lookup reads."""

    kind = Kind.REVISION_CONFLICT

    def __init__(self, message: str) -> None:
        super().__init__(message, one_issue("error", "too-costly", message))


def when(value: str) -> datetime:
    """A FHIR dateTime as an aware datetime for ordering (unparseable: the earliest possible)."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return datetime.min.replace(tzinfo=datetime.now().astimezone().tzinfo)
    return parsed if parsed.tzinfo else parsed.astimezone()


def subject_param(subject: Any) -> tuple[str, str]:
    """The search parameter that names the patient of a response's ``subject``: ``subject=Patient/<id>``, or
    ``subject:Patient.identifier=<system>|<value>`` for a patient given by identifier."""
    subject = _obj(subject)
    ref = subject.get("reference")
    if isinstance(ref, str) and ref.startswith("Patient/") and "?" not in ref:
        return "subject", ref
    ident = _obj(subject.get("identifier"))
    if isinstance(ref, str) and ref.startswith("Patient?identifier=") and not ident:
        system, _, value = ref.removeprefix("Patient?identifier=").partition("|")
        ident = {"system": system, "value": value}
    if ident.get("system") and ident.get("value"):
        return "subject:Patient.identifier", f"{ident['system']}|{ident['value']}"
    raise InputError(
        "the plan names no patient the server can be searched for",
        one_issue(
            "error",
            "required",
            "QuestionnaireResponse.subject must be Patient/<id> or an FNR/D-number identifier, so the "
            "patient's current plan can be found",
            "QuestionnaireResponse.subject",
        ),
    )


def search_batch(subject: Any, submission_system: str, submission: str | None = None) -> JSON:
    """The batch Bundle :func:`find` sends (pure; for tests and benchmarks)."""
    who = subject_param(subject)
    ours = f"{submission_system}|"
    searches = [
        ("CarePlan", [who, ("status", "active"), ("identifier", ours)]),
        ("Flag", [who, ("identifier", ours)]),
    ]
    if submission is not None:
        searches.append(("QuestionnaireResponse", [who, ("identifier", f"{ours}{submission}")]))
    return batch_of(searches, list(_INCLUDES))


Search = tuple[str, list[tuple[str, str]]]


def batch_of(searches: list[Search], extra: list[tuple[str, str]], safe: str = ":|/") -> JSON:
    """A batch Bundle of GET searches: each ``(resource type, parameters)`` with ``extra`` and one page of
    :data:`PAGE` results."""
    return {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {
                "request": {
                    "method": "GET",
                    "url": f"{rtype}?{urlencode([*params, *extra, ('_count', str(PAGE))], safe=safe)}",
                }
            }
            for rtype, params in searches
        ],
    }


def find(
    client: FhirClient, subject: Any, submission_system: str, submission: str | None = None
) -> CurrentPlan:
    """The patient's plans on the server (one round trip); ``.current`` is the current plan, None when the
    patient has none. ``submission``: also look up that submission's own plan (``.own``).

    Raises the client's errors (:class:`~fhir_safetyplan.client.FhirError`) when the server cannot answer, and
    :class:`~fhir_safetyplan.client.ServerIncompatible` when it refuses the searches.
    """

    batch = search_batch(subject, submission_system, submission)
    try:
        # no-cache: HAPI otherwise answers a search repeated within 60 s from its cache (the plan just revised).
        response = client.transaction(batch, idempotent=True, headers={"Cache-Control": "no-cache"})
    except BatchEntryRejected as err:
        # This patient's search failed, not the server: a verdict on this plan only, the queue goes on.
        raise ServerRejected(
            f"The server refused search {err.entry} of this patient's current-plan lookup (HTTP {err.status}). "
            "Nothing was written; check how the plan names its patient (QuestionnaireResponse.subject).",
            err.status,
            err.outcome,
        ) from None
    except ServerRejected as err:
        # Not a verdict on the plan: the server cannot run the searches (a configuration matter, exit 7).
        raise ServerIncompatible(
            f"The server refused the searches for the patient's current plan (HTTP {err.status}): it must "
            "support a batch of searches with _include:iterate / _revinclude and the chained parameter "
            "subject:Patient.identifier. Nothing was written; the plan stays pending.",
            err.outcome,
        ) from None
    resources: dict[tuple[str, str], JSON] = {}
    for i, entry in enumerate(_objs(response.get("entry"))):
        bundle = _obj(entry.get("resource"))
        if bundle.get("resourceType") != "Bundle":
            raise FhirError(f"The server's answer to search {i} of the current-plan lookup is not a Bundle.")
        if any(lk.get("relation") == "next" for lk in _objs(bundle.get("link"))):
            raise TooManyPlans(
                f"Nothing was written: the patient has more than {PAGE} safety plans on the server; this is not "
                "a plan history the module can revise. A person must check the patient's record."
            )
        for e in _objs(bundle.get("entry")):
            r = _obj(e.get("resource"))
            if isinstance(r.get("resourceType"), str) and isinstance(r.get("id"), str):
                resources[(r["resourceType"], r["id"])] = r
    plan = group(list(resources.values()), submission_system, submission)
    log.info("current-plan lookup: %d plan(s), %d active", len(plan.plans), len(plan.active))
    return plan


def group(resources: list[JSON], submission_system: str, submission: str | None = None) -> CurrentPlan:
    """Resources as read, grouped into plans by their submission identifier (Provenance by its source)."""
    by_sub: dict[str, dict[str, JSON]] = {}
    copies: dict[str, list[JSON]] = {}
    qr_sub: dict[str, str] = {}
    for r in sorted(resources, key=lambda r: (r.get("status") != "active", str(r.get("id")))):
        rtype = r.get("resourceType")
        sub = submission_of(r, submission_system)
        if rtype in PLAN_TYPES and sub is not None:
            found = by_sub.setdefault(sub, {})
            # every resource is kept: the first (an active one, if any) by type, the others as copies
            if str(rtype) in found:
                copies.setdefault(sub, []).append(r)
            else:
                found[str(rtype)] = r
            if rtype == "QuestionnaireResponse":
                qr_sub[f"QuestionnaireResponse/{r['id']}"] = sub
    provenance: dict[str, list[JSON]] = {}
    for r in resources:
        if r.get("resourceType") != "Provenance":
            continue
        for e in _objs(r.get("entity")):
            sub = qr_sub.get(str(_obj(e.get("what")).get("reference")))
            if e.get("role") == "source" and sub is not None:
                provenance.setdefault(sub, []).append(r)
    plans = {
        sub: StoredPlan(
            submission=sub,
            questionnaire_response=found.get("QuestionnaireResponse"),
            care_plan=found.get("CarePlan"),
            flag=found.get("Flag"),
            document_reference=found.get("DocumentReference"),
            provenance=tuple(provenance.get(sub, ())),
            copies=tuple(copies.get(sub, ())),
        )
        for sub, found in by_sub.items()
    }
    return CurrentPlan(plans, submission)


def submission_of(resource: JSON, submission_system: str) -> str | None:
    """The submission id of one of our resources (``identifier`` / ``masterIdentifier`` in our system)."""
    idents: list[Any] = [resource.get("masterIdentifier")]
    ident = resource.get("identifier")
    idents += ident if isinstance(ident, list) else [ident]
    for i in idents:
        if isinstance(i, dict) and i.get("system") == submission_system and isinstance(i.get("value"), str):
            return str(i["value"])
    return None
