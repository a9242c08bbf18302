"""The *answers document*: a plain JSON form of one safety-planning conversation, for integration engines that
hold answers rather than a QuestionnaireResponse — and its conversion into a QuestionnaireResponse.

The schema is a Pydantic model (``AnswersDocument``); ``safetyplan schema`` prints it as JSON Schema.
Every word list comes from ``content.toml``: the words for coded answers are its ``[answers.*] words`` (English,
then Norwegian, then the code), the checklist keys its ``[[checklist]]`` keys, and channel, duty, instrument and
level codes those of our CodeSystems. The types below are ``Literal`` types built from those lists, so the JSON
Schema lists them as enums (mypy sees ``str``).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from fhir_safetyplan import codes
from fhir_safetyplan.content import load
from fhir_safetyplan.errors import JSON, InputError, issue, one_issue, operation_outcome
from fhir_safetyplan.form_ids import Link
from fhir_safetyplan.identifiers import is_valid_organisation_number
from fhir_safetyplan.ids import derived_id, plan_scope, resource_id
from fhir_safetyplan.jsonshape import items_by_link
from fhir_safetyplan.questionnaire import ANSWER_WORDS, shared_questionnaire

if TYPE_CHECKING:
    from fhir_safetyplan.document import DocumentContext

#: The Questionnaire version an answers document answers (its schema has the items of content 1.0.0).
ANSWERS_VERSION = "1.0.0"
_CONTENT = load()
#: the checklist items' keys, in the form's order
CHECKLIST_KEYS: tuple[str, ...] = tuple(ci.key for ci in _CONTENT.checklist)
#: the words for a yes (``ja`` too) and for a no, and every word an answer may be written as
YES_WORDS = _CONTENT.words("answers", ANSWERS_VERSION, "Y")
NO_WORDS = _CONTENT.words("answers", ANSWERS_VERSION, "N")
_DECLINED = _CONTENT.words("answers", ANSWERS_VERSION, "asked-declined")[0]
WORDS = _CONTENT.words("answers", ANSWERS_VERSION)


def one_of(values: tuple[str, ...]) -> Any:
    """A ``Literal`` type of ``values`` (a list from content.toml), so that JSON Schema shows them as an enum."""
    return Literal[values]


if TYPE_CHECKING:
    Word = str
    YesNo = str
    YesNoDeclined = str
    Channel = str
    ChecklistKey = str
    Duty = str
    Instrument = str
    Level = str
else:
    Word = one_of(WORDS)
    YesNo = one_of(_CONTENT.words("answers", ANSWERS_VERSION, "Y", "N"))
    YesNoDeclined = one_of(_CONTENT.words("answers", ANSWERS_VERSION, "Y", "N", "asked-declined"))
    Channel = one_of(_CONTENT.codes("channels", ANSWERS_VERSION))
    ChecklistKey = one_of(CHECKLIST_KEYS)
    Duty = one_of(_CONTENT.codes("duty-status", ANSWERS_VERSION))
    Instrument = one_of(_CONTENT.codes("instruments", ANSWERS_VERSION))
    Level = one_of(_CONTENT.codes("levels", ANSWERS_VERSION))
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=500)]
LongText = Annotated[str, StringConstraints(min_length=1, max_length=4000)]
Digits = Annotated[str, StringConstraints(pattern=r"^[0-9]+$")]
Reference = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, str_strip_whitespace=True, frozen=True)


class Patient(_Model):
    """Who the plan is about: a national identity number (FNR) or D-number, or a literal reference."""

    fnr: Annotated[str, StringConstraints(pattern=r"^[0-9]{11}$")] | None = None
    dnr: Annotated[str, StringConstraints(pattern=r"^[0-9]{11}$")] | None = None
    reference: Reference | None = Field(None, description="e.g. Patient/123 on the receiving server")

    @model_validator(mode="after")
    def _one(self) -> Patient:
        if sum(x is not None for x in (self.fnr, self.dnr, self.reference)) == 0:
            raise ValueError("give the patient's fnr, dnr or reference")
        if self.fnr and self.dnr:
            raise ValueError("give either fnr or dnr, not both")
        return self


class Clinician(_Model):
    """The health professional documenting: HPR number, and optionally a literal reference."""

    hpr: Annotated[str, StringConstraints(pattern=r"^[0-9]{7,9}$")]
    reference: Reference | None = None


class Organization(_Model):
    """The organisation responsible: organisation number (9 digits), optionally a literal reference."""

    orgnr: Annotated[str, StringConstraints(pattern=r"^[0-9]{9}$")]
    reference: Reference | None = None

    @field_validator("orgnr")
    @classmethod
    def _check_digit(cls, value: str) -> str:
        if not is_valid_organisation_number(value):
            raise ValueError("the organisation number's check digit (mod 11) is wrong; check the number")
        return value


class SafeContact(_Model):
    safe: list[Channel] = Field(default_factory=list, description="channels that are safe to use")
    unsafe: list[Channel] = Field(default_factory=list, description="channels that must never be used")
    times: ShortText | None = None
    note: LongText | None = None

    @model_validator(mode="after")
    def _disjoint(self) -> SafeContact:
        both = sorted(set(self.safe) & set(self.unsafe))
        if both:
            raise ValueError(f"channel(s) {', '.join(both)} cannot be both safe and unsafe")
        return self


class Dependants(_Model):
    present: YesNoDeclined
    children_count: StrictInt | None = Field(None, alias="childrenCount", ge=0, le=30)
    plan: LongText | None = None
    duty: Duty | None = None
    duty_note: LongText | None = Field(None, alias="dutyNote", description="reasoning / what was done")


class Mental(_Model):
    present: YesNoDeclined
    adaptation: LongText | None = None


class Risk(_Model):
    done: StrictBool
    instrument: Instrument | None = None
    date: dt.date | None = None
    level: Level | None = None


class Answers(_Model):
    """The answers, by item. Items that do not apply (e.g. the checklist after a refusal) are left out."""

    informed: StrictBool
    involvement: YesNo
    refusal_note: LongText | None = Field(None, alias="refusalNote")
    refusal_informed: StrictBool | None = Field(
        None,
        alias="refusalInformed",
        description="on a refusal: told where to find help later, and about 112/113",
    )
    safe_contact: SafeContact | None = Field(None, alias="safeContact")
    existing_measures: LongText | None = Field(None, alias="existingMeasures")
    checklist: dict[ChecklistKey, Word] | None = None
    agreed_actions: list[ShortText] = Field(default_factory=list, alias="agreedActions", max_length=50)
    behaviour_advice_given: StrictBool | None = Field(None, alias="behaviourAdviceGiven")
    dependants: Dependants
    mental: Mental | None = None
    risk: Risk | None = None

    @model_validator(mode="after")
    def _only_enabled_items(self) -> Answers:
        """An answer to an item the form would not show is an error, not silently dropped: the sender thinks it
        was recorded."""
        problems = []
        wants = self.involvement in YES_WORDS
        if wants and (self.refusal_note or self.refusal_informed is not None):
            problems.append(
                f"refusalNote and refusalInformed are only for a refusal (involvement {NO_WORDS[0]})"
            )
        if not wants:
            given = [
                name
                for name, value in (
                    ("checklist", self.checklist),
                    ("agreedActions", self.agreed_actions),
                    ("behaviourAdviceGiven", self.behaviour_advice_given),
                )
                if value not in (None, [], {})
            ]
            if given:
                problems.append(
                    f"{', '.join(given)} belong to the safety plan, which is not made when the "
                    f"patient does not want involvement; leave them out or set involvement to {YES_WORDS[0]}"
                )
        d = self.dependants
        if d.present not in YES_WORDS:
            given = [n for n, v in (("childrenCount", d.children_count), ("plan", d.plan)) if v is not None]
            if given:
                problems.append(
                    f"dependants.{', dependants.'.join(given)} only apply when dependants.present is {YES_WORDS[0]}"
                )
        if d.present in NO_WORDS and (d.duty or d.duty_note):
            problems.append(
                f"dependants.duty and dutyNote apply when dependants.present is {YES_WORDS[0]} or "
                f"{_DECLINED}, not {NO_WORDS[0]}"
            )
        if self.mental and self.mental.present not in YES_WORDS and self.mental.adaptation:
            problems.append(f"mental.adaptation only applies when mental.present is {YES_WORDS[0]}")
        if self.risk and not self.risk.done and (self.risk.instrument or self.risk.date or self.risk.level):
            problems.append("risk.instrument, date and level only apply when risk.done is true")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class AnswersDocument(_Model):
    """One safety-planning conversation, as an integration engine would hand it over."""

    submission_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9\-._:]{1,100}$")] | None = Field(
        None,
        alias="submissionId",
        description="stable id of this submission; re-sending the same id never duplicates. "
        "Default: derived from the document's content.",
    )
    language: Literal["nb", "nn", "en"] = "nb"
    # Only a finished conversation is documented in the record; a draft stays in the form.
    status: Literal["completed", "amended"] = "completed"
    authored: dt.datetime = Field(description="when the conversation was documented, with time zone")
    confidentiality: Literal["R", "V"] | None = Field(
        None,
        description="R (restricted, the default) or V (very restricted); the stricter of this and the "
        "caller's setting applies",
    )
    patient: Patient
    clinician: Clinician
    organization: Organization | None = None
    encounter: Reference | None = None
    answers: Answers

    @field_validator("authored")
    @classmethod
    def _aware(cls, value: dt.datetime) -> dt.datetime:
        if value.tzinfo is None:
            raise ValueError("authored must have a time zone, e.g. 2026-11-27T10:15:00+01:00")
        return value


def parse_answers(data: Any) -> AnswersDocument:
    """Validate an answers document (parsed JSON); raises InputError listing every problem with its location.

    ``"version": "1.1.0"`` selects the 1.1.0 shape (:mod:`fhir_safetyplan.answers_v110`); without a version (or
    with ``"1.0.0"``) the document has the 1.0.0 shape, so documents written before 1.1.0 keep their meaning."""
    from fhir_safetyplan import answers_v110  # a cycle: the 1.1.0 shape is built on this module's models

    model: type[AnswersDocument] = AnswersDocument
    if isinstance(data, dict) and "version" in data:
        version = data["version"]
        if version == answers_v110.VERSION:
            model = answers_v110.AnswersDocument
        elif version == ANSWERS_VERSION:
            data = {k: v for k, v in data.items() if k != "version"}
        else:  # the value is not echoed: it is the sender's text
            raise InputError(
                "unknown answers document version",
                one_issue(
                    "error",
                    "not-supported",
                    f"answers document: this version is not known; use {answers_v110.VERSION!r} "
                    "(or leave version out for the 1.0.0 shape)",
                    "version",
                ),
            )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        issues = []
        for err in exc.errors(include_url=False, include_input=False):
            where = ".".join(str(p) for p in err["loc"]) or "(document)"
            msg = err["msg"].removeprefix("Value error, ")
            issues.append(
                issue(
                    "error",
                    "invalid" if err["type"] != "missing" else "required",
                    f"answers document: {where}: {msg}",
                    where,
                )
            )
        raise InputError(
            f"the answers document has {len(issues)} problem(s)", operation_outcome(issues)
        ) from None


def submission_id(doc: AnswersDocument) -> str:
    """The stable submission id: given, or derived from the document's content (same content → same id)."""
    if doc.submission_id:
        return doc.submission_id

    return derived_id(
        json.dumps(doc.model_dump(mode="json", by_alias=True), sort_keys=True, ensure_ascii=False)
    )


def submission_identifier(base: str, value: str) -> JSON:
    """The Identifier every written resource carries for this submission."""
    return {"system": codes.submission_system(base), "value": value}


def _patient_ref(p: Patient) -> JSON:
    if p.reference:
        ref: JSON = {"reference": p.reference}
        if p.fnr or p.dnr:
            ref["identifier"] = _patient_identifier(p)
        return ref
    return {"identifier": _patient_identifier(p)}


def _patient_identifier(p: Patient) -> JSON:
    return {"system": codes.FNR, "value": p.fnr} if p.fnr else {"system": codes.DNR, "value": p.dnr}


def _clinician_ref(c: Clinician) -> JSON:
    ref: JSON = {"identifier": {"system": codes.HPR, "value": c.hpr}}
    if c.reference:
        ref = {"reference": c.reference, **ref}
    return ref


def to_response(doc: AnswersDocument, canonical_base: str | None = None) -> JSON:
    """The QuestionnaireResponse for an answers document, against the Questionnaire in the document's language.

    Item texts are those of that Questionnaire, items follow its order, and only enabled items are present.
    """
    from fhir_safetyplan import answers_v110  # a cycle: the 1.1.0 shape is built on this module's models

    base = codes.canonical_base(canonical_base)
    v110 = isinstance(doc, answers_v110.AnswersDocument)
    # Without a version the document has the shape of content 1.0.0: it answers that (frozen) version.
    q = shared_questionnaire(doc.language, base, answers_v110.VERSION if v110 else ANSWERS_VERSION)
    by_link = _index_cached(f"{q['url']}|{q['version']}", q)

    def coded(link: str, word: str) -> JSON:
        code = ANSWER_WORDS[word]
        for opt in by_link[link].get("answerOption", []):
            coding = opt["valueCoding"]
            if codes.answer_code(coding) == code:
                return {"valueCoding": dict(coding)}
        raise InputError(
            f"answer {word!r} is not allowed for item {link}",
            one_issue("error", "code-invalid", f"answer {word!r} is not an option of {link}", link),
        )

    def own(link: str, code: str) -> JSON:
        for opt in by_link[link]["answerOption"]:
            if opt["valueCoding"]["code"] == code:
                return {"valueCoding": dict(opt["valueCoding"])}
        raise AssertionError(f"{code} not an option of {link}")  # schema Literal prevents this

    if isinstance(doc, answers_v110.AnswersDocument):
        answers = answers_v110.response_answers(doc.answers, coded, own)
    else:
        answers = _answers_v100(doc.answers, coded, own)
    sub = submission_id(doc)
    subject = _patient_ref(doc.patient)
    qr: JSON = {
        "resourceType": "QuestionnaireResponse",
        "id": resource_id(plan_scope(sub, subject), "QuestionnaireResponse"),
        "language": doc.language,
        "identifier": submission_identifier(base, sub),
        "questionnaire": f"{q['url']}|{q['version']}",
        "status": doc.status,
        "subject": subject,
    }
    if doc.encounter:
        qr["encounter"] = {"reference": doc.encounter}
    qr["authored"] = doc.authored.isoformat()
    qr["author"] = _clinician_ref(doc.clinician)
    qr["item"] = _items(q["item"], answers)
    return qr


def _answers_v100(a: Answers, coded: Any, own: Any) -> dict[str, list[JSON]]:
    """The QR answers by linkId for a 1.0.0 answers document."""

    answers: dict[str, list[JSON]] = {
        Link.INFORMED: [{"valueBoolean": a.informed}],
        Link.INVOLVEMENT: [coded(Link.INVOLVEMENT, a.involvement)],
    }
    wants = ANSWER_WORDS[a.involvement] == "Y"
    if not wants and a.refusal_note:
        answers[Link.REFUSAL_NOTE] = [{"valueString": a.refusal_note}]
    if not wants and a.refusal_informed is not None:
        answers[Link.REFUSAL_INFORMED] = [{"valueBoolean": a.refusal_informed}]
    if a.existing_measures:
        answers[Link.EXISTING] = [{"valueString": a.existing_measures}]
    if a.safe_contact:
        sc = a.safe_contact
        if sc.safe:
            answers[Link.SAFE_CHANNELS] = [own(Link.SAFE_CHANNELS, c) for c in sc.safe]
        if sc.unsafe:
            answers[Link.UNSAFE_CHANNELS] = [own(Link.UNSAFE_CHANNELS, c) for c in sc.unsafe]
        if sc.times:
            answers[Link.SAFE_TIMES] = [{"valueString": sc.times}]
        if sc.note:
            answers[Link.SAFE_NOTE] = [{"valueString": sc.note}]
    if wants:
        for key, word in (a.checklist or {}).items():
            answers[Link.checklist_item(key)] = [coded(Link.checklist_item(key), word)]
        if a.agreed_actions:
            answers[Link.AGREED] = [{"valueString": s} for s in a.agreed_actions]
        if a.behaviour_advice_given is not None:
            answers[Link.ADVICE_GIVEN] = [{"valueBoolean": a.behaviour_advice_given}]
    d = a.dependants
    answers[Link.DEPENDANTS_PRESENT] = [coded(Link.DEPENDANTS_PRESENT, d.present)]
    if ANSWER_WORDS[d.present] == "Y":
        if d.children_count is not None:
            answers[Link.CHILDREN_COUNT] = [{"valueInteger": d.children_count}]
        if d.plan:
            answers[Link.DEPENDANTS_PLAN] = [{"valueString": d.plan}]
    if ANSWER_WORDS[d.present] != "N":
        if d.duty:
            answers[Link.DUTY] = [own(Link.DUTY, d.duty)]
        if d.duty_note:
            answers[Link.DUTY_NOTE] = [{"valueString": d.duty_note}]
    if a.mental:
        answers[Link.MENTAL_PRESENT] = [coded(Link.MENTAL_PRESENT, a.mental.present)]
        if ANSWER_WORDS[a.mental.present] == "Y" and a.mental.adaptation:
            answers[Link.MENTAL_ADAPTATION] = [{"valueString": a.mental.adaptation}]
    if a.risk:
        answers[Link.RISK_DONE] = [{"valueBoolean": a.risk.done}]
        if a.risk.done:
            if a.risk.instrument:
                answers[Link.RISK_INSTRUMENT] = [own(Link.RISK_INSTRUMENT, a.risk.instrument)]
            if a.risk.date:
                answers[Link.RISK_DATE] = [{"valueDate": a.risk.date.isoformat()}]
            if a.risk.level:
                answers[Link.RISK_LEVEL] = [own(Link.RISK_LEVEL, a.risk.level)]
    return answers


def context_of(doc: AnswersDocument, base: DocumentContext) -> DocumentContext:
    """``base`` with what the answers document adds: its organisation, and its confidentiality when that is
    stricter (a label is never lowered: V from either side wins)."""

    org: JSON | None = base.organization
    if doc.organization:
        org = {"identifier": {"system": codes.ORGNR, "value": doc.organization.orgnr}}
        if doc.organization.reference:
            org = {"reference": doc.organization.reference, **org}
    strict: Literal["R", "V"] = "V" if "V" in (doc.confidentiality, base.confidentiality) else "R"
    return replace(base, organization=org, confidentiality=strict)


_INDEX: dict[str, dict[str, JSON]] = {}


def _index_cached(url: str, q: JSON) -> dict[str, JSON]:
    if url not in _INDEX:
        _INDEX[url] = _index(q)
    return _INDEX[url]


def _index(q: JSON) -> dict[str, JSON]:
    return {link_id: item for link_id, (item, _) in items_by_link(q).items()}


def _items(q_items: list[JSON], answers: dict[str, list[JSON]]) -> list[JSON]:
    """QR items for the Questionnaire items that have answers (groups kept when a descendant has one)."""
    out = []
    for qi in q_items:
        if qi["type"] == "display":
            continue
        if qi["type"] == "group":
            children = _items(qi.get("item", []), answers)
            if children:
                out.append({"linkId": qi["linkId"], "text": qi["text"], "item": children})
        elif qi["linkId"] in answers:
            out.append({"linkId": qi["linkId"], "text": qi["text"], "answer": answers[qi["linkId"]]})
    return out
