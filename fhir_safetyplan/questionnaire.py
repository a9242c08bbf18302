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

from fhir_safetyplan import codes, population
from fhir_safetyplan.codes import (
    ITEM_CONTROL,
    ITEM_CONTROL_SYSTEM,
    TEMPLATE_EXTRACT,
    TEMPLATE_EXTRACT_CONTEXT,
    TEMPLATE_EXTRACT_VALUE,
    TRANSLATED,
    TRANSLATION,
)
from fhir_safetyplan.content import Content, Option, Text, load
from fhir_safetyplan.errors import JSON, ConfigError

#: Content release date: part of the definition, fixed so that generation is reproducible.
RELEASE_DATE = "2026-11-27"
#: The CodeSystem ids of our own codes.
CS_PLAN = "sikkerhetsplan"
CS_ANSWER = codes.ANSWER_CS
CS_CHANNEL = "kontaktkanal"
CS_DUTY = "opplysningsplikt"
CS_INSTRUMENT = "risikoinstrument"
CS_LEVEL = "risikoniva"
TEMPLATE_ID = "careplan-template"


class Link:
    """The linkIds of the form. Stable: a change here is a new Questionnaire version."""

    CONVERSATION = "samtale"
    INFORMED = "samtale.informert"
    INVOLVEMENT = "samtale.involvering"
    REFUSAL_INFO = "samtale.avslag-info"
    REFUSAL_NOTE = "samtale.avslag"
    REFUSAL_INFORMED = "samtale.avslag-informert"
    EXISTING = "samtale.eksisterende-tiltak"
    SAFE_CONTACT = "trygg-kontakt"
    SAFE_CHANNELS = "trygg-kontakt.trygge"
    UNSAFE_CHANNELS = "trygg-kontakt.utrygge"
    SAFE_TIMES = "trygg-kontakt.tidspunkt"
    SAFE_NOTE = "trygg-kontakt.merknad"
    PLAN = "plan"
    CHECKLIST = "plan.sjekkliste"
    AGREED = "plan.avtalte-tiltak"
    ADVICE_INFO = "plan.atferd-info"
    ADVICE_GIVEN = "plan.atferd-rad"
    DEPENDANTS = "sarbare"
    DEPENDANTS_PRESENT = "sarbare.omsorg"
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

    @staticmethod
    def checklist_item(key: str) -> str:
        return f"{Link.CHECKLIST}.{key}"


#: The sections that must be answered. Not marked ``required`` on the group items (LHC-Forms then reports every such
#: group as missing a value although its questions are answered): the questions carry ``required`` and
#: :mod:`fhir_safetyplan.sections` enforces the sections.
REQUIRED_GROUPS = (Link.CONVERSATION, Link.CHECKLIST, Link.DEPENDANTS)

TEXT_MAX = 4000
STRING_MAX = 500


class _Builder:
    """Builds one Questionnaire (``lang`` None = multilingual)."""

    def __init__(self, content: Content, base: str, lang: str | None) -> None:
        self.c = content
        self.base = base
        self.lang = lang
        self.primary = lang or "nb"
        self.not_carried: set[str] = (
            set()
        )  # linkIds not pre-filled from the last plan (content: carry = false)

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
        return [self.coding(o, cs_id) for o in self.c.options(section)]

    def build(self) -> JSON:
        c = self.c
        t = c.text
        answer_cs = codes.codesystem_url(self.base, CS_ANSWER)
        yes = {"system": answer_cs, "code": "Y"}
        no = {"system": answer_cs, "code": "N"}

        def when(question: str, **answer: Any) -> list[JSON]:
            return [{"question": question, "operator": "=", **answer}]

        conversation = self.item(
            Link.CONVERSATION,
            "group",
            t("conversation"),
            item=[
                self.item(Link.INFORMED, "boolean", t("conversation", "informed"), required=True),
                self.choice(
                    Link.INVOLVEMENT,
                    t("conversation", "involvement"),
                    self.answers("yes", "no"),
                    required=True,
                    code=[self.plan_code("involvering", t("conversation", "involvement"))],
                ),
                self.item(
                    Link.REFUSAL_INFO,
                    "display",
                    t("conversation", "refusal-info"),
                    enableWhen=when(Link.INVOLVEMENT, answerCoding=no),
                ),
                self.item(
                    Link.REFUSAL_NOTE,
                    "text",
                    t("conversation", "refusal-note"),
                    enableWhen=when(Link.INVOLVEMENT, answerCoding=no),
                    maxLength=TEXT_MAX,
                ),
                self.item(
                    Link.REFUSAL_INFORMED,
                    "boolean",
                    t("conversation", "refusal-informed"),
                    enableWhen=when(Link.INVOLVEMENT, answerCoding=no),
                ),
                # The guidance asks for this in the first conversation, so it is recorded on a refusal too.
                self.item(Link.EXISTING, "text", t("conversation", "existing-measures"), maxLength=TEXT_MAX),
            ],
        )
        safe = self.item(
            Link.SAFE_CONTACT,
            "group",
            t("safe-contact"),
            code=[self.plan_code("trygg-kontakt", t("safe-contact"))],
            item=[
                self.choice(
                    Link.SAFE_CHANNELS,
                    t("safe-contact", "safe-channels"),
                    self.options("channels", CS_CHANNEL),
                    repeats=True,
                ),
                self.choice(
                    Link.UNSAFE_CHANNELS,
                    t("safe-contact", "unsafe-channels"),
                    self.options("channels", CS_CHANNEL),
                    repeats=True,
                ),
                self.item(Link.SAFE_TIMES, "string", t("safe-contact", "times"), maxLength=STRING_MAX),
                self.item(Link.SAFE_NOTE, "text", t("safe-contact", "note"), maxLength=TEXT_MAX),
            ],
        )
        checklist = [
            self.choice(
                Link.checklist_item(ci.key),
                ci.text,
                self.answers("yes", "no", "not-relevant", "declined"),
                required=True,
                code=[self.plan_code(ci.key, ci.label)],
            )
            for ci in c.checklist
        ]
        plan = self.item(
            Link.PLAN,
            "group",
            t("plan"),
            enableWhen=when(Link.INVOLVEMENT, answerCoding=yes),
            item=[
                self.item(Link.CHECKLIST, "group", t("plan", "checklist"), item=checklist),
                self.item(
                    Link.AGREED, "string", t("plan", "agreed-actions"), repeats=True, maxLength=STRING_MAX
                ),
                self.item(Link.ADVICE_INFO, "display", t("plan", "behaviour-advice", field="info")),
                self.item(Link.ADVICE_GIVEN, "boolean", t("plan", "behaviour-advice")),
            ],
        )
        plan = {
            "extension": [
                {
                    "url": TEMPLATE_EXTRACT,
                    "extension": [{"url": "template", "valueReference": {"reference": "#" + TEMPLATE_ID}}],
                }
            ],
            **plan,
        }
        dependants_yes = when(Link.DEPENDANTS_PRESENT, answerCoding=yes)
        # The duty to inform rests on what the health professional knows, not on the patient's answer: it is
        # asked also when the patient declined to say whether children are affected.
        declined = {"system": answer_cs, "code": "asked-declined"}
        duty_when: JSON = {
            "enableWhen": [
                {"question": Link.DEPENDANTS_PRESENT, "operator": "=", "answerCoding": yes},
                {"question": Link.DEPENDANTS_PRESENT, "operator": "=", "answerCoding": declined},
            ],
            "enableBehavior": "any",
        }
        dependants = self.item(
            Link.DEPENDANTS,
            "group",
            t("dependants"),
            item=[
                self.choice(
                    Link.DEPENDANTS_PRESENT,
                    t("dependants", "present"),
                    self.answers("yes", "no", "declined"),
                    required=True,
                ),
                {
                    "extension": [
                        {"url": "http://hl7.org/fhir/StructureDefinition/minValue", "valueInteger": 0},
                        {"url": "http://hl7.org/fhir/StructureDefinition/maxValue", "valueInteger": 30},
                    ],
                    **self.item(
                        Link.CHILDREN_COUNT,
                        "integer",
                        t("dependants", "children-count"),
                        enableWhen=dependants_yes,
                    ),
                },
                self.item(
                    Link.DEPENDANTS_PLAN,
                    "text",
                    t("dependants", "plan"),
                    enableWhen=dependants_yes,
                    maxLength=TEXT_MAX,
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
                    Link.DUTY_NOTE, "text", t("dependants", "duty-note"), maxLength=TEXT_MAX, **duty_when
                ),
            ],
        )
        mental = self.item(
            Link.MENTAL,
            "group",
            t("mental"),
            item=[
                self.choice(
                    Link.MENTAL_PRESENT, t("mental", "present"), self.answers("yes", "no", "declined")
                ),
                self.item(
                    Link.MENTAL_ADAPTATION,
                    "text",
                    t("mental", "adaptation"),
                    enableWhen=when(Link.MENTAL_PRESENT, answerCoding=yes),
                    maxLength=TEXT_MAX,
                ),
            ],
        )
        risk_done = when(Link.RISK_DONE, answerBoolean=True)
        risk = self.item(
            Link.RISK,
            "group",
            t("risk"),
            item=[
                self.item(Link.RISK_DONE, "boolean", t("risk", "done")),
                self.choice(
                    Link.RISK_INSTRUMENT,
                    t("risk", "instrument"),
                    self.options("instruments", CS_INSTRUMENT),
                    required=True,
                    enableWhen=risk_done,
                ),
                self.item(Link.RISK_DATE, "date", t("risk", "date"), required=True, enableWhen=risk_done),
                self.choice(
                    Link.RISK_LEVEL,
                    t("risk", "level"),
                    self.options("levels", CS_LEVEL),
                    required=True,
                    enableWhen=risk_done,
                ),
            ],
        )
        return self.root([conversation, safe, plan, dependants, mental, risk])

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

    # -- the CarePlan template -------------------------------------------------------------------------------
    def template(self) -> JSON:
        c = self.c
        lang = self.primary
        cs = codes.codesystem_url(self.base, CS_PLAN)

        def coding(code: str, display: str | None) -> JSON:
            out = {"_system": _tev(_lit(cs)), "_code": _tev(_lit(code))}
            return {**out, "_display": _tev(_lit(display))} if display else out

        def activity(context: str, code: str, display: str, description: str, literal: bool) -> JSON:
            return {
                "extension": [{"url": TEMPLATE_EXTRACT_CONTEXT, "valueString": context}],
                "detail": {
                    "code": {"coding": [coding(code, display)]},
                    "_status": _tev("'not-started'"),
                    "_description": _tev(_lit(description) if literal else description),
                },
            }

        activities = []
        answer_cs = codes.codesystem_url(self.base, CS_ANSWER)
        for ci in c.checklist:
            # linkId first, then the answer: fhirpathpy evaluates the inner where() per candidate item, so
            # narrowing by linkId before testing the answer makes this ~6x cheaper; both engines agree on it.
            context = (
                f"item.where(linkId='{Link.CHECKLIST}').item.where(linkId='{Link.checklist_item(ci.key)}')"
                f".where(answer.valueCoding.where(system='{answer_cs}' and code='N').exists())"
            )
            activities.append(activity(context, ci.key, ci.label.get(lang), ci.help.get(lang), literal=True))
        agreed = c.text("journal", field="agreed").get(lang)
        activities.append(
            activity(
                f"item.where(linkId='{Link.AGREED}').answer", "avtalt-tiltak", agreed, "value", literal=False
            )
        )
        title = c.text("neutral", field="careplan-title").get(lang)
        return {
            "resourceType": "CarePlan",
            "id": TEMPLATE_ID,
            # No meta.security here: dom-5 forbids labels on contained resources; they are added on extraction.
            "language": lang,  # the language of its displays, so a $extract result can be validated as it is
            "_status": _tev("'active'"),
            "_intent": _tev("'plan'"),
            # The category is coded without a display: lists in record systems show it next to the neutral title.
            "category": [{"coding": [coding("sikkerhetsplan", None)]}],
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
    builder = _Builder(load(), base, lang)
    q = builder.build()
    return population.add_markup(q, builder.not_carried, builder.c, codes.codesystem_url(base, CS_PLAN))


def build_questionnaire(lang: str | None = None, canonical_base: str | None = None) -> JSON:
    """The Questionnaire: multilingual (``lang=None``) or in one language (nb, nn, en). Returns a fresh copy."""
    if lang is not None and lang not in codes.LANGUAGES:
        raise ConfigError(f"language {lang!r} is not supported; use one of nb, nn, en")
    return copy.deepcopy(_cached(codes.canonical_base(canonical_base), lang))


def shared_questionnaire(lang: str | None = None, canonical_base: str | None = None) -> JSON:
    """Like :func:`build_questionnaire` but the process-wide cached instance: never mutate it.

    The hot path (validation, extraction) uses it so per-Questionnaire indexes and compiled expressions are
    reused across plans instead of being rebuilt for a fresh copy each time.
    """
    if lang is not None and lang not in codes.LANGUAGES:
        raise ConfigError(f"language {lang!r} is not supported; use one of nb, nn, en")
    return _cached(codes.canonical_base(canonical_base), lang)


def all_questionnaires(canonical_base: str | None = None) -> list[JSON]:
    """The multilingual Questionnaire and one per language."""
    return [build_questionnaire(lang, canonical_base) for lang in (None, *codes.LANGUAGES)]


def questionnaire_for(canonical: str, canonical_base: str | None = None) -> JSON | None:
    """Our Questionnaire whose ``url|version`` (or ``url``) is ``canonical``, or None (the shared instance:
    never mutate it)."""
    url, _, version = canonical.partition("|")
    for q in (shared_questionnaire(lang, canonical_base) for lang in (None, *codes.LANGUAGES)):
        if q["url"] == url and (not version or version == q["version"]):
            return q
    return None


# The answer codes (in our answer CodeSystem) an integration engine may send as plain words in an answers document.
ANSWER_WORDS: dict[str, str] = {
    "yes": "Y",
    "ja": "Y",
    "y": "Y",
    "no": "N",
    "nei": "N",
    "n": "N",
    "not-relevant": "NA",
    "na": "NA",
    "ikke-aktuelt": "NA",
    "declined": "asked-declined",
    "asked-declined": "asked-declined",
    "vil-ikke-svare": "asked-declined",
}
