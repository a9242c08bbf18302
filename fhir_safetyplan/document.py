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
from typing import Any, Literal

from fhir_safetyplan import codes
from fhir_safetyplan.codes import ACT_CODE, CONFIDENTIALITY, WRITTEN_TYPES, answer_code
from fhir_safetyplan.content import Content, load
from fhir_safetyplan.errors import JSON, InputError, issue, operation_outcome
from fhir_safetyplan.ids import full_url, plan_scope, resource_id
from fhir_safetyplan.questionnaire import CS_PLAN, FLAG_CODE, Link

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


def answers_by_link(qr: JSON) -> dict[str, list[JSON]]:
    """Every answer list in a QuestionnaireResponse, by linkId (nested items included)."""
    out: dict[str, list[JSON]] = {}

    # Defensive: also used to check responses that have not passed validation yet.
    def walk(items: Any, depth: int) -> None:
        if not isinstance(items, list) or depth > 50:
            return
        for it in items:
            if not isinstance(it, dict):
                continue
            answers = it.get("answer")
            if isinstance(answers, list) and isinstance(it.get("linkId"), str):
                out[it["linkId"]] = [a for a in answers if isinstance(a, dict)]
                for a in out[it["linkId"]]:
                    walk(a.get("item"), depth + 1)
            walk(it.get("item"), depth + 1)

    walk(qr.get("item"), 0)
    return out


def _coding(answers: dict[str, list[JSON]], link: str) -> list[JSON]:
    return [a["valueCoding"] for a in answers.get(link, []) if "valueCoding" in a]


def _yes(answers: dict[str, list[JSON]], link: str) -> bool | None:
    """True/False for a Y/N (or boolean) answer, None when unanswered or declined."""
    for a in answers.get(link, []):
        if "valueBoolean" in a:
            return bool(a["valueBoolean"])
        code = answer_code(a.get("valueCoding"))
        if code in ("Y", "N"):
            return code == "Y"
    return None


def _strings(answers: dict[str, list[JSON]], link: str) -> list[str]:
    return [str(a["valueString"]) for a in answers.get(link, []) if "valueString" in a]


def _subject(qr: JSON, ctx: DocumentContext, scope: str, hidden: list[JSON]) -> tuple[JSON, JSON | None]:
    """The subject reference for every resource, and the test-Patient entry when one is to be created."""
    subject = qr.get("subject")
    if not isinstance(subject, dict) or not (subject.get("reference") or subject.get("identifier")):
        raise InputError(
            "the QuestionnaireResponse has no subject",
            operation_outcome(
                [
                    issue(
                        "error",
                        "required",
                        "QuestionnaireResponse.subject is missing: give the patient as a reference "
                        "(Patient/<id>) or an identifier (FNR/D-number)",
                        "QuestionnaireResponse.subject",
                    )
                ]
            ),
        )
    if subject.get("reference"):
        return copy.deepcopy(subject), None
    ident = subject["identifier"]
    if not (isinstance(ident, dict) and ident.get("system") and ident.get("value")):
        raise InputError(
            "the patient identifier has no system or value",
            operation_outcome(
                [
                    issue(
                        "error",
                        "required",
                        "subject.identifier needs both system and value",
                        "QuestionnaireResponse.subject.identifier",
                    )
                ]
            ),
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
    author = qr.get("author")
    if not isinstance(author, dict) or not (author.get("reference") or author.get("identifier")):
        raise InputError(
            "the QuestionnaireResponse has no author",
            operation_outcome(
                [
                    issue(
                        "error",
                        "required",
                        "QuestionnaireResponse.author is missing: give the clinician's HPR number "
                        "as author.identifier (system urn:oid:2.16.578.1.12.4.1.4.4) or a reference",
                        "QuestionnaireResponse.author",
                    )
                ]
            ),
        )
    return copy.deepcopy(author)


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


def format_date(value: str, lang: str) -> str:
    """A FHIR date(Time) as the record writes it: 20.11.2026 in Norwegian, ISO 2026-11-20 in English."""
    day = str(value)[:10]
    if lang in ("nb", "nn") and len(day) == 10 and day[4] == "-" and day[7] == "-":
        return f"{day[8:10]}.{day[5:7]}.{day[0:4]}"
    return day


def _sentence(text: str) -> str:
    """Free text as a sentence of the note: trimmed, ending with a full stop unless it ends with punctuation."""
    text = text.strip()
    return text if not text or text[-1] in ".!?" else text + "."


def involvement_of(answers: dict[str, list[JSON]]) -> str | None:
    """``yes`` (services involved), ``conversation-only`` (a safety plan, no other services now), ``no`` (a
    refusal), or None when unanswered."""
    for coding in _coding(answers, Link.INVOLVEMENT):
        code = answer_code(coding)
        if code in ("Y", "N"):
            return "yes" if code == "Y" else "no"
        if coding.get("code") == load().option("involvement", "conversation-only").code:
            return "conversation-only"
    return None


def access_labels(answers: dict[str, list[JSON]]) -> list[JSON]:
    """The Volven 9603 codes chosen for hiding the documents from electronic access (empty when not chosen)."""
    return [
        {"system": str(x["system"]), "code": str(x["code"])}
        for x in _coding(answers, Link.ACCESS_HIDE)
        if x.get("system") == codes.VOLVEN_ACCESS and isinstance(x.get("code"), str)
    ]


def _lower_first(text: str) -> str:
    """Lower-case the first letter when it continues a sentence ("… tilbys hjelp med: lage …"), but keep
    abbreviations and names (SMS, SARA:SV) as they are."""
    if len(text) > 1 and text[0].isupper() and not text[1].isupper():
        return text[0].lower() + text[1:]
    return text


def response_lines(qr: JSON, lang: str, content: Content | None = None) -> list[str]:
    """One line per answered question of a response: its text and the answer(s), for the narrative."""
    c = content or load()
    yes, no = c.text("journal", field="yes").get(lang), c.text("journal", field="no").get(lang)
    lines: list[str] = []

    def value(answer: JSON) -> str:
        for key, v in answer.items():
            if key == "valueBoolean":
                return yes if v else no
            if key == "valueCoding" and isinstance(v, dict):
                return str(v.get("display") or v.get("code") or "")
            if key.startswith("value"):
                return str(v)
        return ""

    def walk(items: list[JSON]) -> None:
        for it in items:
            answers = it.get("answer") or []
            if it.get("linkId") == Link.CODE_WORD:
                continue  # the code word is shown in the contact agreement (Flag) only
            if answers:
                text = it.get("text") or it.get("linkId")
                sep = " " if str(text).rstrip().endswith("?") else ": "
                lines.append(f"{text}{sep}{'; '.join(value(a) for a in answers)}")
                for a in answers:
                    walk(a.get("item") or [])
            walk(it.get("item") or [])

    walk(qr.get("item") or [])
    return lines


def _display(c: Content, section: str, coding: JSON, lang: str) -> str:
    for o in c.options(section):
        if o.code == coding.get("code"):
            return o.display.get(lang)
    return str(coding.get("display") or coding.get("code"))


def safe_contact_parts(
    qr: JSON, lang: str, content: Content | None = None, *, code_word: bool = True
) -> list[str]:
    """The agreed contact arrangement as sentences (empty when nothing was agreed): how the patient may and must
    not be contacted, when, anything else agreed, the agreed code word (``code_word``: the Flag has it, the
    journal note does not) and when the agreement is to be reviewed."""
    c = content or load()

    def j(key: str) -> str:
        return c.text("journal", field=key).get(lang)

    a = answers_by_link(qr)
    parts = []
    safe = [_lower_first(_display(c, "channels", x, lang)) for x in _coding(a, Link.SAFE_CHANNELS)]
    unsafe = [_lower_first(_display(c, "channels", x, lang)) for x in _coding(a, Link.UNSAFE_CHANNELS)]
    if safe:
        parts.append(f"{j('contact-safe')}: {'; '.join(safe)}.")
    if unsafe:
        parts.append(f"{j('contact-unsafe')}: {'; '.join(unsafe)}.")
    parts += [f"{j('contact-times')}: {_sentence(s)}" for s in _strings(a, Link.SAFE_TIMES)]
    parts += [f"{j('contact-note')}: {_sentence(s)}" for s in _strings(a, Link.SAFE_NOTE)]
    if code_word:
        parts += [f"{j('contact-code-word')}: {_sentence(s)}" for s in _strings(a, Link.CODE_WORD)]
    if parts:
        review = [format_date(str(x.get("valueDate")), lang) for x in a.get(Link.SAFE_REVIEW, [])]
        parts += [f"{j('contact-review')}: {d}." for d in review]
    return parts


def safe_contact_text(qr: JSON, lang: str, content: Content | None = None) -> str:
    """:func:`safe_contact_parts` as one text ('' when nothing was agreed)."""
    return " ".join(safe_contact_parts(qr, lang, content))


def document(
    qr: JSON, questionnaire: JSON, extracted: JSON | None, ctx: DocumentContext, submission: str
) -> Documentation:
    """All resources to write for one validated QuestionnaireResponse.

    ``extracted`` is the SDC ``$extract`` transaction Bundle (its CarePlan, if any, is used). A refusal of
    involvement yields the QuestionnaireResponse, the journal note and the Provenance (and the safe-contact Flag
    when contact limits were agreed: a refusal does not make letters safe), and no CarePlan.
    """
    c = load()
    base = codes.canonical_base(ctx.canonical_base)
    lang = str(questionnaire.get("language") or qr.get("language") or "nb")
    if lang not in codes.LANGUAGES:
        lang = "nb"
    answers = answers_by_link(qr)
    hidden = access_labels(answers)
    scope = plan_scope(submission, qr.get("subject"))
    subject, patient_entry = _subject(qr, ctx, scope, hidden)
    author = _author(qr)
    ident = {"system": codes.submission_system(base), "value": submission}
    urls = {t: full_url(scope, t) for t in WRITTEN_TYPES}
    authored = str(qr.get("authored", ""))
    encounter = qr.get("encounter")
    resources: list[JSON] = []

    out_qr = sanitized_response(qr)
    out_qr["id"] = resource_id(scope, "QuestionnaireResponse")
    out_qr["meta"] = _meta(ctx, base, "sikkerhetsplan-questionnaireresponse", hidden)
    out_qr["identifier"] = ident
    out_qr["language"] = lang  # a renderer's response may lack it; validators read displays in this language
    out_qr["subject"] = subject
    # Our own narrative replaces any the sender gave: it is generated from the answers and escaped (dom-6).
    out_qr["text"] = _narrative(
        lang, c.text("neutral", field="form-title").get(lang), response_lines(qr, lang, c)
    )
    out_qr = _ordered(out_qr)
    resources.append(out_qr)

    careplan = None
    if extracted:
        careplan = next(
            (
                e["resource"]
                for e in extracted.get("entry", [])
                if e.get("resource", {}).get("resourceType") == "CarePlan"
            ),
            None,
        )
    # A plan when one was made (services involved, or a safety conversation only), and on a refusal only when
    # something is still to be done (a report of concern to be sent is tracked also after a refusal).
    planned = involvement_of(answers) in ("yes", "conversation-only")
    if careplan is not None and (planned or careplan.get("activity")):
        cp = copy.deepcopy(careplan)
        cp["id"] = resource_id(scope, "CarePlan")
        cp["meta"] = _meta(ctx, base, "sikkerhetsplan-careplan", hidden)
        cp["language"] = lang
        cp["identifier"] = [ident]
        cp["subject"] = subject
        cp["author"] = author
        if encounter:
            cp["encounter"] = copy.deepcopy(encounter)
        cp["supportingInfo"] = [{"reference": urls["QuestionnaireResponse"]}]
        cp["created"] = authored
        title = c.text("neutral", field="careplan-title").get(lang)
        cp["title"] = title
        lines = []
        for activity in cp.get("activity", []):
            detail = activity.get("detail", {})
            label = next((x.get("display") for x in detail.get("code", {}).get("coding", [])), None)
            description = str(detail.get("description", ""))
            lines.append(f"{label}: {description}" if label else description)
        cp["text"] = _narrative(lang, title, lines)
        resources.append(_ordered(cp))

    contact = safe_contact_text(qr, lang, c)
    if contact:
        flag_title = c.text("neutral", field="flag-title").get(lang)
        instruction = c.text("safe-contact", "flag").get(lang)
        flag: JSON = {
            "resourceType": "Flag",
            "id": resource_id(scope, "Flag"),
            "meta": _meta(ctx, base, "sikkerhetsplan-flag", hidden),
            "language": lang,
            "text": _narrative(lang, flag_title, [instruction, contact]),
            "identifier": [ident],
            "status": "active",
            "category": [
                {"coding": [{"system": codes.FLAG_CATEGORY, "code": "safety", "display": "Safety"}]}
            ],
            "code": {
                "coding": [
                    {
                        "system": codes.codesystem_url(base, CS_PLAN),
                        "code": FLAG_CODE,
                        "display": c.text("neutral", field="flag-title").get(lang),
                    }
                ],
                "text": f"{instruction} {contact}",
            },
            "subject": subject,
            "period": {"start": authored},
        }
        if encounter:
            flag["encounter"] = copy.deepcopy(encounter)
        flag["author"] = author
        resources.append(flag)

    note_title = c.text("neutral", field="note-title").get(lang)
    from fhir_safetyplan.journal import journal_lines

    lines = journal_lines(qr, lang, c, ctx.crisis_centre)
    note_text = "\n".join(lines) + "\n"
    related = [{"reference": urls["QuestionnaireResponse"]}]
    if any(r["resourceType"] == "CarePlan" for r in resources):
        related.append({"reference": urls["CarePlan"]})
    doc_context: JSON = {}
    if encounter:
        doc_context["encounter"] = [copy.deepcopy(encounter)]
    doc_context["related"] = related
    labels = security_labels(ctx.confidentiality, hidden)
    docref: JSON = {
        "resourceType": "DocumentReference",
        "id": resource_id(scope, "DocumentReference"),
        "meta": _meta(ctx, base, "sikkerhetsplan-journalnotat", hidden),
        "language": lang,
        "text": _narrative(lang, note_title, lines),
        "masterIdentifier": ident,
        "status": "current",
        "docStatus": "amended" if qr.get("status") == "amended" else "final",
        "type": {
            "coding": [{"system": codes.VOLVEN_DOCUMENT_TYPE, "code": "B02-2", "display": "Journalnotat"}]
        },
        # No category: the type (Journalnotat) is enough, and record systems list category beside the title.
        "subject": subject,
        "date": _instant(authored),
        "author": [author],
        "description": note_title,
        "securityLabel": [{"coding": [label]} for label in labels],
        "content": [
            {
                "attachment": {
                    "contentType": "text/plain; charset=utf-8",
                    "language": lang,
                    "data": base64.b64encode(note_text.encode("utf-8")).decode("ascii"),
                    "title": note_title,
                    "creation": authored,
                }
            }
        ],
        "context": doc_context,
    }
    if ctx.organization:
        docref["custodian"] = copy.deepcopy(ctx.organization)
    resources.append(docref)

    agent: JSON = {
        "type": {"coding": [{"system": codes.PROVENANCE_AGENT_TYPE, "code": "author", "display": "Author"}]},
        "who": author,
    }
    if ctx.organization:
        agent["onBehalfOf"] = copy.deepcopy(ctx.organization)
    provenance: JSON = {
        "resourceType": "Provenance",
        "id": resource_id(scope, "Provenance"),
        "meta": _meta(ctx, base, "sikkerhetsplan-provenance", hidden),
        "language": lang,
        "text": _narrative(
            lang,
            c.text("neutral", field="provenance-title").get(lang),
            [f"{c.text('journal', field='date').get(lang)}: {format_date(authored, lang)}"],
        ),
        "target": [{"reference": urls[r["resourceType"]]} for r in resources],
        "recorded": _instant(authored),
        "activity": {"coding": [{"system": codes.DATA_OPERATION, "code": "CREATE", "display": "create"}]},
        "agent": [agent],
        "entity": [{"role": "source", "what": {"reference": urls["QuestionnaireResponse"]}}],
    }
    resources.append(provenance)
    return Documentation(
        submission=submission, resources=resources, full_urls=urls, patient_entry=patient_entry
    )


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
