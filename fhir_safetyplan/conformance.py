"""Conformance resources generated from the content: CodeSystems, ValueSets and StructureDefinition profiles.

The profiles state what every resource this module writes must carry — the confidentiality labels
(v3-Confidentiality R or V, and v3-ActCode SDV), subject, author and the links between the resources —
so that a server (HAPI ``$validate``) can check our output independently of our own code.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fhir_safetyplan import codes, fhir_r4, form_ids
from fhir_safetyplan.codes import ACT_CODE, CONFIDENTIALITY
from fhir_safetyplan.content import Content, Text, load
from fhir_safetyplan.errors import JSON
from fhir_safetyplan.form_builder import RELEASE_DATE
from fhir_safetyplan.questionnaire import all_questionnaires
from fhir_safetyplan.versions import published_questionnaires

VERSION = codes.QUESTIONNAIRE_VERSION
PUBLISHER = "fhir-safetyplan"

#: The FHIRPath rule every written resource must satisfy (also used by our own checks and tests).
SECURITY_RULE = (
    f"meta.security.where(system='{ACT_CODE}' and code='SDV').exists() and "
    f"meta.security.where(system='{CONFIDENTIALITY}' and (code='R' or code='V')).exists()"
)


def _designations(text: Text) -> list[JSON]:
    return [{"language": lang, "value": text.get(lang)} for lang in codes.TRANSLATED]


def _concept(
    code: str, display: Text, definition: str | None = None, children: list[JSON] | None = None
) -> JSON:
    out: JSON = {"code": code, "display": display.nb}
    if definition:
        out["definition"] = definition
    out["designation"] = _designations(display)
    if children:
        out["concept"] = children
    return out


def _metadata(rtype: str, rid: str, url: str, name: str, title: str, description: str) -> JSON:
    """The header every conformance resource shares, in the conventional element order."""
    out: JSON = {"resourceType": rtype, "id": rid}
    if rtype == "CodeSystem":
        out["language"] = "nb"  # the displays are bokmål; nn and en are designations
    return {
        **out,
        "url": url,
        "version": VERSION,
        "name": name,
        "title": title,
        "status": "active",
        "experimental": False,
        "date": RELEASE_DATE,
        "publisher": PUBLISHER,
        "description": description,
    }


def _codesystem(base: str, cs_id: str, name: str, title: str, description: str, concepts: list[JSON]) -> JSON:
    def count(cs: list[JSON]) -> int:
        return sum(1 + count(c.get("concept", [])) for c in cs)

    return {
        **_metadata("CodeSystem", cs_id, codes.codesystem_url(base, cs_id), name, title, description),
        "jurisdiction": [{"coding": [{"system": "urn:iso:std:iso:3166", "code": "NO"}]}],
        "caseSensitive": True,
        "valueSet": codes.valueset_url(base, cs_id),
        "hierarchyMeaning": "is-a",
        "content": "complete",
        "count": count(concepts),
        "concept": concepts,
    }


#: The plan CodeSystem's concepts: code, the content text that is its display (path, field), definition. The
#: checklist items are the children of 'sjekkliste'; the $populate launch context comes last (its code is content).
_PLAN_CONCEPTS: tuple[tuple[str, tuple[str, ...], str, str], ...] = (
    (
        "sikkerhetsplan",
        ("form",),
        "title",
        "Sikkerhetsplan for person utsatt for vold i nære relasjoner (kategori og skjema).",
    ),
    (
        form_ids.CATEGORY_CODE,
        ("neutral",),
        "careplan-title",
        "Oppfølgingsplan (kategori); nøytral kode brukt fra versjon 1.1.0 i stedet for «sikkerhetsplan».",
    ),
    (
        form_ids.FLAG_CODE,
        ("neutral",),
        "flag-title",
        "Kontaktavtale (kode for varselet); nøytral kode brukt fra versjon 1.1.0 i stedet for «trygg-kontakt».",
    ),
    (
        "involvering",
        ("conversation", "involvement"),
        "text",
        "Om personen ønsker involvering fra tjenesteapparatet.",
    ),
    ("trygg-kontakt", ("safe-contact",), "text", "Avtale om hvordan personen trygt kan kontaktes."),
    ("avtalt-tiltak", ("journal",), "agreed", "Konkret handling eller tiltak avtalt framover."),
    ("sjekkliste", ("plan", "checklist"), "text", "Punktene i sikkerhetsplanen (NKVTS)."),
)
_LAUNCH_CONTEXT_DEFINITION = (
    "SDC launch context: forrige utfylte skjema, som en ny samtale forhåndsutfylles fra ($populate)."
)


def _plan_concepts(c: Content) -> list[JSON]:
    # Display = the short label (what a CarePlan activity shows); definition = the item as the guidance puts it.
    checklist = [_concept(ci.key, ci.label, f"Tiltak i sikkerhetsplanen: {ci.text.nb}") for ci in c.checklist]
    concepts = [
        _concept(code, c.text(*path, field=field), definition, checklist if code == "sjekkliste" else None)
        for code, path, field, definition in _PLAN_CONCEPTS
    ]
    launch_context = c.raw["populate"]["launch-context"]
    return [*concepts, _concept(launch_context, c.text("populate"), _LAUNCH_CONTEXT_DEFINITION)]


def _answer_concepts(c: Content) -> list[JSON]:
    return [
        _concept(o.code, o.display, f"Samme betydning som {v['same-as']}.")
        for o, v in zip(c.options("answers"), c.raw["answers"].values(), strict=True)
    ]


def _option_concepts(*sections: str) -> Callable[[Content], list[JSON]]:
    """The concepts of a CodeSystem made of the options of content ``sections`` (retired ones say since when)."""

    def concepts(c: Content) -> list[JSON]:
        return [
            _concept(o.code, o.display, f"Brukes bare i versjon før {o.retired}." if o.retired else None)
            for section in sections
            for o in c.options(section)
        ]

    return concepts


#: Our own CodeSystems, in order: id, name, title, description, and where the concepts come from.
_CODESYSTEMS: tuple[tuple[str, str, str, str, Callable[[Content], list[JSON]]], ...] = (
    (
        form_ids.CS_ANSWER,
        "Svar",
        "Svar",
        "Svar i sikkerhetsplanen: ja, nei, ikke aktuelt, ønsket ikke å svare, ikke tatt opp. Kodene og "
        "betydningen er de "
        "samme som i HL7 v2-0532 og data-absent-reason, men med visningsnavn på bokmål, nynorsk og engelsk.",
        _answer_concepts,
    ),
    (
        form_ids.CS_PLAN,
        "SikkerhetsplanKoder",
        "Sikkerhetsplan – koder",
        "Koder for sikkerhetsplanlegging med personer utsatt for vold i nære relasjoner: kategori, "
        "trygg kontakt, avtalte tiltak og de ti punktene i NKVTS' sikkerhetsplan. Lokalt kodeverk: "
        "ingen nasjonal terminologi (SNOMED CT) for dette er funnet.",
        _plan_concepts,
    ),
    (
        form_ids.CS_CHANNEL,
        "Kontaktkanal",
        "Kontaktkanal",
        "Kanaler tjenesten kan bruke, eller ikke må bruke, for å kontakte pasienten trygt.",
        _option_concepts("channels"),
    ),
    (
        form_ids.CS_DUTY,
        "OpplysningspliktStatus",
        "Opplysningsplikt til barnevernet – status",
        "Hvordan helsepersonellets opplysningsplikt til barnevernet (hpl. § 33) er fulgt opp.",
        _option_concepts("duty-status"),
    ),
    (
        form_ids.CS_CONVERSATION,
        "Samtale",
        "Samtale – koder",
        "Samtaletype (første samtale / oppfølging), tolk, og ønsket involvering når pasienten vil ha "
        "sikkerhetssamtale uten andre tjenester.",
        _option_concepts("conversation-types", "interpreter", "involvement"),
    ),
    (
        form_ids.CS_AVERT,
        "AvvergingspliktStatus",
        "Avvergingsplikt – vurdering",
        "Hvordan avvergingsplikten (straffeloven § 196, helsepersonelloven § 31) er vurdert og fulgt opp.",
        _option_concepts("avert-status"),
    ),
    (
        form_ids.CS_INSTRUMENT,
        "Risikoinstrument",
        "Risikovurderingsinstrument",
        "Instrument brukt av personell med opplæring. Kun navnet registreres; ingen skåring.",
        _option_concepts("instruments"),
    ),
    (
        form_ids.CS_LEVEL,
        "Risikoniva",
        "Risikonivå",
        "Samlet risikonivå slik en strukturert vurdering konkluderte.",
        _option_concepts("levels"),
    ),
)


def codesystems(base: str, content: Content | None = None) -> list[JSON]:
    """Our own CodeSystems (measures, contact channels, duty status, risk instrument and level)."""
    c = content or load()
    return [
        _codesystem(base, cs_id, name, title, description, concepts(c))
        for cs_id, name, title, description, concepts in _CODESYSTEMS
    ]


def _valueset(base: str, vs_id: str, name: str, title: str, description: str, include: list[JSON]) -> JSON:
    return {
        **_metadata("ValueSet", vs_id, codes.valueset_url(base, vs_id), name, title, description),
        "immutable": True,
        "compose": {"include": include},
    }


def valuesets(base: str, content: Content | None = None) -> list[JSON]:
    """ValueSets: one per own CodeSystem, the answer sets, and the ten checklist measures."""
    c = content or load()

    def pick(*names: str) -> list[JSON]:
        by_system: dict[str, list[JSON]] = {}
        for n in names:
            o = c.option("answers", n)
            by_system.setdefault(o.system or codes.codesystem_url(base, form_ids.CS_ANSWER), []).append(
                {"code": o.code, "display": o.display.en}
            )
        return [{"system": s, "concept": cs} for s, cs in by_system.items()]

    own = [
        _valueset(
            base,
            cs["id"],
            cs["name"],
            cs["title"],
            f"Alle koder i {cs['title']}.",
            [{"system": cs["url"], "version": VERSION}],
        )
        for cs in codesystems(base, c)
    ]
    plan_cs = codes.codesystem_url(base, form_ids.CS_PLAN)
    return [
        *own,
        _valueset(
            base,
            "sikkerhetsplan-sjekkliste",
            "SikkerhetsplanSjekkliste",
            "Sikkerhetsplan – sjekkliste",
            "De ti punktene i sikkerhetsplanen (tiltak).",
            [{"system": plan_cs, "version": VERSION, "concept": [{"code": ci.key} for ci in c.checklist]}],
        ),
        _valueset(
            base,
            "sjekkliste-svar",
            "SjekklisteSvar",
            "Svar på punktene i sikkerhetsplanen",
            "Ja / nei / ikke aktuelt / ønsket ikke å svare / ikke tatt opp.",
            pick("yes", "no", "not-relevant", "declined", "not-asked"),
        ),
        _valueset(base, "ja-nei", "JaNei", "Ja / nei", "Ja / nei.", pick("yes", "no")),
        _valueset(
            base,
            "ja-nei-vil-ikke-svare",
            "JaNeiVilIkkeSvare",
            "Ja / nei / ønsket ikke å svare",
            "Ja / nei / ønsket ikke å svare.",
            pick("yes", "no", "declined"),
        ),
    ]


# -- profiles -----------------------------------------------------------------------------------------------


def _el(path: str, **props: Any) -> JSON:
    return {"id": path, "path": path, **props}


def _required(rtype: str, *names: str) -> tuple[JSON, ...]:
    """The elements ``rtype.name`` that must be there (min 1), in this order."""
    return tuple(_el(f"{rtype}.{name}", min=1) for name in names)


def _rule(key: str, human: str, expression: str, url: str) -> JSON:
    return {"key": key, "severity": "error", "human": human, "expression": expression, "source": url}


@dataclass(frozen=True)
class _ProfileSpec:
    """One profile: its id, the resource type, name, title, description, its own rules — key, human text and
    FHIRPath, where ``{plan_cs}`` / ``{q_prefix}`` stand for our CodeSystem / Questionnaire URLs under the
    canonical base — and the differential elements beyond meta.security."""

    id: str
    type: str
    name: str
    title: str
    description: str
    rules: tuple[tuple[str, str, str], ...]
    elements: tuple[JSON, ...]


_PROFILES = (
    _ProfileSpec(
        "sikkerhetsplan-questionnaireresponse",
        "QuestionnaireResponse",
        "SikkerhetsplanQuestionnaireResponse",
        "Sikkerhetsplan – utfylt skjema",
        "Svarene fra sikkerhetsplanleggingen. Sensitivt: merket med konfidensialitet R/V og SDV.",
        (
            (
                "sp-qr-1",
                "Skal peke på sikkerhetsplan-skjemaet (url|versjon)",
                "questionnaire.startsWith('{q_prefix}')",
            ),
        ),
        (
            _el("QuestionnaireResponse.identifier", min=1, short="Innsendingens identifikator"),
            *_required("QuestionnaireResponse", "questionnaire", "subject", "authored", "author"),
        ),
    ),
    _ProfileSpec(
        "sikkerhetsplan-careplan",
        "CarePlan",
        "SikkerhetsplanCarePlan",
        "Sikkerhetsplan",
        "Sikkerhetsplanen: planlagte tiltak for det som mangler, og avtalte handlinger. "
        "Peker på skjemaet den er laget fra.",
        (
            (
                "sp-cp-1",
                "Kategori oppfølging (1.0.0: sikkerhetsplan)",
                "category.coding.where(system='{plan_cs}' and (code='" + form_ids.CATEGORY_CODE + "' or "
                "code='sikkerhetsplan')).exists()",
            ),
            (
                "sp-cp-2",
                "supportingInfo skal peke på QuestionnaireResponse",
                "supportingInfo.where(reference.contains('QuestionnaireResponse')"
                " or reference.startsWith('urn:uuid:')).exists()",
            ),
        ),
        (
            *_required("CarePlan", "identifier", "category", "author"),
            _el("CarePlan.supportingInfo", min=1, short="Skjemaet (QuestionnaireResponse)"),
        ),
    ),
    _ProfileSpec(
        "sikkerhetsplan-flag",
        "Flag",
        "SikkerhetsplanTryggKontaktFlag",
        "Trygg kontakt",
        "Varsel til annet helsepersonell om hvordan pasienten trygt kan kontaktes.",
        (
            (
                "sp-flag-1",
                "Kategori safety",
                "category.coding.where(system='" + codes.FLAG_CATEGORY + "' and code='safety').exists()",
            ),
        ),
        _required("Flag", "identifier", "category", "author"),
    ),
    _ProfileSpec(
        "sikkerhetsplan-journalnotat",
        "DocumentReference",
        "SikkerhetsplanJournalnotat",
        "Sikkerhetsplan – journalnotat",
        "Journalnotat om sikkerhetsplanleggingen (Volven 9602 B02-2 Journalnotat), lesbar tekst.",
        (
            (
                "sp-doc-1",
                "Type Journalnotat (Volven 9602 B02-2)",
                "type.coding.where(system='" + codes.VOLVEN_DOCUMENT_TYPE + "' and code='B02-2').exists()",
            ),
            (
                "sp-doc-2",
                "securityLabel skal også ha SDV",
                "securityLabel.coding.where(system='" + ACT_CODE + "' and code='SDV').exists()",
            ),
        ),
        (
            *_required("DocumentReference", "masterIdentifier", "type", "subject", "date", "author"),
            _el("DocumentReference.securityLabel", min=2),
            _el("DocumentReference.context", min=1),
            _el(
                "DocumentReference.context.related",
                min=1,
                short="Skjemaet (QuestionnaireResponse) og eventuelt sikkerhetsplanen (CarePlan)",
            ),
        ),
    ),
    _ProfileSpec(
        "sikkerhetsplan-provenance",
        "Provenance",
        "SikkerhetsplanProvenance",
        "Sikkerhetsplan – proveniens",
        "Hvem dokumenterte, og hvilket skjema ressursene er laget fra (entity role source).",
        (
            (
                "sp-prov-1",
                "Kilden (entity role source) er skjemaet",
                "entity.where(role='source' and what.reference.exists()).exists()",
            ),
        ),
        _required("Provenance", "entity"),
    ),
)


def _profile(base: str, spec: _ProfileSpec) -> JSON:
    url = codes.profile_url(base, spec.id)
    urls = {
        "plan_cs": codes.codesystem_url(base, form_ids.CS_PLAN),
        "q_prefix": f"{base}/Questionnaire/sikkerhetsplan",
    }
    security = _rule(
        "sp-sec-1",
        "Skal ha konfidensialitet R eller V og ActCode SDV i meta.security "
        "(must carry confidentiality R or V and v3-ActCode SDV)",
        SECURITY_RULE,
        url,
    )
    rules = [_rule(key, human, expression.format(**urls), url) for key, human, expression in spec.rules]
    rtype = spec.type
    return {
        **_metadata("StructureDefinition", spec.id, url, spec.name, spec.title, spec.description),
        "fhirVersion": fhir_r4.FHIR_VERSION,
        "kind": "resource",
        "abstract": False,
        "type": rtype,
        "baseDefinition": f"http://hl7.org/fhir/StructureDefinition/{rtype}",
        "derivation": "constraint",
        "differential": {
            "element": [
                _el(rtype, short=spec.title, constraint=[security, *rules]),
                _el(f"{rtype}.meta", min=1),
                _el(
                    f"{rtype}.meta.security",
                    min=2,
                    short="R eller V (v3-Confidentiality) og SDV (v3-ActCode)",
                ),
                *copy.deepcopy(spec.elements),
            ]
        },
    }


def profiles(base: str) -> list[JSON]:
    """StructureDefinition profiles for every resource type the module writes."""
    return [_profile(base, spec) for spec in _PROFILES]


def naming_systems(base: str) -> list[JSON]:
    """The namespace of the submission identifier on every written resource, so validators can resolve it."""
    return [
        {
            "resourceType": "NamingSystem",
            "id": codes.SUBMISSION_NAMING_SYSTEM,
            "name": "SikkerhetsplanInnsending",
            "status": "active",
            "kind": "identifier",
            "date": RELEASE_DATE,
            "publisher": PUBLISHER,
            "description": "Identifikator for én innsending av en sikkerhetsplan. Alle ressursene fra samme "
            "innsending har den samme verdien; en ny innsending av det samme skjemaet får den samme verdien.",
            "jurisdiction": [{"coding": [{"system": "urn:iso:std:iso:3166", "code": "NO"}]}],
            "uniqueId": [{"type": "uri", "value": codes.submission_system(base), "preferred": True}],
        }
    ]


def all_resources(canonical_base: str | None = None) -> list[JSON]:
    """Every conformance resource, in a stable order."""
    base = codes.canonical_base(canonical_base)
    c = load()
    return [
        *all_questionnaires(base),
        *frozen_questionnaires(base),
        *codesystems(base, c),
        *valuesets(base, c),
        *profiles(base),
        *naming_systems(base),
    ]


def frozen_questionnaires(base: str) -> list[JSON]:
    """The earlier published Questionnaires, unchanged but for their server id (``<id>-<version>``, so that a
    server or package holds every version side by side; the canonical ``url|version`` is what responses name)."""

    return [copy.deepcopy(q) for q in published_questionnaires(base) if q["version"] != VERSION]


def dumps(resource: JSON) -> str:
    """The canonical JSON text we write: UTF-8, two-space indent, stable, newline at the end."""
    return json.dumps(resource, ensure_ascii=False, indent=2) + "\n"


def filename(resource: JSON) -> str:
    return f"{resource['resourceType']}-{resource['id']}.json"


def write_profiles(out: Path, canonical_base: str | None = None) -> list[Path]:
    """Write every conformance resource as ``out/<ResourceType>-<id>.json``; returns the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for resource in all_resources(canonical_base):
        path = out / filename(resource)
        path.write_text(dumps(resource), encoding="utf-8")
        written.append(path)
    return written
