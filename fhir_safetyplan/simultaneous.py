"""Two first plans at once: the patient still ends with one current plan, the newer conversation's.

A *first* plan (the lookup found no current plan) has no version to ``ifMatch`` on. Two of them for one patient
from different conversations, sent at the same moment (two service replicas on one outbox, two engines, a
replica and a flush), both read "no plan" and both write. So after a transaction that wrote a first plan,
:func:`fhir_safetyplan.revise.send` checks once more (:func:`others_active`: one round trip, ``no-cache``,
no includes). Only when another active plan of ours is there, it reads the patient's plans in full (one more round
trip) and :func:`after_first` decides, by the conversations' order (:func:`order`: ``authored``, ties broken by the
submission id, the same on every sender):

- ``alone``: no other active plan of the patient (or ours is no longer active: a newer plan's revision has
  superseded it, which is the sequential order "ours, then the newer one") — delivered;
- ``revise``: ours is the newer → sent again as a revision of what is there now (the normal
  :func:`~fhir_safetyplan.revise.revise`: it retires the other under ``ifMatch``; losing that race is the
  existing conflict path, whose re-read finds the other retired and resends ours unchanged);
- ``retire``: ours is the older → ours is retired (CarePlan ``revoked``, Flag ``inactive``, ``period.end`` the
  newer conversation's date, the note "superseded by the plan of a later conversation that arrived at the same
  time"), guarded by ``ifMatch`` on our versions read, and reported as a
  :class:`~fhir_safetyplan.revise.RevisionConflict`: held for a person, as if the newer plan had been seen first.
  Its QuestionnaireResponse, note and Provenance stay on the server: nothing is lost. If that retirement loses
  its ``ifMatch`` (the newer plan's revision retired ours first), ours was superseded by a revision: delivered.

Why the end state holds (N the newer, O the older; each sender checks after its own write). The later of the two
checks comes after both writes, so at least one sender sees both plans:

- only N's check sees both: N revises, retiring O under ``ifMatch`` (O is not written again) → N alone active;
- only O's check sees both: O retires itself (N does nothing more) → N alone active;
- both see both (both checks before either retirement): N's revision and O's retirement both update O under
  ``ifMatch`` on the same version, so the server takes exactly one. N's first → O's fails → O re-reads, finds
  itself superseded → delivered. O's first → N's fails → N re-reads, finds O retired, resends itself unchanged
  → N alone active either way.

Neither sender ever retires N, so N stays active; O ends retired in every branch. What can still leave two
active: a sender that stops between its write and its check (its answer or the re-read lost, the process
killed). Its plan stays in the outbox (not delivered), and the next delivery for the patient converges: a resend of
O finds N active and newer and retires O (:func:`after_first` runs on the first lookup too); a resend of N, or a
plan of any later conversation, is a revision that retires every older active plan. A resend of a plan that
retired itself in a race is held again (:func:`withdrawn`), as the first attempt was.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from fhir_safetyplan import codes
from fhir_safetyplan.content import load
from fhir_safetyplan.current_plan import (
    CurrentPlan,
    Search,
    StoredPlan,
    batch_of,
    subject_param,
    submission_of,
    when,
)
from fhir_safetyplan.errors import JSON
from fhir_safetyplan.jsonshape import obj as _obj
from fhir_safetyplan.jsonshape import objs as _objs

if TYPE_CHECKING:
    from fhir_safetyplan.client import FhirClient
    from fhir_safetyplan.revise import RevisionConflict

log = logging.getLogger(__name__)

#: the ``[revision]`` text of the note on a plan retired because a newer one arrived at the same time
REASON = "simultaneous"


def order(plan: StoredPlan) -> tuple[datetime, str]:
    """Which of two conversations is the newer: by ``authored``, ties by submission id (every sender agrees)."""
    return when(plan.authored), plan.submission


def check_batch(subject: Any, submission_system: str) -> JSON:
    """The batch :func:`others_active` sends (pure): the patient's active CarePlans and all Flags of ours, only
    the elements needed to tell whose they are and whether they are active, no includes."""
    who = subject_param(subject)
    ours = ("identifier", f"{submission_system}|")
    searches: list[Search] = [("CarePlan", [who, ("status", "active"), ours]), ("Flag", [who, ours])]
    return batch_of(searches, [("_elements", "identifier,status")], safe=":|/,")


def others_active(client: FhirClient, subject: Any, submission_system: str, submission: str) -> bool:
    """Whether the patient has an active CarePlan or Flag of ours from another submission (one round trip,
    ``no-cache``, a small answer): the check after a first plan, before the full lookup it may need."""
    from fhir_safetyplan.client import BatchEntryRejected

    try:
        response = client.transaction(
            check_batch(subject, submission_system), idempotent=True, headers={"Cache-Control": "no-cache"}
        )
    except BatchEntryRejected:
        return True  # the full lookup decides, and says what the server refused
    for entry in _objs(response.get("entry")):
        bundle = _obj(entry.get("resource"))
        if bundle.get("resourceType") != "Bundle" or any(
            lk.get("relation") == "next" for lk in _objs(bundle.get("link"))
        ):
            return True  # not a plain answer: the full lookup decides (and says what is wrong)
        for e in _objs(bundle.get("entry")):
            r = _obj(e.get("resource"))
            if r.get("status") == "active" and submission_of(r, submission_system) not in (None, submission):
                return True
    return False


@dataclass(frozen=True)
class AfterFirst:
    """What to do once our first plan is on the server, given the patient's plans read again."""

    kind: Literal["alone", "revise", "retire"]
    #: for ``retire``: the newer conversation's plan
    newer: StoredPlan | None = None
    #: for ``retire``: the transaction that retires ours (``ifMatch`` on the versions read)
    bundle: JSON | None = None


def after_first(bundle: JSON, current: CurrentPlan) -> AfterFirst:
    """The decision after a first plan was written (pure): see the module docstring."""
    from fhir_safetyplan.revise import _entries, _same_patient, journal_identity

    own = current.own
    if journal_identity(bundle) is None or own is None or not own.active:
        return AfterFirst("alone")
    new_qr = _entries(bundle, "QuestionnaireResponse")[0]["resource"]
    others = [p for p in current.active if p.submission != own.submission and _same_patient(p, new_qr)]
    if not others:
        return AfterFirst("alone")
    newest = max(others, key=order)
    if order(own) > order(newest):
        return AfterFirst("revise")
    return AfterFirst("retire", newest, _retirement(own, newest))


def _retirement(own: StoredPlan, newer: StoredPlan) -> JSON:
    from fhir_safetyplan.revise import _lang, _retire_entry

    lang = _lang(own.document_reference, own.questionnaire_response)
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [_retire_entry(r, newer.authored, lang, REASON) for r in own.active],
    }


def withdrawn(own: StoredPlan, current: CurrentPlan) -> StoredPlan | None:
    """The newer plan, when ``own`` retired itself because of it in a race (pure): ``own`` has a CarePlan or
    Flag, none active, its CarePlan carries the note of a plan retired for one that arrived at the same time,
    no plan on the server names it as revised, and a plan of a later conversation is active. None otherwise."""
    if own.active or not own.plan_resources():
        return None
    if own.care_plan is not None:
        reasons = load().text("revision", field=REASON)
        notes = {n.get("text") for n in _objs(own.care_plan.get("note"))}
        if not any(reasons.get(lang) in notes for lang in codes.LANGUAGES):
            return None  # retired by a revision (or by a person), not for a plan that arrived at once
    if any(own.submission in {q.submission for q in current.predecessors(p)} for p in current.plans.values()):
        return None
    newer = [p for p in current.active if p.submission != own.submission and order(p) > order(own)]
    return max(newer, key=order) if newer else None


def conflict(own_submission: str, newer: StoredPlan) -> RevisionConflict:
    from fhir_safetyplan.revise import _conflict

    return _conflict(
        f"This plan (submission {own_submission}) is not the current plan: the plan of a later conversation "
        f"({newer.authored[:10]}, submission {newer.submission}) arrived at the same time, so this one was "
        "retired at once (kept on the server, revoked / inactive). A person must compare the two plans; an "
        "older plan never replaces a newer one automatically."
    )


def retire(decision: AfterFirst, bundle: JSON, client: FhirClient, lookup: Callable[[], CurrentPlan]) -> JSON:
    """Retire our plan for the newer one (``decision.kind == "retire"``): raises the conflict that holds it
    for a person, or returns the stored answer when the newer plan's revision superseded ours first."""
    from fhir_safetyplan.revise import _is_conflict, journal_identity, revise

    identity = journal_identity(bundle)
    assert identity is not None
    own_submission = identity[1]
    for attempt in (1, 2):
        assert decision.bundle is not None and decision.newer is not None
        try:
            client.transaction(decision.bundle)
        except Exception as err:
            if not _is_conflict(err):
                raise
            log.warning("submission %s: retiring it lost a race; reading again", own_submission)
            again = lookup()
            own = again.own
            if own is not None and own.active and attempt == 1:
                # our versions changed, and ours is still active: decide again on what is there now
                decision = after_first(bundle, again)
                if decision.kind != "retire":
                    raise
                continue
            revision = revise(bundle, again)  # superseded by the newer plan's revision: "already"
            if revision.response is not None:
                return revision.response
            raise
        log.warning(
            "submission %s: a later conversation's plan arrived at the same time; retired", own_submission
        )
        break
    assert decision.newer is not None
    raise conflict(own_submission, decision.newer)
