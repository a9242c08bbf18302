"""Journal documentation: from a validated QuestionnaireResponse and the extracted CarePlan to the resources
written to the record — QuestionnaireResponse, CarePlan, safety Flag, journal note (DocumentReference) and
Provenance — each with confidentiality labels, a neutral title, a valid escaped narrative, a deterministic id
and the submission identifier.

Pure functions: no network, no clock (dates come from ``QuestionnaireResponse.authored``), no logging of content.
"""

from __future__ import annotations

import base64
import copy
from dataclasses import dataclass, field
from html import escape
from typing import Literal

from fhir_safetyplan import codes, fhir_r4
from fhir_safetyplan.codes import ACT_CODE, CONFIDENTIALITY, WRITTEN_TYPES
from fhir_safetyplan.content import Content, load
from fhir_safetyplan.errors import JSON, InputError, one_issue
from fhir_safetyplan.form_ids import CS_PLAN, FLAG_CODE
from fhir_safetyplan.ids import full_url, plan_scope, resource_id
from fhir_safetyplan.response_answers import access_labels, answers_by_link, involvement_of
from fhir_safetyplan.sentences import format_date, response_lines, safe_contact_text

CONFIDENTIALITY_DISPLAY = {"R": "restricted", "V": "very restricted"}


@dataclass(frozen=True)
class CrisisCentre:
    """The local crisis centre: deployment configuration, never content (numbers must be certain).

    The command line and the service read it from ``SAFETYPLAN_CRISIS_CENTRE_NAME`` / ``_PHONE``
    (:func:`fhir_safetyplan.settings.crisis_centre`)."""

    name: str
    phone: str | None = None


@dataclass(frozen=True)
class DocumentContext:
    """What documentation needs beyond the response itself."""

    organization: JSON | None = None
    confidentiality: Literal["R", "V"] = "R"
    #: Create a minimal test Patient (identifier only) by conditional create — for sandboxes and tests only.
    create_patient: bool = False
    crisis_centre: CrisisCentre | None = field(default=None)
    canonical_base: str | None = None


@dataclass
class Documentation:
    """The resources of one submission, keyed by resource type, with their fullUrls and ids."""

    submission: str
    resources: list[JSON]
    full_urls: dict[str, str]
    patient_entry: JSON | None = None

    def by_type(self, rtype: str) -> JSON | None:
        return next((r for r in self.resources if r["resourceType"] == rtype), None)


def security_labels(confidentiality: str, extra: list[JSON] | None = None) -> list[JSON]:
    """meta.security for every written resource: confidentiality R or V, v3-ActCode SDV, and ``extra`` (the
    Volven 9603 code when the documents are to be hidden from electronic access)."""
    return [
        {
            "system": CONFIDENTIALITY,
            "code": confidentiality,
            "display": CONFIDENTIALITY_DISPLAY[confidentiality],
        },
        {
            "system": ACT_CODE,
            "code": "SDV",
            "display": "sexual assault, abuse, or domestic violence information sensitivity",
        },
        *(extra or []),
    ]


def _missing(summary: str, text: str, where: str) -> InputError:
    """The error for a required element of the response that is missing (``where``: its FHIRPath)."""
    return InputError(summary, one_issue("error", "required", text, where))


def _party(qr: JSON, element: str, how: str) -> JSON:
    """``qr``'s ``subject`` or ``author``: a Reference with a reference or an identifier (``how``: what to give)."""
    party = qr.get(element)
    if not isinstance(party, dict) or not (party.get("reference") or party.get("identifier")):
        where = f"QuestionnaireResponse.{element}"
        raise _missing(f"the QuestionnaireResponse has no {element}", f"{where} is missing: {how}", where)
    return party


def _subject(qr: JSON, ctx: DocumentContext, scope: str, hidden: list[JSON]) -> tuple[JSON, JSON | None]:
    """The subject reference for every resource, and the test-Patient entry when one is to be created."""
    subject = _party(
        qr, "subject", "give the patient as a reference (Patient/<id>) or an identifier (FNR/D-number)"
    )
    if subject.get("reference"):
        return copy.deepcopy(subject), None
    ident = subject["identifier"]
    if not (isinstance(ident, dict) and ident.get("system") and ident.get("value")):
        raise _missing(
            "the patient identifier has no system or value",
            "subject.identifier needs both system and value",
            "QuestionnaireResponse.subject.identifier",
        )
    if ctx.create_patient:
        url = full_url(scope, "Patient")
        patient = {
            "fullUrl": url,
            "resource": {
                "resourceType": "Patient",
                "meta": {"security": security_labels(ctx.confidentiality, hidden)},
                "identifier": [dict(ident)],
            },
            "request": {
                "method": "POST",
                "url": "Patient",
                "ifNoneExist": f"identifier={ident['system']}|{ident['value']}",
            },
        }
        return {"reference": url, "identifier": dict(ident)}, patient
    # A conditional reference: the receiving server resolves it to its existing Patient (HAPI does, in
    # transactions), so the record is linked to the right person without this module ever writing a Patient.
    return {
        "reference": f"Patient?identifier={ident['system']}|{ident['value']}",
        "identifier": dict(ident),
    }, None


def _author(qr: JSON) -> JSON:
    how = (
        "give the clinician's HPR number as author.identifier (system urn:oid:2.16.578.1.12.4.1.4.4) "
        "or a reference"
    )
    return copy.deepcopy(_party(qr, "author", how))


def _narrative(lang: str, title: str, lines: list[str]) -> JSON:
    body = "".join(f"<p>{escape(line)}</p>" for line in lines)
    return {
        "status": "generated",
        "div": f'<div xmlns="http://www.w3.org/1999/xhtml" lang="{lang}" xml:lang="{lang}">'
        f"<h3>{escape(title)}</h3>{body}</div>",
    }


def _meta(ctx: DocumentContext, base: str, profile: str, extra: list[JSON]) -> JSON:
    return {
        "profile": [codes.profile_url(base, profile)],
        "security": security_labels(ctx.confidentiality, extra),
    }


def document(
    qr: JSON, questionnaire: JSON, extracted: JSON | None, ctx: DocumentContext, submission: str
) -> Documentation:
    """All resources to write for one validated QuestionnaireResponse.

    ``extracted`` is the SDC ``$extract`` transaction Bundle (its CarePlan, if any, is used). A refusal of
    involvement yields the QuestionnaireResponse, the journal note and the Provenance (and the safe-contact Flag
    when contact limits were agreed: a refusal does not make letters safe), and no CarePlan.
    """
    c = load()
    answers = answers_by_link(qr)
    frame, patient_entry = _frame(qr, questionnaire, ctx, submission, answers)
    resources = [_response_resource(qr, frame, c)]
    careplan = _careplan_resource(_extracted_careplan(extracted), frame, c, involvement_of(answers))
    if careplan is not None:
        resources.append(careplan)
    flag = _flag_resource(qr, frame, c)
    if flag is not None:
        resources.append(flag)
    resources.append(_note_resource(qr, frame, c, with_careplan=careplan is not None))
    resources.append(_provenance_resource(frame, c, resources))
    return Documentation(
        submission=submission, resources=resources, full_urls=frame.urls, patient_entry=patient_entry
    )


@dataclass(frozen=True)
class _Frame:
    """What every resource of one submission shares: language, labels, subject, author, identifier, links."""

    ctx: DocumentContext
    base: str
    lang: str
    scope: str
    hidden: list[JSON]
    subject: JSON
    author: JSON
    ident: JSON
    urls: dict[str, str]
    authored: str
    encounter: JSON | None

    def id(self, rtype: str) -> str:
        return resource_id(self.scope, rtype)

    def meta(self, profile: str) -> JSON:
        return _meta(self.ctx, self.base, profile, self.hidden)

    def narrative(self, title: str, lines: list[str]) -> JSON:
        return _narrative(self.lang, title, lines)


def _frame(
    qr: JSON, questionnaire: JSON, ctx: DocumentContext, submission: str, answers: dict[str, list[JSON]]
) -> tuple[_Frame, JSON | None]:
    """The shared part of every resource, and the test-Patient entry when one is to be created."""
    base = codes.canonical_base(ctx.canonical_base)
    lang = str(questionnaire.get("language") or qr.get("language") or "nb")
    if lang not in codes.LANGUAGES:
        lang = "nb"
    hidden = access_labels(answers)
    scope = plan_scope(submission, qr.get("subject"))
    subject, patient_entry = _subject(qr, ctx, scope, hidden)
    author = _author(qr)
    encounter = qr.get("encounter")
    frame = _Frame(
        ctx=ctx,
        base=base,
        lang=lang,
        scope=scope,
        hidden=hidden,
        subject=subject,
        author=author,
        ident={"system": codes.submission_system(base), "value": submission},
        urls={t: full_url(scope, t) for t in WRITTEN_TYPES},
        authored=str(qr.get("authored", "")),
        encounter=encounter if encounter else None,
    )
    return frame, patient_entry


def _response_resource(qr: JSON, f: _Frame, c: Content) -> JSON:
    """The QuestionnaireResponse as written: only the elements we write, our id, labels and narrative."""
    out_qr = sanitized_response(qr)
    out_qr["id"] = f.id("QuestionnaireResponse")
    out_qr["meta"] = f.meta("sikkerhetsplan-questionnaireresponse")
    out_qr["identifier"] = f.ident
    out_qr["language"] = (
        f.lang
    )  # a renderer's response may lack it; validators read displays in this language
    out_qr["subject"] = f.subject
    # Our own narrative replaces any the sender gave: it is generated from the answers and escaped (dom-6).
    out_qr["text"] = f.narrative(
        c.text("neutral", field="form-title").get(f.lang), response_lines(qr, f.lang, c)
    )
    return _ordered(out_qr)


def _extracted_careplan(extracted: JSON | None) -> JSON | None:
    """The CarePlan of an ``$extract`` transaction Bundle, if it has one."""
    if not extracted:
        return None
    return next(
        (
            e["resource"]
            for e in extracted.get("entry", [])
            if e.get("resource", {}).get("resourceType") == "CarePlan"
        ),
        None,
    )


def _careplan_resource(careplan: JSON | None, f: _Frame, c: Content, involvement: str | None) -> JSON | None:
    """The extracted CarePlan completed for the record, or None when there is no plan to write.

    A plan when one was made (services involved, or a safety conversation only), and on a refusal only when
    something is still to be done (a report of concern to be sent is tracked also after a refusal).
    """
    planned = involvement in ("yes", "conversation-only")
    if careplan is None or not (planned or careplan.get("activity")):
        return None
    cp = copy.deepcopy(careplan)
    cp["id"] = f.id("CarePlan")
    cp["meta"] = f.meta("sikkerhetsplan-careplan")
    cp["language"] = f.lang
    cp["identifier"] = [f.ident]
    cp["subject"] = f.subject
    cp["author"] = f.author
    if f.encounter:
        cp["encounter"] = copy.deepcopy(f.encounter)
    cp["supportingInfo"] = [{"reference": f.urls["QuestionnaireResponse"]}]
    cp["created"] = f.authored
    title = c.text("neutral", field="careplan-title").get(f.lang)
    cp["title"] = title
    lines = []
    for activity in cp.get("activity", []):
        codings = fhir_r4.activity_codings(activity)
        label = codings[0].get("display") if codings else None
        description = fhir_r4.activity_description(activity)
        lines.append(f"{label}: {description}" if label else description)
    cp["text"] = f.narrative(title, lines)
    return _ordered(cp)


def _flag_resource(qr: JSON, f: _Frame, c: Content) -> JSON | None:
    """The safe-contact Flag, or None when no contact arrangement was agreed."""
    contact = safe_contact_text(qr, f.lang, c)
    if not contact:
        return None
    flag_title = c.text("neutral", field="flag-title").get(f.lang)
    instruction = c.text("safe-contact", "flag").get(f.lang)
    flag: JSON = {
        "resourceType": "Flag",
        "id": f.id("Flag"),
        "meta": f.meta("sikkerhetsplan-flag"),
        "language": f.lang,
        "text": f.narrative(flag_title, [instruction, contact]),
        "identifier": [f.ident],
        "status": "active",
        "category": [{"coding": [{"system": codes.FLAG_CATEGORY, "code": "safety", "display": "Safety"}]}],
        "code": {
            "coding": [
                {
                    "system": codes.codesystem_url(f.base, CS_PLAN),
                    "code": FLAG_CODE,
                    "display": c.text("neutral", field="flag-title").get(f.lang),
                }
            ],
            "text": f"{instruction} {contact}",
        },
        "subject": f.subject,
        "period": {"start": f.authored},
    }
    if f.encounter:
        flag["encounter"] = copy.deepcopy(f.encounter)
    flag["author"] = f.author
    return flag


def _note_resource(qr: JSON, f: _Frame, c: Content, *, with_careplan: bool) -> JSON:
    """The journal note: a DocumentReference holding the note as plain text, linked to the response and plan."""
    from fhir_safetyplan.journal import journal_lines  # a cycle: the note's text uses this module's helpers

    note_title = c.text("neutral", field="note-title").get(f.lang)
    lines = journal_lines(qr, f.lang, c, f.ctx.crisis_centre)
    note_text = "\n".join(lines) + "\n"
    related = [{"reference": f.urls["QuestionnaireResponse"]}]
    if with_careplan:
        related.append({"reference": f.urls["CarePlan"]})
    doc_context: JSON = {}
    if f.encounter:
        doc_context["encounter"] = [copy.deepcopy(f.encounter)]
    doc_context["related"] = related
    labels = security_labels(f.ctx.confidentiality, f.hidden)
    docref: JSON = {
        "resourceType": "DocumentReference",
        "id": f.id("DocumentReference"),
        "meta": f.meta("sikkerhetsplan-journalnotat"),
        "language": f.lang,
        "text": f.narrative(note_title, lines),
        "masterIdentifier": f.ident,
        "status": "current",
        "docStatus": "amended" if qr.get("status") == "amended" else "final",
        "type": {
            "coding": [{"system": codes.VOLVEN_DOCUMENT_TYPE, "code": "B02-2", "display": "Journalnotat"}]
        },
        # No category: the type (Journalnotat) is enough, and record systems list category beside the title.
        "subject": f.subject,
        "date": _instant(f.authored),
        "author": [f.author],
        "description": note_title,
        "securityLabel": [{"coding": [label]} for label in labels],
        "content": [
            {
                "attachment": {
                    "contentType": "text/plain; charset=utf-8",
                    "language": f.lang,
                    "data": base64.b64encode(note_text.encode("utf-8")).decode("ascii"),
                    "title": note_title,
                    "creation": f.authored,
                }
            }
        ],
        "context": doc_context,
    }
    if f.ctx.organization:
        docref["custodian"] = copy.deepcopy(f.ctx.organization)
    return docref


def _provenance_resource(f: _Frame, c: Content, targets: list[JSON]) -> JSON:
    """Who documented ``targets`` and from which response (entity role source)."""
    agent: JSON = {
        "type": {"coding": [{"system": codes.PROVENANCE_AGENT_TYPE, "code": "author", "display": "Author"}]},
        "who": f.author,
    }
    if f.ctx.organization:
        agent["onBehalfOf"] = copy.deepcopy(f.ctx.organization)
    return {
        "resourceType": "Provenance",
        "id": f.id("Provenance"),
        "meta": f.meta("sikkerhetsplan-provenance"),
        "language": f.lang,
        "text": f.narrative(
            c.text("neutral", field="provenance-title").get(f.lang),
            [f"{c.text('journal', field='date').get(f.lang)}: {format_date(f.authored, f.lang)}"],
        ),
        "target": [{"reference": f.urls[r["resourceType"]]} for r in targets],
        "recorded": _instant(f.authored),
        "activity": {"coding": [{"system": codes.DATA_OPERATION, "code": "CREATE", "display": "create"}]},
        "agent": [agent],
        "entity": [{"role": "source", "what": {"reference": f.urls["QuestionnaireResponse"]}}],
    }


#: The elements of a QuestionnaireResponse that are written to the record; anything else a sender included
#: (contained resources, extensions, source, basedOn, …) is left out: it could carry data we must never write,
#: such as an address or a phone number in a contained Patient.
_QR_ELEMENTS = (
    "resourceType",
    "id",
    "language",
    "identifier",
    "questionnaire",
    "status",
    "subject",
    "encounter",
    "authored",
    "author",
    "item",
)


def sanitized_response(qr: JSON) -> JSON:
    """A copy of a QuestionnaireResponse with only the elements this module writes, items and answers included."""

    def items(raw: list[JSON]) -> list[JSON]:
        out = []
        for it in raw:
            item: JSON = {k: copy.deepcopy(it[k]) for k in ("linkId", "text") if k in it}
            if it.get("answer"):
                item["answer"] = [
                    {
                        **{k: copy.deepcopy(v) for k, v in ans.items() if k.startswith("value")},
                        **({"item": items(ans["item"])} if ans.get("item") else {}),
                    }
                    for ans in it["answer"]
                ]
            if it.get("item"):
                item["item"] = items(it["item"])
            out.append(item)
        return out

    out: JSON = {k: copy.deepcopy(qr[k]) for k in _QR_ELEMENTS if k in qr and k != "item"}
    out["item"] = items(qr.get("item") or [])
    return out


def _instant(value: str) -> str:
    """An instant from a dateTime (Provenance.recorded and DocumentReference.date need full precision)."""
    if len(value) == 10:  # a date only: midnight UTC, the least precise honest instant
        return f"{value}T00:00:00Z"
    return value


_ORDER = (
    "resourceType",
    "id",
    "meta",
    "implicitRules",
    "language",
    "text",
    "contained",
    "extension",
    "modifierExtension",
    "identifier",
)


def _ordered(resource: JSON) -> JSON:
    """Conventional element order (resourceType, id, meta, ... first) so output reads like the spec's examples."""
    head = {k: resource[k] for k in _ORDER if k in resource}
    return {**head, **{k: v for k, v in resource.items() if k not in head}}
