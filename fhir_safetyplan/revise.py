"""Revision at delivery: a new plan supersedes the patient's current plan in the same transaction.

:func:`revise` is pure: *journal bundle + the patient's plans as read* (:mod:`fhir_safetyplan.current_plan`)
→ the bundle to send. When the patient has a current plan written by this module, the revised bundle also

- sets ``replaces`` on the new CarePlan (versionless ``CarePlan/<id>`` of each plan it supersedes), and carries
  the old plan's open activity for an item that is in place now into the new plan as ``completed``;
- writes in the new journal note what changed since the previous plan (:mod:`fhir_safetyplan.changes`) and
  which activities are completed;
- records the revision in the Provenance (activity ``UPDATE``, the old CarePlan and Flag as targets, the old
  CarePlan, Flag and response as ``revision`` entities);
- retires the old plan: ``PUT`` of the old CarePlan as read with ``status = revoked``, ``period.end`` and a
  status reason as a ``note`` (R4 CarePlan has no statusReason, and the ``request-statusReason`` extension is not
  allowed on it), and of the old Flag as read with ``status = inactive`` and
  ``period.end`` — each guarded by ``ifMatch`` on the version read, so a plan revised by someone else in the
  meantime makes the whole transaction fail (HAPI answers 409 or 412) and nothing is written.

:func:`send` is what delivery calls instead of a plain transaction: it reads (one batch, one round trip), revises
and sends. A conflict is re-checked once: if our own plan is current by now (our first attempt went through and
its answer was lost) the resend is harmless and counts as delivered; otherwise :class:`RevisionConflict` — the
plan is *held for a person*, who decides whether it should still replace the plan now current. A first plan is
checked once more after it is written, for another conversation's first plan written at the same moment (nothing
to ``ifMatch`` on there): :mod:`fhir_safetyplan.simultaneous` leaves the newer conversation's plan current.

A revision is computed when it is sent, never when it is queued: a plan that waited in the outbox is checked
against the server as it is when the plan finally goes.
"""

from __future__ import annotations

import base64
import copy
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from fhir_safetyplan import changes, codes, fhir_r4, simultaneous
from fhir_safetyplan.client import FhirClient, FhirHttpError
from fhir_safetyplan.content import load
from fhir_safetyplan.current_plan import CurrentPlan, StoredPlan, find, when
from fhir_safetyplan.document import _narrative
from fhir_safetyplan.errors import JSON, SafetyPlanError, issue, operation_outcome
from fhir_safetyplan.form_ids import Link
from fhir_safetyplan.jsonshape import obj as _obj
from fhir_safetyplan.outcomes import Kind
from fhir_safetyplan.response_answers import answers_by_link
from fhir_safetyplan.sentences import format_date

log = logging.getLogger(__name__)


class RevisionConflict(SafetyPlanError):
    """Held for a person: the patient's plan on the server is not the one this revision can supersede (it was
    revised by someone else meanwhile, or a newer conversation's plan is current). Nothing was written."""

    kind = Kind.REVISION_CONFLICT


@dataclass(frozen=True)
class Revision:
    """What to send for one journal bundle, given the patient's plans on the server."""

    #: ``first``: nothing to supersede; ``revision``: supersedes ``replaced``; ``already``: this plan is on the
    #: server and has since been superseded itself, so nothing is sent
    kind: Literal["first", "revision", "already"]
    bundle: JSON | None
    #: the submissions this plan supersedes, newest first
    replaced: tuple[str, ...] = ()
    #: for ``already``: the stored resources as a transaction-response (ids and versions)
    response: JSON | None = None

    @property
    def guarded(self) -> bool:
        """Some entry is conditional on a version read (a conflict then means someone else wrote first)."""
        return any("ifMatch" in e.get("request", {}) for e in (self.bundle or {}).get("entry", []))


def _entries(bundle: JSON, rtype: str) -> list[JSON]:
    return [e for e in bundle.get("entry", []) if _obj(e.get("resource")).get("resourceType") == rtype]


def journal_identity(bundle: JSON) -> tuple[str, str] | None:
    """(submission system, submission id) of one of our journal bundles; None for any other bundle."""
    ident = _obj(bundle.get("identifier"))
    system, value = ident.get("system"), ident.get("value")
    if not (isinstance(system, str) and codes.is_submission_system(system) and isinstance(value, str)):
        return None
    return (system, value) if _entries(bundle, "QuestionnaireResponse") else None


def _conflict(message: str) -> RevisionConflict:
    return RevisionConflict(message, operation_outcome([issue("error", "conflict", message)]))


def revise(bundle: JSON, current: CurrentPlan) -> Revision:
    """The bundle to send so that it supersedes the patient's current plan (pure).

    Raises :class:`RevisionConflict` when a newer conversation's plan is current, or when this plan was
    superseded on the server and now comes with different answers.
    """
    identity = journal_identity(bundle)
    if identity is None:
        return Revision("first", bundle)
    submission = identity[1]
    new_qr = _entries(bundle, "QuestionnaireResponse")[0]["resource"]
    authored = str(new_qr.get("authored", ""))
    own = current.own
    if own is not None and (newer_plan := simultaneous.withdrawn(own, current)) is not None:
        # This plan retired itself for a later conversation's plan that arrived at the same time: held again.
        raise simultaneous.conflict(submission, newer_plan)
    if own is not None and not own.active:
        # Stored and not current (superseded, or a refusal that wrote no CarePlan or Flag): the same answers
        # again are delivered already, whatever plan is current now.
        if _same_answers(own.questionnaire_response, new_qr):
            return Revision("already", None, response=_stored_response(bundle, own))
    if own is not None and (own.care_plan or own.flag) and not own.active:
        raise _conflict(
            f"Nothing was written: this plan (submission {submission}) has already been superseded by a later "
            "plan on the server, and it now comes with different answers. A person must decide; a "
            "superseded plan is not changed automatically."
        )
    others = [p for p in current.active if p.submission != submission and _same_patient(p, new_qr)]
    newer = [p for p in others if when(p.authored) > when(authored)]
    if newer:
        raise _conflict(
            f"Nothing was written: the patient's current plan comes from a later conversation "
            f"({newer[0].authored[:10]}, submission {newer[0].submission}) than this plan ({authored[:10]}). "
            "A person must decide what to document; an older plan never replaces a newer one automatically."
        )
    preds = list(others)
    written = _written(bundle)
    if own is not None and any(_ref(r) not in written for r in own.active):
        # This plan is on the server under other ids too (the patient given another way, or ids from before
        # they were scoped by the patient): that copy is superseded, so the patient keeps one active plan.
        preds.append(own)
    if own is not None:
        preds += [p for p in current.predecessors(own) if p.submission not in {q.submission for q in preds}]
    preds.sort(key=lambda p: when(p.authored), reverse=True)
    if not preds:
        return Revision("first", bundle)
    return Revision("revision", _revised(bundle, preds, authored), tuple(p.submission for p in preds))


def _written(bundle: JSON) -> set[str]:
    """``Type/id`` of every resource the bundle writes with a PUT."""
    return {
        str(_obj(e.get("request")).get("url"))
        for e in bundle.get("entry", [])
        if _obj(e.get("request")).get("method") == "PUT"
    }


def _superseded(plan: StoredPlan, written: set[str]) -> list[JSON]:
    """The plan's CarePlans and Flags (copies included) the new bundle does not itself write."""
    return [r for r in plan.plan_resources() if _ref(r) not in written]


def _same_patient(plan: StoredPlan, new_qr: JSON) -> bool:
    """False when a found plan's subject contradicts the new plan's (another identifier, another Patient id):
    the server's search should never return one, and another patient's record is never touched."""
    subject = _obj(new_qr.get("subject"))
    ident, ref = _obj(subject.get("identifier")), subject.get("reference")
    literal = ref if isinstance(ref, str) and ref.startswith("Patient/") else None
    for r in plan.resources():
        theirs = _obj(r.get("subject"))
        other = _obj(theirs.get("identifier"))
        if (
            ident
            and other
            and (other.get("system"), other.get("value")) != (ident.get("system"), ident.get("value"))
        ):
            break
        their_ref = theirs.get("reference")
        if (
            literal
            and isinstance(their_ref, str)
            and their_ref.startswith("Patient/")
            and their_ref != literal
        ):
            break
    else:
        return True
    log.warning("current-plan lookup: a plan of another patient (submission %s) was ignored", plan.submission)
    return False


def _same_answers(stored: JSON | None, new: JSON) -> bool:
    def key(qr: JSON | None) -> str:
        qr = qr or {}
        return json.dumps([qr.get("status"), qr.get("item")], sort_keys=True, ensure_ascii=False)

    return key(stored) == key(new)


def _stored_response(bundle: JSON, plan: StoredPlan) -> JSON:
    """A transaction-response for ``bundle`` from what the server already holds: one entry per request entry
    (the test Patient is the one the stored response names), with the stored ids and versions."""
    held = {r["resourceType"]: r for r in plan.resources()}
    subject = str(_obj((plan.questionnaire_response or {}).get("subject")).get("reference", ""))
    entries = []
    for e in bundle.get("entry", []):
        rtype = _obj(e.get("resource")).get("resourceType")
        r = held.get(str(rtype))
        if r is not None:
            vid = _obj(r.get("meta")).get("versionId")
            loc = f"{rtype}/{r['id']}" + (f"/_history/{vid}" if vid else "")
        else:
            loc, vid = (
                (subject if rtype == "Patient" and subject.startswith("Patient/") else str(rtype)),
                None,
            )
        answer: JSON = {"status": "200 OK", "location": loc}
        if vid:
            answer["etag"] = f'W/"{vid}"'
        entries.append({"response": answer})
    return {"resourceType": "Bundle", "type": "transaction-response", "entry": entries}


def _ref(resource: JSON) -> str:
    return f"{resource['resourceType']}/{resource['id']}"


def _lang(*resources: JSON | None) -> str:
    for r in resources:
        lang = _obj(r).get("language")
        if lang in codes.LANGUAGES:
            return str(lang)
    return "nb"


def _retired(resource: JSON, end: str, lang: str, reason: str = "status-reason") -> JSON:
    """The old CarePlan or Flag as read, changed only in status, period end (and a CarePlan's status reason,
    the ``[revision]`` text ``reason``)."""
    r = copy.deepcopy(resource)
    meta = {k: v for k, v in _obj(r.get("meta")).items() if k not in ("versionId", "lastUpdated", "source")}
    r["meta"] = meta
    period = dict(_obj(r.get("period")))
    period.setdefault("end", end)
    r["period"] = period
    if r["resourceType"] == "CarePlan":
        r["status"] = "revoked"
        note = {"time": end, "text": load().text("revision", field=reason).get(lang)}
        r["note"] = [n for n in r.get("note") or [] if n != note] + [note]
    else:
        r["status"] = "inactive"
    return r


def _retire_entry(resource: JSON, end: str, lang: str, reason: str = "status-reason") -> JSON:
    vid = _obj(resource.get("meta")).get("versionId")
    request: JSON = {"method": "PUT", "url": _ref(resource)}
    if vid:
        request["ifMatch"] = f'W/"{vid}"'
    return {"resource": _retired(resource, end, lang, reason), "request": request}


def _revised(bundle: JSON, preds: list[StoredPlan], authored: str) -> JSON:
    out = copy.deepcopy(bundle)
    previous = preds[0]
    lang = _lang(*(e["resource"] for e in _entries(out, "DocumentReference")))
    written = _written(bundle)
    old_resources = [r for p in preds for r in _superseded(p, written)]
    completed = _complete_activities(out, previous)
    for e in _entries(out, "CarePlan"):
        e["resource"]["replaces"] = [
            {"reference": _ref(r)} for r in old_resources if r["resourceType"] == "CarePlan"
        ]
    for e in _entries(out, "DocumentReference"):
        _add_changes(
            e["resource"], previous, _entries(out, "QuestionnaireResponse")[0]["resource"], completed
        )
    for e in _entries(out, "Provenance"):
        _record_revision(e["resource"], preds, lang, written)
    for p in preds:
        old_lang = _lang(p.document_reference, p.questionnaire_response)
        for r in _superseded(p, written):
            if r.get("status") == "active":
                out["entry"].append(_retire_entry(r, authored, old_lang))
    log.info("revision: supersedes %d plan(s), retires %d resource(s)", len(preds), len(old_resources))
    return out


def _complete_activities(bundle: JSON, previous: StoredPlan) -> list[str]:
    """Carry the previous plan's open activities for items in place now into the new CarePlan as completed;
    their labels (for the note)."""

    new_qr = _entries(bundle, "QuestionnaireResponse")[0]["resource"]
    answers = answers_by_link(new_qr)
    plans = _entries(bundle, "CarePlan")
    if not plans or previous.care_plan is None:
        return []
    careplan = plans[0]["resource"]
    have = {
        (c.get("system"), c.get("code"))
        for a in careplan.get("activity", [])
        for c in fhir_r4.activity_codings(a)
    }
    labels: list[str] = []
    for activity in previous.care_plan.get("activity") or []:
        coding = next(iter(fhir_r4.activity_codings(activity)), None)
        if coding is None or fhir_r4.activity_status(activity) in ("completed", "cancelled"):
            continue
        pair = (coding.get("system"), coding.get("code"))
        in_place = any(
            codes.answer_code(a.get("valueCoding")) == "Y"
            for a in answers.get(Link.checklist_item(str(coding.get("code"))), [])
        )
        if pair in have or not in_place:
            continue
        careplan.setdefault("activity", []).append(fhir_r4.completed_activity(activity))
        labels.append(str(coding.get("display") or coding.get("code")))
    if labels:
        _renarrate_careplan(careplan, _lang(new_qr))
    return labels


def _renarrate_careplan(careplan: JSON, lang: str) -> None:
    done = load().text("revision", field="completed").get(lang)
    lines = []
    for activity in careplan.get("activity", []):
        codings = fhir_r4.activity_codings(activity)
        label = codings[0].get("display") if codings else None
        text = (
            done
            if fhir_r4.activity_status(activity) == "completed"
            else fhir_r4.activity_description(activity)
        )
        lines.append(f"{label}: {text}" if label else text)
    careplan["text"] = _narrative(lang, str(careplan.get("title", "")), lines)


def _add_changes(note: JSON, previous: StoredPlan, new_qr: JSON, completed: list[str]) -> None:
    """Insert what changed since ``previous`` after the note's first (neutral) line, in the note's language."""

    lang = _lang(note)
    attachment = note["content"][0]["attachment"]
    lines = base64.b64decode(attachment["data"]).decode("utf-8").rstrip("\n").split("\n")
    added: list[str] = []
    if previous.questionnaire_response is not None:
        found = changes.changes(previous.questionnaire_response, new_qr, lang)
        added += changes.lines(found, lang, previous.authored or None)
    if completed:
        added.append(f"{load().text('revision', field='completed').get(lang)}: {', '.join(completed)}.")
    lines = [lines[0], *added, *lines[1:]]
    attachment["data"] = base64.b64encode(("\n".join(lines) + "\n").encode("utf-8")).decode("ascii")
    note["text"] = _narrative(lang, str(note.get("description", "")), lines)


def _record_revision(provenance: JSON, preds: list[StoredPlan], lang: str, written: set[str]) -> None:
    provenance["activity"] = {
        "coding": [{"system": codes.DATA_OPERATION, "code": "UPDATE", "display": "revise"}]
    }
    for p in preds:
        old = _superseded(p, written)
        for r in old:
            provenance["target"].append({"reference": _ref(r)})
        qr = p.questionnaire_response
        for r in [*old, *([qr] if qr is not None and _ref(qr) not in written else [])]:
            provenance["entity"].append({"role": "revision", "what": {"reference": _ref(r)}})
    c = load()
    lines = [
        f"{c.text('journal', field='date').get(lang)}: {format_date(str(provenance.get('recorded', '')), lang)}",
        f"{c.text('revision', field='replaces').get(lang)} {format_date(preds[0].authored, lang)}.",
    ]
    provenance["text"] = _narrative(lang, c.text("neutral", field="provenance-title").get(lang), lines)


# ---- sending ------------------------------------------------------------------------------------


def _is_conflict(err: Exception) -> bool:
    return isinstance(err, FhirHttpError) and err.status in (409, 412)


def send(bundle: JSON, client: FhirClient) -> JSON:
    """Deliver one journal bundle as a revision of the patient's current plan; the transaction-response.

    Any other bundle is sent as it is. A first plan is checked once more after it is written, for another first
    plan of the patient written at the same moment (:mod:`fhir_safetyplan.simultaneous`). Raises
    :class:`RevisionConflict` (held for a person) and the client's errors.
    """
    identity = journal_identity(bundle)
    if identity is None:
        return client.transaction(bundle)
    system, submission = identity
    subject = _entries(bundle, "QuestionnaireResponse")[0]["resource"].get("subject")

    def lookup() -> CurrentPlan:
        return find(client, subject, system, submission)

    current = lookup()
    race = simultaneous.after_first(bundle, current)
    if race.kind == "retire":
        # a resend of the older of two plans that raced, whose first attempt stopped before it retired itself
        return simultaneous.retire(race, bundle, client, lookup)
    revision = revise(bundle, current)
    response = _send_revision(bundle, revision, client, lookup)
    if revision.kind != "first" or not simultaneous.others_active(client, subject, system, submission):
        return response
    again = lookup()
    race = simultaneous.after_first(bundle, again)
    if race.kind == "retire":
        return simultaneous.retire(race, bundle, client, lookup)
    if race.kind == "revise":
        log.warning("submission %s: an older conversation's first plan arrived at the same time", submission)
        return _send_revision(bundle, revise(bundle, again), client, lookup)
    return response


def _send_revision(
    bundle: JSON, revision: Revision, client: FhirClient, lookup: Callable[[], CurrentPlan]
) -> JSON:
    """Send what :func:`revise` computed; a guarded revision that lost a race is re-checked once."""
    submission = (journal_identity(bundle) or ("", ""))[1]
    if revision.bundle is None:
        log.info("submission %s is on the server and superseded since; nothing sent", submission)
        assert revision.response is not None
        return revision.response
    try:
        return client.transaction(revision.bundle)
    except FhirHttpError as err:
        if not (revision.guarded and _is_conflict(err)):
            raise
        log.warning("submission %s: the plan it revises changed meanwhile (HTTP %s)", submission, err.status)
    again = lookup()
    own = again.own
    if own is not None and (own.active or not (own.care_plan or own.flag)):
        # Our own earlier attempt went through and its answer was lost, or the plan we revised was retired
        # meanwhile by its own sender (two first plans at once): sending again changes nothing old.
        retry = revise(bundle, again)
        if retry.bundle is None:
            assert retry.response is not None
            return retry.response
        return client.transaction(retry.bundle)
    now = again.current
    raise _conflict(
        "Nothing was written: the patient's plan was revised by someone else while this plan was being "
        f"delivered (the versions read changed before the write). The current plan is now "
        f"{'from ' + now.authored[:10] + ', submission ' + now.submission if now else 'none'}. A person must "
        "compare the two plans before this one may replace the current one."
    )
