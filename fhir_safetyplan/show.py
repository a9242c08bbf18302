"""Reading a safety plan back from a FHIR server, and printing it for a clinician in the form's language.

:func:`read_plan` finds the current plan of one patient: it searches the journal resources we write
(QuestionnaireResponse, CarePlan, Flag, DocumentReference) by subject, takes the submission whose CarePlan or
safety Flag is ``active`` (a revision retires the earlier ones; never the newest ``_lastUpdated``, which
retiring bumps), and gathers every resource carrying that identifier (and the Provenance that targets them).
The earlier plans are listed by date, following the current CarePlan's ``replaces`` back first. :func:`render` turns the result into plain text: what is in place, the agreed
help, the safe-contact instructions and the journal note. Rendering is pure; only :func:`read_plan` and
:func:`resolve_patient` talk to the server, through :class:`~fhir_safetyplan.client.FhirClient`.

The printed text is personal data meant for the clinician's screen: it is never logged.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from fhir_safetyplan import codes, fhir_r4
from fhir_safetyplan.content import load
from fhir_safetyplan.current_plan import PLAN_TYPES, when
from fhir_safetyplan.delivery.guard import guard_public_server
from fhir_safetyplan.errors import JSON, InputError, SafetyPlanError, one_issue
from fhir_safetyplan.form_ids import Link
from fhir_safetyplan.jsonshape import obj as _obj
from fhir_safetyplan.jsonshape import objs as _objs
from fhir_safetyplan.response_answers import answers_by_link
from fhir_safetyplan.sentences import format_date, safe_contact_text

if TYPE_CHECKING:
    from fhir_safetyplan.client import FhirClient

log = logging.getLogger(__name__)

#: results per search page (a patient has few plans; more pages are followed)
PAGE_SIZE = "50"


class PlanNotFound(SafetyPlanError):
    """No safety plan (or no such patient) on the server. Exit code 1, with a not-found OperationOutcome."""


@dataclass(frozen=True)
class SafetyPlan:
    """The current safety plan of one patient as stored on the server (resources as the server returns them)."""

    patient: str
    submission: JSON
    questionnaire_response: JSON | None = None
    care_plan: JSON | None = None
    flag: JSON | None = None
    document_reference: JSON | None = None
    provenance: tuple[JSON, ...] = field(default=())
    #: the patient's other plans, (date, submission id): the ``replaces`` chain first, newest first
    earlier: tuple[tuple[str, str], ...] = field(default=())
    #: when this is not the current plan (``--submission``): the current plan's date
    current: str | None = None

    @property
    def language(self) -> str:
        """The form's language (nb, nn or en): the journal note's, else the response's, else nb."""
        for resource in (self.document_reference, self.questionnaire_response):
            lang = (resource or {}).get("language")
            if isinstance(lang, str) and lang in codes.LANGUAGES:
                return str(lang)
        questionnaire = str((self.questionnaire_response or {}).get("questionnaire", "")).split("|")[0]
        for lang in codes.TRANSLATED:
            if questionnaire.endswith(f"-{lang}"):
                return lang
        return "nb"

    @property
    def authored(self) -> str | None:
        """When the plan was made (the response's ``authored``, else the note's date)."""
        value = (self.questionnaire_response or {}).get("authored") or (self.document_reference or {}).get(
            "date"
        )
        return str(value) if value else None

    @property
    def note_text(self) -> str | None:
        """The journal note (the DocumentReference's attachment, decoded), or None."""
        for content in _objs((self.document_reference or {}).get("content")):
            attachment = _obj(content.get("attachment"))
            data = attachment.get("data")
            if isinstance(data, str):
                try:
                    return base64.b64decode(data, validate=True).decode("utf-8")
                except (binascii.Error, ValueError):
                    return None
        return None

    def resources(self) -> list[JSON]:
        """Every resource of the plan, in the order of the journal bundle."""
        found = [
            self.questionnaire_response,
            self.care_plan,
            self.flag,
            self.document_reference,
            *self.provenance,
        ]
        return [r for r in found if r is not None]


# ---- reading from the server ---------------------------------------------------------------------


def parse_token(text: str) -> tuple[str, str]:
    """``SYSTEM|VALUE`` → (system, value); InputError when either part is missing."""
    system, sep, value = text.partition("|")
    if not sep or not system.strip() or not value.strip():
        raise InputError(
            "the patient identifier must be SYSTEM|VALUE",
            one_issue(
                "error",
                "invalid",
                "Give the patient identifier as SYSTEM|VALUE, e.g. "
                f"{codes.FNR}|<11 digits> (FNR) or {codes.DNR}|<11 digits> (D-number).",
            ),
        )
    return system.strip(), value.strip()


def resolve_patient(client: FhirClient, identifier: str, *, public_hosts: Iterable[str] = ()) -> str:
    """``Patient/<id>`` of the one Patient with ``identifier`` (SYSTEM|VALUE); PlanNotFound if not exactly one.

    A real-looking identity number is never sent in a search to a public test server
    (:class:`~fhir_safetyplan.delivery.guard.RefusedByPolicy`, exit 6).
    """

    system, value = parse_token(identifier)
    guard_public_server(
        {"identifier": {"system": system, "value": value}}, client.base_url, public_hosts, root="search"
    )
    found = client.search("Patient", {"identifier": f"{system}|{value}", "_elements": "id"})
    patients = [p for p in found if p.get("resourceType") == "Patient" and isinstance(p.get("id"), str)]
    if len(patients) != 1:
        what = "no Patient has" if not patients else f"{len(patients)} Patients have"
        raise PlanNotFound(
            f"{what} this identifier on the server",
            one_issue(
                "error",
                "not-found" if not patients else "multiple-matches",
                f"{what} the identifier (system {system}) on {client.base_url}; "
                "give the patient as --patient Patient/<id> instead.",
            ),
        )
    return f"Patient/{patients[0]['id']}"


def find_patient(
    client: FhirClient, patient: str | None, identifier: str | None, *, public_hosts: Iterable[str] = ()
) -> str:
    """``Patient/<id>`` of the patient named by a reference (``patient``) or else by ``identifier``."""
    if identifier:
        return resolve_patient(client, identifier, public_hosts=public_hosts)
    return normalise_patient(patient or "")


def normalise_patient(patient: str) -> str:
    """``Patient/<id>`` from ``Patient/<id>`` or a bare id; InputError for anything else."""
    ref = patient.strip()
    if not ref.startswith("Patient/"):
        ref = f"Patient/{ref}"
    rid = ref.removeprefix("Patient/")
    if not rid or len(rid) > 64 or not all(ch.isalnum() or ch in "-." for ch in rid):
        raise InputError(
            "not a Patient reference",
            one_issue(
                "error",
                "invalid",
                "Give the patient as Patient/<id> (the server's id: letters, digits, '-', '.'), "
                "or use --patient-identifier SYSTEM|VALUE.",
            ),
        )
    return ref


def _submission_of(resource: JSON) -> JSON | None:
    idents: list[Any] = []
    if isinstance(resource.get("masterIdentifier"), dict):
        idents.append(resource["masterIdentifier"])
    ident = resource.get("identifier")
    idents += ident if isinstance(ident, list) else [ident]
    for i in idents:
        if (
            isinstance(i, dict)
            and codes.is_submission_system(i.get("system"))
            and isinstance(i.get("value"), str)
        ):
            return {"system": i["system"], "value": i["value"]}
    return None


# Resources come from a server as they are: every field is checked before use, so an odd resource
# renders as "(none)" for that part rather than failing.
def _clean_items(items: Any) -> list[JSON]:
    """QuestionnaireResponse items with list-shaped ``item``/``answer`` and a string ``linkId`` only."""
    out = []
    for it in _objs(items):
        if not isinstance(it.get("linkId"), str):
            continue
        clean = dict(it)
        if "item" in it:
            clean["item"] = _clean_items(it["item"])
        if "answer" in it:
            clean["answer"] = [
                {**a, "item": _clean_items(a["item"])} if "item" in a else a for a in _objs(it["answer"])
            ]
        out.append(clean)
    return out


def read_plan(client: FhirClient, patient: str, submission: str | None = None) -> SafetyPlan:
    """The current safety plan of ``patient`` (``Patient/<id>``) on the server, or the one of ``submission``.

    Raises :class:`PlanNotFound` when the patient has none, and the client's errors when the server fails.
    """
    patient = normalise_patient(patient)
    by_type: dict[str, list[JSON]] = {}
    for rtype in PLAN_TYPES:
        found = client.search(rtype, {"subject": patient, "_sort": "-_lastUpdated", "_count": PAGE_SIZE})
        by_type[rtype] = [r for r in found if r.get("resourceType") == rtype and _submission_of(r)]
    candidates = everything = [r for rs in by_type.values() for r in rs]
    if submission is not None:
        candidates = [r for r in candidates if (_submission_of(r) or {}).get("value") == submission]
    if not candidates:
        raise PlanNotFound(
            "no safety plan found for this patient",
            one_issue(
                "error",
                "not-found",
                f"No safety plan for {patient} on {client.base_url}"
                + (" with that submission id" if submission else "")
                + ": check the patient (and the server URL).",
            ),
        )
    ident = _submission_of(_current(candidates, by_type) if submission is None else candidates[0])
    assert ident is not None  # candidates all carry one

    def pick(rtype: str) -> JSON | None:
        return next((r for r in by_type[rtype] if _submission_of(r) == ident), None)

    plan = SafetyPlan(
        patient=patient,
        submission=ident,
        earlier=_earlier(ident, by_type),
        current=None if not everything else _current_date(ident, everything, by_type),
        questionnaire_response=pick("QuestionnaireResponse"),
        care_plan=pick("CarePlan"),
        flag=pick("Flag"),
        document_reference=pick("DocumentReference"),
    )
    targets = [f"{r['resourceType']}/{r['id']}" for r in plan.resources() if isinstance(r.get("id"), str)]
    provenance: list[JSON] = []
    if targets:
        found = client.search("Provenance", {"target": ",".join(targets), "_count": PAGE_SIZE})
        provenance = [r for r in found if r.get("resourceType") == "Provenance" and _is_own(r, plan)]
    log.info(
        "read plan of submission %s: %d resource(s)", ident["value"], len(plan.resources()) + len(provenance)
    )
    return replace(plan, provenance=tuple(provenance))


def _is_own(provenance: JSON, plan: SafetyPlan) -> bool:
    """The plan's own Provenance (its source is the plan's response), not a later plan's that retired it."""
    qr = plan.questionnaire_response
    if qr is None or not isinstance(qr.get("id"), str):
        return True
    source = f"QuestionnaireResponse/{qr['id']}"
    return any(
        e.get("role") == "source" and _obj(e.get("what")).get("reference") == source
        for e in _objs(provenance.get("entity"))
    )


def _when(resources: list[JSON]) -> str:
    for r in resources:
        for value in (r.get("authored"), r.get("created"), _obj(r.get("period")).get("start"), r.get("date")):
            if isinstance(value, str) and value:
                return value
    return ""


def _current(candidates: list[JSON], by_type: dict[str, list[JSON]]) -> JSON:
    """The current plan's resource: an active CarePlan or Flag of ours (the newest conversation among them, when
    older data has several), else the newest conversation — never the newest ``_lastUpdated``, which retiring
    an old plan bumps."""

    active = [r for t in ("CarePlan", "Flag") for r in by_type[t] if r.get("status") == "active"]
    pool = active or candidates

    def conversation(r: JSON) -> Any:
        return when(_when([x for x in candidates if _submission_of(x) == _submission_of(r)]))

    return max(pool, key=conversation)


def _current_date(ident: JSON, everything: list[JSON], by_type: dict[str, list[JSON]]) -> str | None:
    """The current plan's date when the plan shown (``ident``) is not the current one, else None."""
    current = _submission_of(_current(everything, by_type))
    if current is None or current == ident:
        return None
    return _when([r for r in everything if _submission_of(r) == current])


def _earlier(ident: JSON, by_type: dict[str, list[JSON]]) -> tuple[tuple[str, str], ...]:
    """The other plans of the patient: those the current CarePlan ``replaces`` (followed back), then the rest,
    newest conversation first."""

    subs: dict[str, list[JSON]] = {}
    for rs in by_type.values():
        for r in rs:
            sub = _submission_of(r)
            if sub is not None:
                subs.setdefault(sub["value"], []).append(r)
    careplans = {f"CarePlan/{r.get('id')}": r for r in by_type["CarePlan"]}
    chain: list[str] = []
    cp = next((r for r in subs.get(ident["value"], []) if r.get("resourceType") == "CarePlan"), None)
    while cp is not None and len(chain) < len(careplans):
        ref = next((str(x.get("reference")) for x in _objs(cp.get("replaces"))), None)
        cp = careplans.get(ref or "")
        sub = _submission_of(cp) if cp else None
        if sub is None or sub["value"] in chain or sub["value"] == ident["value"]:
            break
        chain.append(sub["value"])
    rest = sorted(
        (s for s in subs if s != ident["value"] and s not in chain),
        key=lambda s: when(_when(subs[s])),
        reverse=True,
    )
    return tuple((_when(subs[s]), s) for s in [*chain, *rest])


# ---- rendering ----------------------------------------------------------------------------------


def _answers(qr: JSON | None) -> dict[str, list[JSON]]:
    return answers_by_link({**qr, "item": _clean_items(qr.get("item"))}) if qr else {}


def in_place(plan: SafetyPlan, lang: str) -> list[str]:
    """The checklist points answered 'in place' (Y), in ``lang``."""

    answers = _answers(plan.questionnaire_response)
    out = []
    for item in load().checklist:
        for answer in answers.get(Link.checklist_item(item.key), []):
            coding = _obj(answer.get("valueCoding"))
            if codes.answer_code(coding) == "Y":
                out.append(item.text.get(lang))
    return out


def agreed_help(plan: SafetyPlan, lang: str) -> list[str]:
    """The CarePlan's open activities: the help for checklist points, in ``lang``, and the agreed actions as
    written (completed ones are left out)."""

    helps = {item.key: item.help.get(lang) for item in load().checklist}
    out = []
    for activity in _objs((plan.care_plan or {}).get("activity")):
        if fhir_r4.activity_status(activity) in ("completed", "cancelled"):
            continue  # done: carried from the previous plan as completed, no longer help to give
        code = next((c.get("code") for c in fhir_r4.activity_codings(activity)), None)
        text = helps.get(str(code)) or fhir_r4.activity_description(activity)
        if text:
            out.append(str(text))
    return out


def safe_contact(plan: SafetyPlan, lang: str) -> str | None:
    """The safe-contact instructions in ``lang`` (from the answers; else the Flag's text as stored)."""

    if plan.flag is None:
        return None
    qr = plan.questionnaire_response
    if qr is not None:
        text = safe_contact_text({**qr, "item": _clean_items(qr.get("item"))}, lang)
        if text:
            return f"{load().text('safe-contact', 'flag').get(lang)} {text}"
    code_text = _obj(plan.flag.get("code")).get("text")
    return str(code_text) if code_text else None


def render(plan: SafetyPlan, lang: str | None = None) -> str:
    """The plan as plain text for a clinician, in ``lang`` (default: the form's language)."""

    c = load()
    lang = lang if lang in codes.LANGUAGES else plan.language
    assert lang is not None

    def label(key: str) -> str:
        return c.text("show", field=key).get(lang)

    none = label("none")
    title = c.text("form", field="title").get(lang)
    date = (plan.authored or "")[:10]
    heading = f"{title} – {date}" if date else title
    lines = [heading, "=" * len(heading)]
    lines.append(f"{label('patient')}: {plan.patient}")
    lines.append(f"{label('submission')}: {plan.submission['value']}")

    if plan.current is not None:
        reason = c.text("revision", field="status-reason").get(lang)
        lines.append(
            f"{reason}. {c.text('revision', field='current').get(lang)}: {format_date(plan.current, lang)}"
        )
    shown = plan.authored or ""
    earlier = [(d, s) for d, s in plan.earlier if plan.current is None or when(d) < when(shown)]
    if earlier:
        dates = ", ".join(format_date(d, lang) if d else s for d, s in earlier)
        lines.append(f"{c.text('revision', field='earlier').get(lang)}: {dates}")
    lines.append("")

    lines.append(f"{c.text('journal', field='in-place').get(lang)}:")
    points = in_place(plan, lang)
    lines += [f"  – {p}" for p in points] or [f"  {none}"]
    lines.append("")

    lines.append(f"{label('agreed-help')}:")
    if plan.care_plan is None:
        lines.append(f"  {label('no-plan')}")
    else:
        helps = agreed_help(plan, lang)
        lines += [f"  – {h}" for h in helps] or [f"  {none}"]
    lines.append("")

    lines.append(f"{c.text('safe-contact').get(lang)}:")
    contact = safe_contact(plan, lang)
    lines.append(f"  {contact}" if contact else f"  {none}")
    lines.append("")

    note_title = c.text("neutral", field="note-title").get(lang)
    note = plan.note_text
    note_lang = plan.language
    lines.append(f"{note_title}{f' ({note_lang})' if note and note_lang != lang else ''}:")
    if note:
        lines += [f"  {line}" if line else "" for line in note.rstrip("\n").split("\n")]
    else:
        lines.append(f"  {none}")
    return "\n".join(lines) + "\n"
