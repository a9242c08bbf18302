"""The answers document for content 1.1.0 (``"version": "1.1.0"``), and its conversion into a
QuestionnaireResponse to the 1.1.0 Questionnaire.

A document without ``version`` (or with ``"1.0.0"``) keeps the 1.0.0 shape of :mod:`fhir_safetyplan.answers`,
so documents written before 1.1.0 keep their meaning. What 1.1.0 adds or changes:

- ``conversationType`` (``forste`` / ``oppfolging``), ``withoutPartner``, ``interpreter``; ``informed`` only at
  a first conversation;
- ``involvement`` may also be ``conversation-only`` (a safety plan, but no other services now);
- ``hideFromPortal`` (true: Volven 9603 ``NORN_EPO`` on every written resource);
- ``safeContact`` is required, with at least one safe channel, and a ``reviewBy`` date; ``codeWord`` goes to the
  contact agreement (Flag) only;
- ``dependants``: ``children``, ``perpetratorChildren`` and ``others`` asked separately; the duty to inform
  (``duty`` + ``dutyNote``) whenever children exist or it is not known;
- ``dutyToAvert`` (``status`` + ``note``) on a refusal, a conversation only, or a high risk level;
- ``risk.conclusion`` (the instrument's own words) and ``risk.performedBy``;
- ``not-asked`` (not discussed) as an answer to the checklist and the yes/no/unknown questions.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, StrictBool, StrictInt, model_validator

from fhir_safetyplan import answers as v100
from fhir_safetyplan.answers import CHECKLIST_KEYS, Channel, ChecklistKey, LongText, ShortText, _Model, one_of
from fhir_safetyplan.content import load
from fhir_safetyplan.errors import JSON
from fhir_safetyplan.form_ids import Link

VERSION = "1.1.0"
_CONTENT = load()
_YES = v100.YES_WORDS
_NO = v100.NO_WORDS
#: the risk levels after which the duty to avert is asked even when a plan is made
_HIGH = tuple(_CONTENT.option("levels", name).code for name in ("high", "very-high"))
#: a safety plan without other services now (its word in a document, its code in the form)
_PLAN_ONLY = _CONTENT.option("involvement", "conversation-only")
_FIRST = _CONTENT.option("conversation-types", "first").code
_HIDE = _CONTENT.option("access-codes", "patient-wish").code
#: the words of 1.0.0, then those this version adds (``since = "1.1.0"``)
_WORDS = (*v100.WORDS, *(w for w in _CONTENT.words("answers", VERSION) if w not in v100.WORDS))

if TYPE_CHECKING:
    Known = str
    Word = str
    Duty = str
    AvertStatus = str
    ConversationType = str
    Interpreter = str
    Involvement = str
else:
    Known = one_of(_CONTENT.words("answers", VERSION, "Y", "N", "asked-declined", "not-asked"))
    Word = one_of(_WORDS)
    Duty = one_of(_CONTENT.codes("duty-status", VERSION))
    AvertStatus = one_of(_CONTENT.codes("avert-status", VERSION))
    ConversationType = one_of(_CONTENT.codes("conversation-types", VERSION))
    Interpreter = one_of(_CONTENT.codes("interpreter", VERSION))
    Involvement = one_of(
        (*_CONTENT.words("answers", VERSION, "Y", "N"), *_CONTENT.words("involvement", VERSION))
    )


class SafeContact(v100.SafeContact):
    safe: list[Channel] = Field(
        min_length=1, description="at least one; only 'oppmote' if nothing else is safe"
    )
    code_word: ShortText | None = Field(None, alias="codeWord", description="shown in the Flag only")
    review_by: dt.date | None = Field(
        None, alias="reviewBy", description="when the contact agreement is to be reviewed"
    )


class Dependants(_Model):
    children: Known
    children_count: StrictInt | None = Field(None, alias="childrenCount", ge=0, le=30)
    perpetrator_children: Known = Field(alias="perpetratorChildren")
    others: Known
    plan: LongText | None = None
    duty: Duty | None = None
    duty_note: LongText | None = Field(None, alias="dutyNote")

    def duty_applies(self) -> bool:
        """Children exist, or it is not known whether they do."""
        return any(x not in _NO for x in (self.children, self.perpetrator_children))


class Mental(_Model):
    present: Known
    adaptation: LongText | None = None


class Risk(v100.Risk):
    conclusion: ShortText | None = Field(None, description="the instrument's own conclusion words")
    performed_by: ShortText | None = Field(None, alias="performedBy", description="name and role")


class DutyToAvert(_Model):
    status: AvertStatus
    note: LongText


class Answers(_Model):
    conversation_type: ConversationType = Field(alias="conversationType")
    without_partner: StrictBool = Field(alias="withoutPartner")
    interpreter: Interpreter | None = None
    informed: StrictBool | None = Field(None, description="first conversation only")
    involvement: Involvement
    refusal_note: LongText | None = Field(None, alias="refusalNote")
    refusal_informed: StrictBool | None = Field(None, alias="refusalInformed")
    existing_measures: LongText | None = Field(None, alias="existingMeasures")
    behaviour_advice_given: StrictBool | None = Field(None, alias="behaviourAdviceGiven")
    hide_from_portal: StrictBool = Field(alias="hideFromPortal")
    safe_contact: SafeContact = Field(alias="safeContact")
    checklist: dict[ChecklistKey, Word] | None = None
    agreed_actions: list[ShortText] = Field(default_factory=list, alias="agreedActions", max_length=50)
    dependants: Dependants
    mental: Mental | None = None
    risk: Risk | None = None
    duty_to_avert: DutyToAvert | None = Field(None, alias="dutyToAvert")

    def plan_made(self) -> bool:
        return self.involvement not in _NO

    def avert_applies(self) -> bool:
        high = bool(self.risk and self.risk.done and self.risk.level in _HIGH)
        return self.involvement in (*_NO, *_PLAN_ONLY.words) or high

    @model_validator(mode="after")
    def _consistent(self) -> Answers:
        """What the form would require, or not show, is checked here too: an error, never silently dropped."""
        problems = []
        first = self.conversation_type == _FIRST
        if first and self.informed is None:
            problems.append(f"informed is required at a first conversation (conversationType {_FIRST})")
        if not first and self.informed is not None:
            problems.append("informed is asked only at a first conversation; leave it out")
        if self.involvement not in _NO and (self.refusal_note or self.refusal_informed is not None):
            problems.append(f"refusalNote and refusalInformed are only for a refusal (involvement {_NO[0]})")
        if not self.plan_made() and (self.checklist or self.agreed_actions):
            problems.append(
                "checklist and agreedActions belong to the safety plan, which is not made on a refusal"
            )
        if self.plan_made() and set(self.checklist or {}) != set(CHECKLIST_KEYS):
            problems.append(f"checklist needs an answer for every item ({', '.join(CHECKLIST_KEYS)})")
        d = self.dependants
        if d.children not in _YES and d.children_count is not None:
            problems.append(f"dependants.childrenCount only applies when dependants.children is {_YES[0]}")
        if d.duty_applies() and not (d.duty and d.duty_note):
            problems.append(
                "dependants.duty and dutyNote are required when children exist or it is not known whether they do"
            )
        if not d.duty_applies() and (d.duty or d.duty_note):
            problems.append("dependants.duty and dutyNote apply only when children exist or it is not known")
        if self.mental and self.mental.present not in _YES and self.mental.adaptation:
            problems.append(f"mental.adaptation only applies when mental.present is {_YES[0]}")
        r = self.risk
        if r and r.done and not (r.instrument and r.date and r.level and r.conclusion and r.performed_by):
            problems.append(
                "risk: instrument, date, level, conclusion and performedBy are required when done"
            )
        if r and not r.done and any((r.instrument, r.date, r.level, r.conclusion, r.performed_by)):
            problems.append("risk: instrument, date, level, conclusion and performedBy apply only when done")
        if self.avert_applies() and self.duty_to_avert is None:
            problems.append(
                "dutyToAvert (status and note) is required on a refusal, a conversation only, or high risk"
            )
        if not self.avert_applies() and self.duty_to_avert is not None:
            problems.append("dutyToAvert applies on a refusal, a conversation only, or a high risk level")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class AnswersDocument(v100.AnswersDocument):
    """One conversation, content 1.1.0."""

    version: Literal["1.1.0"]
    answers: Answers  # type: ignore[assignment]


def response_answers(a: Answers, coded: Any, own: Any) -> dict[str, list[JSON]]:
    """The QR answers by linkId. ``coded(link, word)`` and ``own(link, code)`` give an answer option's coding."""

    def yes_no(link: str, value: bool) -> list[JSON]:
        return [coded(link, _YES[0] if value else _NO[0])]

    def text(value: str | None) -> list[JSON] | None:
        return [{"valueString": value}] if value else None

    out: dict[str, list[JSON] | None] = {
        Link.CONVERSATION_TYPE: [own(Link.CONVERSATION_TYPE, a.conversation_type)],
        Link.ALONE: yes_no(Link.ALONE, a.without_partner),
        Link.INTERPRETER: [own(Link.INTERPRETER, a.interpreter)] if a.interpreter else None,
        Link.INFORMED: yes_no(Link.INFORMED, a.informed) if a.informed is not None else None,
        Link.INVOLVEMENT: [
            own(Link.INVOLVEMENT, _PLAN_ONLY.code)
            if a.involvement in _PLAN_ONLY.words
            else coded(Link.INVOLVEMENT, a.involvement)
        ],
        Link.REFUSAL_NOTE: text(a.refusal_note),
        Link.REFUSAL_INFORMED: (
            yes_no(Link.REFUSAL_INFORMED, a.refusal_informed) if a.refusal_informed is not None else None
        ),
        Link.EXISTING: text(a.existing_measures),
        Link.ADVICE_GIVEN_V11: (
            yes_no(Link.ADVICE_GIVEN_V11, a.behaviour_advice_given)
            if a.behaviour_advice_given is not None
            else None
        ),
        Link.ACCESS_HIDE: [
            own(Link.ACCESS_HIDE, _HIDE) if a.hide_from_portal else coded(Link.ACCESS_HIDE, _NO[0])
        ],
    }
    sc = a.safe_contact
    out[Link.SAFE_CHANNELS] = [own(Link.SAFE_CHANNELS, c) for c in sc.safe]
    out[Link.UNSAFE_CHANNELS] = [own(Link.UNSAFE_CHANNELS, c) for c in sc.unsafe] or None
    out[Link.SAFE_TIMES] = text(sc.times)
    out[Link.CODE_WORD] = text(sc.code_word)
    out[Link.SAFE_NOTE] = text(sc.note)
    out[Link.SAFE_REVIEW] = [{"valueDate": sc.review_by.isoformat()}] if sc.review_by else None
    if a.plan_made():
        for key, word in (a.checklist or {}).items():
            out[Link.checklist_item(key)] = [coded(Link.checklist_item(key), word)]
        out[Link.AGREED] = [{"valueString": s} for s in a.agreed_actions] or None
    d = a.dependants
    out[Link.CHILDREN] = [coded(Link.CHILDREN, d.children)]
    if d.children_count is not None:
        out[Link.CHILDREN_COUNT] = [{"valueInteger": d.children_count}]
    out[Link.PERPETRATOR_CHILDREN] = [coded(Link.PERPETRATOR_CHILDREN, d.perpetrator_children)]
    out[Link.OTHERS] = [coded(Link.OTHERS, d.others)]
    if _YES[0] in (_norm(d.children), _norm(d.perpetrator_children), _norm(d.others)):
        out[Link.DEPENDANTS_PLAN] = text(d.plan)
    if d.duty_applies():
        out[Link.DUTY] = [own(Link.DUTY, d.duty)] if d.duty else None
        out[Link.DUTY_NOTE] = text(d.duty_note)
    if a.mental:
        out[Link.MENTAL_PRESENT] = [coded(Link.MENTAL_PRESENT, a.mental.present)]
        if a.mental.present in _YES:
            out[Link.MENTAL_ADAPTATION] = text(a.mental.adaptation)
    if a.risk:
        r = a.risk
        out[Link.RISK_DONE] = yes_no(Link.RISK_DONE, r.done)
        if r.done:
            out[Link.RISK_INSTRUMENT] = [own(Link.RISK_INSTRUMENT, r.instrument)] if r.instrument else None
            out[Link.RISK_DATE] = [{"valueDate": r.date.isoformat()}] if r.date else None
            out[Link.RISK_BY] = text(r.performed_by)
            out[Link.RISK_CONCLUSION] = text(r.conclusion)
            out[Link.RISK_LEVEL] = [own(Link.RISK_LEVEL, r.level)] if r.level else None
    if a.duty_to_avert:
        out[Link.AVERT_STATUS] = [own(Link.AVERT_STATUS, a.duty_to_avert.status)]
        out[Link.AVERT_NOTE] = text(a.duty_to_avert.note)
    return {k: v for k, v in out.items() if v}


def _norm(word: str) -> str:
    return _YES[0] if word in _YES else word
