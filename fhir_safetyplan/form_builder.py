"""Builds the Questionnaire from the content: the item structure of the current version (1.1.0), its texts in
one language or with nn/en translation extensions, inline answer options, enableWhen, and the root metadata. The
public functions are in :mod:`fhir_safetyplan.questionnaire`."""

from __future__ import annotations

from typing import Any, NamedTuple

from fhir_safetyplan import codes
from fhir_safetyplan.careplan_template import careplan_template
from fhir_safetyplan.codes import (
    ITEM_CONTROL,
    ITEM_CONTROL_SYSTEM,
    TEMPLATE_EXTRACT,
    TRANSLATED,
    TRANSLATION,
)
from fhir_safetyplan.content import Content, Option, Text
from fhir_safetyplan.errors import JSON
from fhir_safetyplan.form_ids import (
    CS_ANSWER,
    CS_AVERT,
    CS_CHANNEL,
    CS_CONVERSATION,
    CS_DUTY,
    CS_INSTRUMENT,
    CS_LEVEL,
    CS_PLAN,
    TEMPLATE_ID,
    Link,
)

#: Content release date: part of the definition, fixed so that generation is reproducible.
RELEASE_DATE = "2026-12-01"
TEXT_MAX = 4000
STRING_MAX = 500


#: The answers to the yes / no / unknown questions (children, others, mental impairment).
_KNOWN = ("yes", "no", "declined", "not-asked")


class _Codings(NamedTuple):
    """The answer codings enableWhen conditions test."""

    yes: JSON
    no: JSON
    #: involvement: a conversation only, no plan
    only_talk: JSON
    declined: JSON
    not_asked: JSON
    #: the first conversation
    first: JSON
    #: the high risk levels
    high: list[JSON]


#: the maxLength of a free-text item, by its type
_MAX_LENGTH = {"text": TEXT_MAX, "string": STRING_MAX}


def _when(question: str, **answer: Any) -> list[JSON]:
    return [{"question": question, "operator": "=", **answer}]


def _any_of(*pairs: tuple[str, JSON]) -> JSON:
    conds = [{"question": q, "operator": "=", "answerCoding": a} for q, a in pairs]
    return {"enableWhen": conds, "enableBehavior": "any"} if len(conds) > 1 else {"enableWhen": conds}


class _Builder:
    """Builds one Questionnaire (``lang`` None = multilingual)."""

    def __init__(self, content: Content, base: str, lang: str | None) -> None:
        self.c = content
        self.base = base
        self.lang = lang
        self.primary = lang or "nb"
        #: linkIds not pre-filled from the last plan (content: ``carry = false``)
        self.not_carried: set[str] = set()

    # -- texts -----------------------------------------------------------------------------------------------
    def put_text(self, target: JSON, field: str, text: Text) -> None:
        """Set ``field`` to the text; on the multilingual form add nn/en translation extensions on ``_field``."""
        target[field] = text.get(self.primary)
        if self.lang is None:
            target["_" + field] = {
                "extension": [
                    {
                        "url": TRANSLATION,
                        "extension": [
                            {"url": "lang", "valueCode": other},
                            {"url": "content", "valueString": text.get(other)},
                        ],
                    }
                    for other in TRANSLATED
                ]
            }

    def coding(self, option: Option, cs_id: str | None = None) -> JSON:
        system = option.system or codes.codesystem_url(self.base, cs_id or "")
        out: JSON = {"system": system, "code": option.code}
        self.put_text(out, "display", option.display)
        return out

    # -- items -----------------------------------------------------------------------------------------------
    def item(self, link_id: str, item_type: str, text: Text, **extra: Any) -> JSON:
        out: JSON = {"linkId": link_id}
        if not text.carry:
            self.not_carried.add(link_id)
        if "code" in extra:
            out["code"] = extra.pop("code")
        self.put_text(out, "text", text)
        out["type"] = item_type
        out.update(extra)
        return out

    def choice(
        self,
        link_id: str,
        text: Text,
        options: list[JSON],
        *,
        repeats: bool = False,
        required: bool = False,
        **extra: Any,
    ) -> JSON:
        control = "check-box" if repeats else "radio-button"
        out = self.item(link_id, "choice", text, **extra)
        out["extension"] = [
            {
                "url": ITEM_CONTROL,
                "valueCodeableConcept": {"coding": [{"system": ITEM_CONTROL_SYSTEM, "code": control}]},
            }
        ]
        if required:
            out["required"] = True
        if repeats:
            out["repeats"] = True
        out["answerOption"] = [{"valueCoding": o} for o in options]
        # Keep a stable, conventional key order: extension first.
        return {"extension": out.pop("extension"), **out}

    def plan_code(self, code: str, display: Text) -> JSON:
        out: JSON = {"system": codes.codesystem_url(self.base, CS_PLAN), "code": code}
        out["display"] = display.get(self.primary)
        return out

    def answers(self, *names: str) -> list[JSON]:
        return [self.coding(self.c.option("answers", n), CS_ANSWER) for n in names]

    def options(self, section: str, cs_id: str) -> list[JSON]:
        """The options still offered in this version (retired codes stay only in the CodeSystem)."""
        return [self.coding(o, cs_id) for o in self.c.options(section) if not o.retired]

    def yes_no(self, link_id: str, text: Text, **extra: Any) -> JSON:
        """A yes/no question, coded (v2-0532 Y/N with displays in the form's language): renderers show a
        ``boolean`` as English Yes/No inside a Norwegian form."""
        return self.choice(link_id, text, self.answers("yes", "no"), **extra)

    def coded(self, link_id: str, text: Text, section: str, cs_id: str, **extra: Any) -> JSON:
        """A choice of the options of content's ``section`` (our CodeSystem ``cs_id``)."""
        return self.choice(link_id, text, self.options(section, cs_id), **extra)

    def free(self, link_id: str, item_type: str, text: Text, **extra: Any) -> JSON:
        """A ``string`` or ``text`` item, its maxLength after ``extra``."""
        return self.item(link_id, item_type, text, **extra, maxLength=_MAX_LENGTH[item_type])

    def group(self, link_id: str, text: Text, items: list[JSON], **extra: Any) -> JSON:
        """A group of ``items`` (after ``extra``: its code, its conditions)."""
        return self.item(link_id, "group", text, **extra, item=items)

    def codings(self) -> _Codings:
        """The answer codings enableWhen conditions test: yes, no, conversation only, declined, not discussed,
        first conversation, and the high risk levels."""
        c = self.c
        own_conv = codes.codesystem_url(self.base, CS_CONVERSATION)
        level_cs = codes.codesystem_url(self.base, CS_LEVEL)
        answer_cs = codes.codesystem_url(self.base, CS_ANSWER)
        return _Codings(
            {"system": answer_cs, "code": "Y"},
            {"system": answer_cs, "code": "N"},
            {"system": own_conv, "code": c.option("involvement", "conversation-only").code},
            {"system": answer_cs, "code": "asked-declined"},
            {"system": answer_cs, "code": "not-asked"},
            {"system": own_conv, "code": c.option("conversation-types", "first").code},
            [{"system": level_cs, "code": c.option("levels", n).code} for n in ("high", "very-high")],
        )

    def build(self) -> JSON:
        groups = (
            self.conversation(),
            self.access(),
            self.safe_contact(),
            self.plan(),
            self.dependants(),
            self.mental(),
            self.risk(),
            self.avert(),
        )
        return self.root(list(groups))

    def conversation(self) -> JSON:
        """The conversation: its type, the setting, involvement or refusal, the behaviour advice. It carries the
        extraction template (always answered, so a report of concern to be sent is tracked after a refusal)."""
        c, t = self.c, self.c.text
        k = self.codings()
        refused = _when(Link.INVOLVEMENT, answerCoding=k.no)
        conversation = self.group(
            Link.CONVERSATION,
            t("conversation"),
            [
                self.coded(
                    Link.CONVERSATION_TYPE,
                    t("conversation", "type"),
                    "conversation-types",
                    CS_CONVERSATION,
                    required=True,
                ),
                self.yes_no(Link.ALONE, t("conversation", "alone"), required=True),
                self.coded(
                    Link.INTERPRETER, t("conversation", "interpreter"), "interpreter", CS_CONVERSATION
                ),
                self.yes_no(
                    Link.INFORMED,
                    t("conversation", "informed"),
                    required=True,
                    enableWhen=_when(Link.CONVERSATION_TYPE, answerCoding=k.first),
                ),
                self.choice(
                    Link.INVOLVEMENT,
                    t("conversation", "involvement"),
                    [
                        self.coding(c.option("answers", "yes"), CS_ANSWER),
                        self.coding(c.option("involvement", "conversation-only"), CS_CONVERSATION),
                        self.coding(c.option("answers", "no"), CS_ANSWER),
                    ],
                    required=True,
                    code=[self.plan_code("involvering", t("conversation", "involvement"))],
                ),
                self.item(
                    Link.REFUSAL_INFO, "display", t("conversation", "refusal-info"), enableWhen=refused
                ),
                self.free(Link.REFUSAL_NOTE, "text", t("conversation", "refusal-note"), enableWhen=refused),
                self.yes_no(Link.REFUSAL_INFORMED, t("conversation", "refusal-informed"), enableWhen=refused),
                # The guidance asks for this in the first conversation, so it is recorded on a refusal too.
                self.free(Link.EXISTING, "text", t("conversation", "existing-measures")),
                # Shown in every conversation, also after a refusal: separation is a high-risk period.
                self.item(
                    Link.ADVICE_INFO_V11, "display", t("conversation", "behaviour-advice", field="info")
                ),
                self.yes_no(Link.ADVICE_GIVEN_V11, t("conversation", "behaviour-advice")),
            ],
        )
        template = {"url": "template", "valueReference": {"reference": "#" + TEMPLATE_ID}}
        return {"extension": [{"url": TEMPLATE_EXTRACT, "extension": [template]}], **conversation}

    def access(self) -> JSON:
        """Electronic access: whether the documents are to be hidden from Helsenorge (Volven 9603)."""
        c, t = self.c, self.c.text
        hide = [
            self.coding(c.option("access-codes", "patient-wish")),
            self.coding(c.option("answers", "no"), CS_ANSWER),
        ]
        return self.group(
            Link.ACCESS,
            t("access"),
            [
                self.item(Link.ACCESS_INFO, "display", t("access", "info")),
                self.choice(Link.ACCESS_HIDE, t("access", "hide"), hide, required=True),
            ],
        )

    def safe_contact(self) -> JSON:
        """Safe contact: the agreement other clinicians see as a Flag."""
        t = self.c.text
        return self.group(
            Link.SAFE_CONTACT,
            t("safe-contact"),
            [
                self.coded(
                    Link.SAFE_CHANNELS,
                    t("safe-contact", "safe-channels"),
                    "channels",
                    CS_CHANNEL,
                    repeats=True,
                    required=True,
                ),
                self.coded(
                    Link.UNSAFE_CHANNELS,
                    t("safe-contact", "unsafe-channels"),
                    "channels",
                    CS_CHANNEL,
                    repeats=True,
                ),
                self.free(Link.SAFE_TIMES, "string", t("safe-contact", "times")),
                self.free(Link.CODE_WORD, "string", t("safe-contact", "code-word")),
                self.free(Link.SAFE_NOTE, "text", t("safe-contact", "note")),
                self.item(Link.SAFE_REVIEW, "date", t("safe-contact", "review")),
            ],
            code=[self.plan_code("trygg-kontakt", t("safe-contact"))],
        )

    def plan(self) -> JSON:
        """The safety plan: the ten checklist items, each with its help shown when not in place, and the agreed
        actions."""
        c, t = self.c, self.c.text
        k = self.codings()
        checklist: list[JSON] = []
        for ci in c.checklist:
            checklist.append(
                self.choice(
                    Link.checklist_item(ci.key),
                    ci.text,
                    self.answers("yes", "no", "not-relevant", "declined", "not-asked"),
                    required=True,
                    code=[self.plan_code(ci.key, ci.label)],
                )
            )
            # The standard help, shown where it applies: the note never states help the clinician did not see.
            checklist.append(
                self.item(
                    Link.checklist_help(ci.key),
                    "display",
                    ci.help,
                    enableWhen=_when(Link.checklist_item(ci.key), answerCoding=k.no),
                )
            )
        return self.group(
            Link.PLAN,
            t("plan"),
            [
                self.group(Link.CHECKLIST, t("plan", "checklist"), checklist),
                self.free(Link.AGREED, "string", t("plan", "agreed-actions"), repeats=True),
            ],
            **_any_of((Link.INVOLVEMENT, k.yes), (Link.INVOLVEMENT, k.only_talk)),
        )

    def dependants(self) -> JSON:
        """Children and other vulnerable people, and the § 33 duty to inform the child welfare services."""
        t = self.c.text
        k = self.codings()
        unknown_or_yes = [
            (link, a)
            for link in (Link.CHILDREN, Link.PERPETRATOR_CHILDREN)
            for a in (k.yes, k.declined, k.not_asked)
        ]
        # The duty to inform rests on what the health professional knows, not on the patient's answer: it is
        # asked whenever children exist or it is not known whether they do.
        duty_when = _any_of(*unknown_or_yes)
        some_yes = _any_of((Link.CHILDREN, k.yes), (Link.PERPETRATOR_CHILDREN, k.yes), (Link.OTHERS, k.yes))
        return self.group(
            Link.DEPENDANTS,
            t("dependants"),
            [
                self.choice(Link.CHILDREN, t("dependants", "children"), self.answers(*_KNOWN), required=True),
                {
                    "extension": [
                        {"url": "http://hl7.org/fhir/StructureDefinition/minValue", "valueInteger": 0},
                        {"url": "http://hl7.org/fhir/StructureDefinition/maxValue", "valueInteger": 30},
                    ],
                    **self.item(
                        Link.CHILDREN_COUNT,
                        "integer",
                        t("dependants", "children-count"),
                        enableWhen=_when(Link.CHILDREN, answerCoding=k.yes),
                    ),
                },
                self.choice(
                    Link.PERPETRATOR_CHILDREN,
                    t("dependants", "perpetrator-children"),
                    self.answers(*_KNOWN),
                    required=True,
                ),
                self.choice(Link.OTHERS, t("dependants", "others"), self.answers(*_KNOWN), required=True),
                # (the published order: maxLength before the conditions)
                self.item(
                    Link.DEPENDANTS_PLAN, "text", t("dependants", "plan"), maxLength=TEXT_MAX, **some_yes
                ),
                self.item(Link.DUTY_INFO, "display", t("dependants", "duty-info"), **duty_when),
                self.coded(
                    Link.DUTY, t("dependants", "duty"), "duty-status", CS_DUTY, required=True, **duty_when
                ),
                self.item(
                    Link.DUTY_NOTE,
                    "text",
                    t("dependants", "duty-note"),
                    required=True,
                    maxLength=TEXT_MAX,
                    **duty_when,
                ),
            ],
        )

    def mental(self) -> JSON:
        """Mental impairment and adapted follow-up."""
        t = self.c.text
        present = _when(Link.MENTAL_PRESENT, answerCoding=self.codings().yes)
        return self.group(
            Link.MENTAL,
            t("mental"),
            [
                self.choice(Link.MENTAL_PRESENT, t("mental", "present"), self.answers(*_KNOWN)),
                self.free(Link.MENTAL_ADAPTATION, "text", t("mental", "adaptation"), enableWhen=present),
            ],
        )

    def risk(self) -> JSON:
        """The result of a structured risk assessment (never scored here)."""
        t = self.c.text
        k = self.codings()
        done = {"required": True, "enableWhen": _when(Link.RISK_DONE, answerCoding=k.yes)}
        return self.group(
            Link.RISK,
            t("risk"),
            [
                self.yes_no(Link.RISK_DONE, t("risk", "done")),
                self.coded(
                    Link.RISK_INSTRUMENT, t("risk", "instrument"), "instruments", CS_INSTRUMENT, **done
                ),
                self.item(Link.RISK_DATE, "date", t("risk", "date"), **done),
                self.free(Link.RISK_BY, "string", t("risk", "performed-by"), **done),
                self.free(Link.RISK_CONCLUSION, "string", t("risk", "conclusion"), **done),
                self.coded(Link.RISK_LEVEL, t("risk", "level"), "levels", CS_LEVEL, **done),
                self.item(
                    Link.RISK_HIGH_INFO,
                    "display",
                    t("risk", "high-info"),
                    **_any_of(*((Link.RISK_LEVEL, h) for h in k.high)),
                ),
            ],
        )

    def avert(self) -> JSON:
        """The duty to avert (straffeloven § 196, helsepersonelloven § 31)."""
        t = self.c.text
        k = self.codings()
        return self.group(
            Link.AVERT,
            t("avert"),
            [
                self.item(Link.AVERT_INFO, "display", t("avert", "info")),
                self.coded(Link.AVERT_STATUS, t("avert", "status"), "avert-status", CS_AVERT, required=True),
                self.free(Link.AVERT_NOTE, "text", t("avert", "note"), required=True),
            ],
            **_any_of(
                (Link.INVOLVEMENT, k.no),
                (Link.INVOLVEMENT, k.only_talk),
                *((Link.RISK_LEVEL, h) for h in k.high),
            ),
        )

    def root(self, items: list[JSON]) -> JSON:
        c = self.c
        q_id = codes.questionnaire_id(self.lang)
        q: JSON = {
            "resourceType": "Questionnaire",
            "id": q_id,
            "meta": {
                "profile": [codes.SDC_EXTRACT_TEMPLATE_PROFILE],
                "tag": [{"system": "urn:ietf:bcp:47", "code": self.primary}],
            },
            "language": self.primary,
            "contained": [careplan_template(self.c, self.base, self.primary)],
            "extension": [
                {
                    "url": codes.VERSION_ALGORITHM,
                    "valueCoding": {"system": "http://hl7.org/fhir/version-algorithm", "code": "semver"},
                },
                {
                    "url": codes.RELATED_ARTIFACT,
                    "valueRelatedArtifact": {
                        "type": "citation",
                        "label": c.raw["source"]["title"]["nb"],
                        "display": c.raw["source"]["title"][self.primary],
                        "citation": c.raw["source"]["citation"],
                    },
                },
            ],
            "url": codes.questionnaire_url(self.base, self.lang),
            "version": codes.QUESTIONNAIRE_VERSION,
            "name": "Sikkerhetsplan" + ("" if self.lang is None else self.lang.upper()),
        }
        self.put_text(q, "title", c.text("form", field="title"))
        q.update(
            {
                "status": "active",
                "experimental": False,
                "subjectType": ["Patient"],
                "date": RELEASE_DATE,
                "publisher": "fhir-safetyplan",
            }
        )
        self.put_text(q, "description", c.text("form", field="description"))
        q["jurisdiction"] = [
            {"coding": [{"system": "urn:iso:std:iso:3166", "code": "NO", "display": "Norway"}]}
        ]
        self.put_text(q, "purpose", c.text("form", field="purpose"))
        q["code"] = [self.plan_code("sikkerhetsplan", c.text("form", field="title"))]
        q["item"] = items
        return q
