"""The Questionnaire, generated from the clinical content (``content.toml``).

Two shapes, same linkIds and codes:

- the multilingual form (``lang=None``, id ``sikkerhetsplan``): bokmål text with nynorsk and English translation
  extensions on every text — the SDC-endorsed, portable markup;
- one form per language (``lang="nb"|"nn"|"en"``, id ``sikkerhetsplan-<lang>``): what renderers such as Refero,
  LHC-Forms and Smart Forms actually display, and what makes a response's item text equal its Questionnaire's
  (the HL7 validator demands it).

Answers are inline ``answerOption`` codings (renderers work with no terminology server). The form carries SDC 4.0
template-based extraction markup: a contained CarePlan template, referenced by ``templateExtract`` on the ``plan``
group item (not on the root: the independent npm engine ignores root-level templates), with one activity per
checklist item answered "No" and one per concrete action agreed. Every value in the template is a
``templateExtractValue`` expression (literals included) with no static placeholder beside it: the npm engine merges
static nested template data shallowly and keeps a placeholder whose expression finds nothing.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from fhir_safetyplan import codes
from fhir_safetyplan.codes import (
    DATA_ABSENT,
    ITEM_CONTROL,
    ITEM_CONTROL_SYSTEM,
    TEMPLATE_EXTRACT,
    TEMPLATE_EXTRACT_CONTEXT,
    TEMPLATE_EXTRACT_VALUE,
    TRANSLATED,
    TRANSLATION,
    YES_NO,
)
from fhir_safetyplan.content import Content, Option, Text, load
from fhir_safetyplan.errors import JSON, ConfigError

#: Content release date: part of the definition, fixed so that generation is reproducible.
RELEASE_DATE = "2026-12-01"
#: The CodeSystem ids of our own codes.
CS_PLAN = "sikkerhetsplan"
CS_CHANNEL = "kontaktkanal"
CS_DUTY = "opplysningsplikt"
CS_INSTRUMENT = "risikoinstrument"
CS_LEVEL = "risikoniva"
CS_CONVERSATION = "samtale"
CS_AVERT = "avvergingsplikt"
TEMPLATE_ID = "careplan-template"
#: The CarePlan category (1.0.0 used ``sikkerhetsplan``, which names the subject in generic viewers).
CATEGORY_CODE = "oppfolging"
#: The safety Flag's code (1.0.0 documentation used ``trygg-kontakt``).
FLAG_CODE = "kontaktavtale"


class Link:
    """The linkIds of the form. Stable: a change here is a new Questionnaire version. Items only in 1.0.0 are
    marked so; they stay here because 1.0.0 responses are still documented."""

    CONVERSATION = "samtale"
    CONVERSATION_TYPE = "samtale.type"
    ALONE = "samtale.uten-partner"
    INTERPRETER = "samtale.tolk"
    INFORMED = "samtale.informert"
    INVOLVEMENT = "samtale.involvering"
    REFUSAL_INFO = "samtale.avslag-info"
    REFUSAL_NOTE = "samtale.avslag"
    REFUSAL_INFORMED = "samtale.avslag-informert"
    EXISTING = "samtale.eksisterende-tiltak"
    ADVICE_INFO_V11 = "samtale.atferd-info"
    ADVICE_GIVEN_V11 = "samtale.atferd-rad"
    ACCESS = "innsyn"
    ACCESS_INFO = "innsyn.info"
    ACCESS_HIDE = "innsyn.skjul"
    SAFE_CONTACT = "trygg-kontakt"
    SAFE_CHANNELS = "trygg-kontakt.trygge"
    UNSAFE_CHANNELS = "trygg-kontakt.utrygge"
    SAFE_TIMES = "trygg-kontakt.tidspunkt"
    SAFE_NOTE = "trygg-kontakt.merknad"
    CODE_WORD = "trygg-kontakt.kodeord"
    SAFE_REVIEW = "trygg-kontakt.gjennomgas"
    PLAN = "plan"
    CHECKLIST = "plan.sjekkliste"
    AGREED = "plan.avtalte-tiltak"
    ADVICE_INFO = "plan.atferd-info"  # 1.0.0
    ADVICE_GIVEN = "plan.atferd-rad"  # 1.0.0
    DEPENDANTS = "sarbare"
    DEPENDANTS_PRESENT = "sarbare.omsorg"  # 1.0.0
    CHILDREN = "sarbare.barn"
    PERPETRATOR_CHILDREN = "sarbare.barn-utover"
    OTHERS = "sarbare.andre"
    CHILDREN_COUNT = "sarbare.antall-barn"
    DEPENDANTS_PLAN = "sarbare.plan"
    DUTY_INFO = "sarbare.opplysningsplikt-info"
    DUTY = "sarbare.opplysningsplikt"
    DUTY_NOTE = "sarbare.opplysningsplikt-merknad"
    MENTAL = "psykisk"
    MENTAL_PRESENT = "psykisk.funksjonsnedsettelse"
    MENTAL_ADAPTATION = "psykisk.tilpasning"
    RISK = "risiko"
    RISK_DONE = "risiko.utfort"
    RISK_INSTRUMENT = "risiko.instrument"
    RISK_DATE = "risiko.dato"
    RISK_LEVEL = "risiko.niva"
    RISK_HIGH_INFO = "risiko.hoy-info"
    RISK_CONCLUSION = "risiko.konklusjon"
    RISK_BY = "risiko.utfort-av"
    AVERT = "avverging"
    AVERT_INFO = "avverging.info"
    AVERT_STATUS = "avverging.status"
    AVERT_NOTE = "avverging.merknad"

    @staticmethod
    def checklist_item(key: str) -> str:
        return f"{Link.CHECKLIST}.{key}"

    @staticmethod
    def checklist_help(key: str) -> str:
        return f"{Link.CHECKLIST}.{key}.hjelp"


TEXT_MAX = 4000
STRING_MAX = 500


class _Builder:
    """Builds one Questionnaire (``lang`` None = multilingual)."""

    def __init__(self, content: Content, base: str, lang: str | None) -> None:
        self.c = content
        self.base = base
        self.lang = lang
        self.primary = lang or "nb"

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
        return [self.coding(self.c.option("answers", n)) for n in names]

    def options(self, section: str, cs_id: str) -> list[JSON]:
        """The options still offered in this version (retired codes stay only in the CodeSystem)."""
        return [self.coding(o, cs_id) for o in self.c.options(section) if not o.retired]

    def yes_no(self, link_id: str, text: Text, **extra: Any) -> JSON:
        """A yes/no question, coded (v2-0532 Y/N with displays in the form's language): renderers show a
        ``boolean`` as English Yes/No inside a Norwegian form."""
        return self.choice(link_id, text, self.answers("yes", "no"), **extra)

    def build(self) -> JSON:
        c = self.c
        t = c.text
        yes = {"system": YES_NO, "code": "Y"}
        no = {"system": YES_NO, "code": "N"}
        own_conv = codes.codesystem_url(self.base, CS_CONVERSATION)
        only_talk = {"system": own_conv, "code": c.option("involvement", "conversation-only").code}
        declined = {"system": DATA_ABSENT, "code": "asked-declined"}
        not_asked = {"system": DATA_ABSENT, "code": "not-asked"}
        first = {"system": own_conv, "code": c.option("conversation-types", "first").code}

        def when(question: str, **answer: Any) -> list[JSON]:
            return [{"question": question, "operator": "=", **answer}]

        def any_of(*pairs: tuple[str, JSON]) -> JSON:
            conds = [{"question": q, "operator": "=", "answerCoding": a} for q, a in pairs]
            return {"enableWhen": conds, "enableBehavior": "any"} if len(conds) > 1 else {"enableWhen": conds}

        refused = when(Link.INVOLVEMENT, answerCoding=no)
        conversation = self.item(
            Link.CONVERSATION,
            "group",
            t("conversation"),
            required=True,
            item=[
                self.choice(
                    Link.CONVERSATION_TYPE,
                    t("conversation", "type"),
                    self.options("conversation-types", CS_CONVERSATION),
                    required=True,
                ),
                self.yes_no(Link.ALONE, t("conversation", "alone"), required=True),
                self.choice(
                    Link.INTERPRETER,
                    t("conversation", "interpreter"),
                    self.options("interpreter", CS_CONVERSATION),
                ),
                self.yes_no(
                    Link.INFORMED,
                    t("conversation", "informed"),
                    required=True,
                    enableWhen=when(Link.CONVERSATION_TYPE, answerCoding=first),
                ),
                self.choice(
                    Link.INVOLVEMENT,
                    t("conversation", "involvement"),
                    [
                        self.coding(c.option("answers", "yes")),
                        self.coding(c.option("involvement", "conversation-only"), CS_CONVERSATION),
                        self.coding(c.option("answers", "no")),
                    ],
                    required=True,
                    code=[self.plan_code("involvering", t("conversation", "involvement"))],
                ),
                self.item(
                    Link.REFUSAL_INFO, "display", t("conversation", "refusal-info"), enableWhen=refused
                ),
                self.item(
                    Link.REFUSAL_NOTE,
                    "text",
                    t("conversation", "refusal-note"),
                    enableWhen=refused,
                    maxLength=TEXT_MAX,
                ),
                self.yes_no(Link.REFUSAL_INFORMED, t("conversation", "refusal-informed"), enableWhen=refused),
                # The guidance asks for this in the first conversation, so it is recorded on a refusal too.
                self.item(Link.EXISTING, "text", t("conversation", "existing-measures"), maxLength=TEXT_MAX),
                # Shown in every conversation, also after a refusal: separation is a high-risk period.
                self.item(
                    Link.ADVICE_INFO_V11, "display", t("conversation", "behaviour-advice", field="info")
                ),
                self.yes_no(Link.ADVICE_GIVEN_V11, t("conversation", "behaviour-advice")),
            ],
        )
        access = self.item(
            Link.ACCESS,
            "group",
            t("access"),
            required=True,
            item=[
                self.item(Link.ACCESS_INFO, "display", t("access", "info")),
                self.choice(
                    Link.ACCESS_HIDE,
                    t("access", "hide"),
                    [
                        self.coding(c.option("access-codes", "patient-wish")),
                        self.coding(c.option("answers", "no")),
                    ],
                    required=True,
                ),
            ],
        )
        safe = self.item(
            Link.SAFE_CONTACT,
            "group",
            t("safe-contact"),
            required=True,
            code=[self.plan_code("trygg-kontakt", t("safe-contact"))],
            item=[
                self.choice(
                    Link.SAFE_CHANNELS,
                    t("safe-contact", "safe-channels"),
                    self.options("channels", CS_CHANNEL),
                    repeats=True,
                    required=True,
                ),
                self.choice(
                    Link.UNSAFE_CHANNELS,
                    t("safe-contact", "unsafe-channels"),
                    self.options("channels", CS_CHANNEL),
                    repeats=True,
                ),
                self.item(Link.SAFE_TIMES, "string", t("safe-contact", "times"), maxLength=STRING_MAX),
                self.item(Link.CODE_WORD, "string", t("safe-contact", "code-word"), maxLength=STRING_MAX),
                self.item(Link.SAFE_NOTE, "text", t("safe-contact", "note"), maxLength=TEXT_MAX),
                self.item(Link.SAFE_REVIEW, "date", t("safe-contact", "review"), required=True),
            ],
        )
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
                    enableWhen=when(Link.checklist_item(ci.key), answerCoding=no),
                )
            )
        plan = self.item(
            Link.PLAN,
            "group",
            t("plan"),
            required=True,  # when enabled (1.0.0 let a response leave the whole plan out)
            **any_of((Link.INVOLVEMENT, yes), (Link.INVOLVEMENT, only_talk)),
            item=[
                self.item(Link.CHECKLIST, "group", t("plan", "checklist"), required=True, item=checklist),
                self.item(
                    Link.AGREED, "string", t("plan", "agreed-actions"), repeats=True, maxLength=STRING_MAX
                ),
            ],
        )
        conversation = {
            "extension": [
                {
                    "url": TEMPLATE_EXTRACT,
                    "extension": [{"url": "template", "valueReference": {"reference": "#" + TEMPLATE_ID}}],
                }
            ],
            **conversation,
        }
        unknown_or_yes = [
            (link, a)
            for link in (Link.CHILDREN, Link.PERPETRATOR_CHILDREN)
            for a in (yes, declined, not_asked)
        ]
        # The duty to inform rests on what the health professional knows, not on the patient's answer: it is
        # asked whenever children exist or it is not known whether they do.
        duty_when = any_of(*unknown_or_yes)
        some_yes = any_of((Link.CHILDREN, yes), (Link.PERPETRATOR_CHILDREN, yes), (Link.OTHERS, yes))
        known = ("yes", "no", "declined", "not-asked")
        dependants = self.item(
            Link.DEPENDANTS,
            "group",
            t("dependants"),
            required=True,
            item=[
                self.choice(Link.CHILDREN, t("dependants", "children"), self.answers(*known), required=True),
                {
                    "extension": [
                        {"url": "http://hl7.org/fhir/StructureDefinition/minValue", "valueInteger": 0},
                        {"url": "http://hl7.org/fhir/StructureDefinition/maxValue", "valueInteger": 30},
                    ],
                    **self.item(
                        Link.CHILDREN_COUNT,
                        "integer",
                        t("dependants", "children-count"),
                        enableWhen=when(Link.CHILDREN, answerCoding=yes),
                    ),
                },
                self.choice(
                    Link.PERPETRATOR_CHILDREN,
                    t("dependants", "perpetrator-children"),
                    self.answers(*known),
                    required=True,
                ),
                self.choice(Link.OTHERS, t("dependants", "others"), self.answers(*known), required=True),
                self.item(
                    Link.DEPENDANTS_PLAN, "text", t("dependants", "plan"), maxLength=TEXT_MAX, **some_yes
                ),
                self.item(Link.DUTY_INFO, "display", t("dependants", "duty-info"), **duty_when),
                self.choice(
                    Link.DUTY,
                    t("dependants", "duty"),
                    self.options("duty-status", CS_DUTY),
                    required=True,
                    **duty_when,
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
        mental = self.item(
            Link.MENTAL,
            "group",
            t("mental"),
            item=[
                self.choice(Link.MENTAL_PRESENT, t("mental", "present"), self.answers(*known)),
                self.item(
                    Link.MENTAL_ADAPTATION,
                    "text",
                    t("mental", "adaptation"),
                    enableWhen=when(Link.MENTAL_PRESENT, answerCoding=yes),
                    maxLength=TEXT_MAX,
                ),
            ],
        )
        level_cs = codes.codesystem_url(self.base, CS_LEVEL)
        high = [{"system": level_cs, "code": c.option("levels", n).code} for n in ("high", "very-high")]
        risk_done = when(Link.RISK_DONE, answerCoding=yes)
        risk = self.item(
            Link.RISK,
            "group",
            t("risk"),
            item=[
                self.yes_no(Link.RISK_DONE, t("risk", "done")),
                self.choice(
                    Link.RISK_INSTRUMENT,
                    t("risk", "instrument"),
                    self.options("instruments", CS_INSTRUMENT),
                    required=True,
                    enableWhen=risk_done,
                ),
                self.item(Link.RISK_DATE, "date", t("risk", "date"), required=True, enableWhen=risk_done),
                self.item(
                    Link.RISK_BY,
                    "string",
                    t("risk", "performed-by"),
                    required=True,
                    enableWhen=risk_done,
                    maxLength=STRING_MAX,
                ),
                self.item(
                    Link.RISK_CONCLUSION,
                    "string",
                    t("risk", "conclusion"),
                    required=True,
                    enableWhen=risk_done,
                    maxLength=STRING_MAX,
                ),
                self.choice(
                    Link.RISK_LEVEL,
                    t("risk", "level"),
                    self.options("levels", CS_LEVEL),
                    required=True,
                    enableWhen=risk_done,
                ),
                self.item(
                    Link.RISK_HIGH_INFO,
                    "display",
                    t("risk", "high-info"),
                    **any_of(*((Link.RISK_LEVEL, h) for h in high)),
                ),
            ],
        )
        avert = self.item(
            Link.AVERT,
            "group",
            t("avert"),
            required=True,  # when enabled: the assessment must be documented
            **any_of(
                (Link.INVOLVEMENT, no), (Link.INVOLVEMENT, only_talk), *((Link.RISK_LEVEL, h) for h in high)
            ),
            item=[
                self.item(Link.AVERT_INFO, "display", t("avert", "info")),
                self.choice(
                    Link.AVERT_STATUS,
                    t("avert", "status"),
                    self.options("avert-status", CS_AVERT),
                    required=True,
                ),
                self.item(Link.AVERT_NOTE, "text", t("avert", "note"), required=True, maxLength=TEXT_MAX),
            ],
        )
        return self.root([conversation, access, safe, plan, dependants, mental, risk, avert])

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
            "contained": [self.template()],
            "extension": [
                {
                    "url": codes.VERSION_ALGORITHM,
                    "valueCoding": {"system": "http://hl7.org/fhir/version-algorithm", "code": "semver"},
                },
                {
                    "url": "http://hl7.org/fhir/StructureDefinition/cqf-relatedArtifact",
                    "valueRelatedArtifact": {
                        "type": "citation",
                        "label": c.raw["source"]["title"]["nb"],
                        "display": c.raw["source"]["title"][self.primary],
                        "citation": c.raw["source"]["citation"],
                        "url": c.raw["source"]["url"],
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

    # -- the CarePlan template -------------------------------------------------------------------------------
    def template(self) -> JSON:
        c = self.c
        lang = self.primary
        cs = codes.codesystem_url(self.base, CS_PLAN)

        def coding(code: str, display: str | None, system: str = cs) -> JSON:
            out = {"_system": _tev(_lit(system)), "_code": _tev(_lit(code))}
            return {**out, "_display": _tev(_lit(display))} if display else out

        def activity(context: str, code: JSON, description: str, literal: bool) -> JSON:
            return {
                "extension": [{"url": TEMPLATE_EXTRACT_CONTEXT, "valueString": context}],
                "detail": {
                    "code": {"coding": [code]},
                    "_status": _tev("'not-started'"),
                    "_description": _tev(_lit(description) if literal else description),
                },
            }

        def path(*links: str) -> str:
            return "%resource" + "".join(f".item.where(linkId='{link}')" for link in links)

        activities = []
        for ci in c.checklist:
            # linkId first, then the answer: fhirpathpy evaluates the inner where() per candidate item, so
            # narrowing by linkId before testing the answer makes this ~6x cheaper; both engines agree on it.
            context = (
                path(Link.PLAN, Link.CHECKLIST, Link.checklist_item(ci.key))
                + f".where(answer.valueCoding.where(system='{YES_NO}' and code='N').exists())"
            )
            code = coding(ci.key, ci.label.get(lang))
            activities.append(activity(context, code, ci.help.get(lang), literal=True))
        agreed = c.text("journal", field="agreed").get(lang)
        activities.append(
            activity(
                path(Link.PLAN, Link.AGREED) + ".answer",
                coding("avtalt-tiltak", agreed),
                "value",
                literal=False,
            )
        )
        # A report of concern still to be sent is tracked as a planned activity, also after a refusal.
        will_send = c.option("duty-status", "will-send")
        duty_cs = codes.codesystem_url(self.base, CS_DUTY)
        activities.append(
            activity(
                path(Link.DEPENDANTS, Link.DUTY)
                + f".where(answer.valueCoding.where(system='{duty_cs}' and code='{will_send.code}').exists())",
                coding(will_send.code, will_send.display.get(lang), duty_cs),
                will_send.display.get(lang),
                literal=True,
            )
        )
        title = c.text("neutral", field="careplan-title").get(lang)
        return {
            "resourceType": "CarePlan",
            "id": TEMPLATE_ID,
            # No meta.security here: dom-5 forbids labels on contained resources; they are added on extraction.
            "_status": _tev("'active'"),
            "_intent": _tev("'plan'"),
            # A neutral category code, without a display: lists in record systems show it next to the title.
            "category": [{"coding": [coding(CATEGORY_CODE, None)]}],
            "_title": _tev(_lit(title)),
            "subject": {"_reference": _tev("%resource.subject.reference")},
            "_created": _tev("%resource.authored"),
            "author": {"_reference": _tev("%resource.author.reference")},
            "supportingInfo": [{"_reference": _tev("'QuestionnaireResponse/' + %resource.id")}],
            "activity": activities,
        }


def _tev(expression: str) -> JSON:
    return {"extension": [{"url": TEMPLATE_EXTRACT_VALUE, "valueString": expression}]}


def _lit(value: str) -> str:
    """A FHIRPath string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@cache
def _cached(base: str, lang: str | None) -> JSON:
    return _Builder(load(), base, lang).build()


def build_questionnaire(
    lang: str | None = None, canonical_base: str | None = None, version: str | None = None
) -> JSON:
    """The Questionnaire: multilingual (``lang=None``) or in one language (nb, nn, en), in ``version``
    (default: the current one; earlier versions are the frozen published copies). Returns a fresh copy."""
    return copy.deepcopy(shared_questionnaire(lang, canonical_base, version))


def shared_questionnaire(
    lang: str | None = None, canonical_base: str | None = None, version: str | None = None
) -> JSON:
    """Like :func:`build_questionnaire` but the process-wide cached instance: never mutate it.

    The hot path (validation, extraction) uses it so per-Questionnaire indexes and compiled expressions are
    reused across plans instead of being rebuilt for a fresh copy each time.
    """
    from fhir_safetyplan.versions import check_version, frozen_questionnaire

    if lang is not None and lang not in codes.LANGUAGES:
        raise ConfigError(f"language {lang!r} is not supported; use one of nb, nn, en")
    version = check_version(version)
    base = codes.canonical_base(canonical_base)
    if version != codes.QUESTIONNAIRE_VERSION:
        return frozen_questionnaire(version, lang, base)
    return _cached(base, lang)


def all_questionnaires(canonical_base: str | None = None, version: str | None = None) -> list[JSON]:
    """The multilingual Questionnaire and one per language (of ``version``, default the current one)."""
    return [build_questionnaire(lang, canonical_base, version) for lang in (None, *codes.LANGUAGES)]


def questionnaire_for(canonical: str, canonical_base: str | None = None) -> JSON | None:
    """Our Questionnaire whose ``url|version`` is ``canonical`` (a bare ``url``: the current version), or None
    (the shared instance: never mutate it)."""
    from fhir_safetyplan.versions import KNOWN_VERSIONS

    url, _, version = canonical.partition("|")
    if version and version not in KNOWN_VERSIONS:
        return None
    for lang in (None, *codes.LANGUAGES):
        q = shared_questionnaire(lang, canonical_base, version or None)
        if q["url"] == url:
            return q
    return None


# The answer codings an integration engine may send as plain words in an answers document.
ANSWER_WORDS: dict[str, tuple[str, str]] = {
    "yes": (YES_NO, "Y"),
    "ja": (YES_NO, "Y"),
    "y": (YES_NO, "Y"),
    "no": (YES_NO, "N"),
    "nei": (YES_NO, "N"),
    "n": (YES_NO, "N"),
    "not-relevant": (YES_NO, "NA"),
    "na": (YES_NO, "NA"),
    "ikke-aktuelt": (YES_NO, "NA"),
    "declined": (DATA_ABSENT, "asked-declined"),
    "asked-declined": (DATA_ABSENT, "asked-declined"),
    "vil-ikke-svare": (DATA_ABSENT, "asked-declined"),
    "not-asked": (DATA_ABSENT, "not-asked"),
    "ikke-tatt-opp": (DATA_ABSENT, "not-asked"),
}
