"""Conformance resources generated from the content: CodeSystems, ValueSets and StructureDefinition profiles.

The profiles state what every resource this module writes must carry — the confidentiality labels
(v3-Confidentiality R or V, and v3-ActCode SDV), subject, author and the links between the resources —
so that a server (HAPI ``$validate``) can check our output independently of our own code.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from fhir_safetyplan import codes
from fhir_safetyplan.codes import ACT_CODE, CONFIDENTIALITY
from fhir_safetyplan.content import Content, Text, load
from fhir_safetyplan.errors import JSON
from fhir_safetyplan.questionnaire import (
    CATEGORY_CODE,
    CS_ANSWER,
    CS_AVERT,
    CS_CHANNEL,
    CS_CONVERSATION,
    CS_DUTY,
    CS_INSTRUMENT,
    CS_LEVEL,
    CS_PLAN,
    FLAG_CODE,
    RELEASE_DATE,
    all_questionnaires,
)

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


def codesystems(base: str, content: Content | None = None) -> list[JSON]:
    """Our own CodeSystems (measures, contact channels, duty status, risk instrument and level)."""
    c = content or load()
    t = c.text
    # Display = the short label (what a CarePlan activity shows); definition = the item as the guidance puts it.
    checklist = [_concept(ci.key, ci.label, f"Tiltak i sikkerhetsplanen: {ci.text.nb}") for ci in c.checklist]
    plan = [
        _concept(
            "sikkerhetsplan",
            c.text("form", field="title"),
            "Sikkerhetsplan for person utsatt for vold i nære relasjoner (kategori og skjema).",
        ),
        _concept(
            CATEGORY_CODE,
            c.text("neutral", field="careplan-title"),
            "Oppfølgingsplan (kategori); nøytral kode brukt fra versjon 1.1.0 i stedet for «sikkerhetsplan».",
        ),
        _concept(
            FLAG_CODE,
            c.text("neutral", field="flag-title"),
            "Kontaktavtale (kode for varselet); nøytral kode brukt fra versjon 1.1.0 i stedet for «trygg-kontakt».",
        ),
        _concept(
            "involvering",
            t("conversation", "involvement"),
            "Om personen ønsker involvering fra tjenesteapparatet.",
        ),
        _concept("trygg-kontakt", t("safe-contact"), "Avtale om hvordan personen trygt kan kontaktes."),
        _concept(
            "avtalt-tiltak",
            c.text("journal", field="agreed"),
            "Konkret handling eller tiltak avtalt framover.",
        ),
        _concept("sjekkliste", t("plan", "checklist"), "Punktene i sikkerhetsplanen (NKVTS).", checklist),
        _concept(
            c.raw["populate"]["launch-context"],
            t("populate"),
            "SDC launch context: forrige utfylte skjema, som en ny samtale forhåndsutfylles fra ($populate).",
        ),
    ]

    def simple(*sections: str) -> list[JSON]:
        return [
            _concept(o.code, o.display, f"Brukes bare i versjon før {o.retired}." if o.retired else None)
            for section in sections
            for o in c.options(section)
        ]

    answers = [
        _concept(o.code, o.display, f"Samme betydning som {v['same-as']}.")
        for o, v in zip(c.options("answers"), c.raw["answers"].values(), strict=True)
    ]
    return [
        _codesystem(
            base,
            CS_ANSWER,
            "Svar",
            "Svar",
            "Svar i sikkerhetsplanen: ja, nei, ikke aktuelt, ønsket ikke å svare, ikke tatt opp. Kodene og "
            "betydningen er de "
            "samme som i HL7 v2-0532 og data-absent-reason, men med visningsnavn på bokmål, nynorsk og engelsk.",
            answers,
        ),
        _codesystem(
            base,
            CS_PLAN,
            "SikkerhetsplanKoder",
            "Sikkerhetsplan – koder",
            "Koder for sikkerhetsplanlegging med personer utsatt for vold i nære relasjoner: kategori, "
            "trygg kontakt, avtalte tiltak og de ti punktene i NKVTS' sikkerhetsplan. Lokalt kodeverk: "
            "ingen nasjonal terminologi (SNOMED CT) for dette er funnet.",
            plan,
        ),
        _codesystem(
            base,
            CS_CHANNEL,
            "Kontaktkanal",
            "Kontaktkanal",
            "Kanaler tjenesten kan bruke, eller ikke må bruke, for å kontakte pasienten trygt.",
            simple("channels"),
        ),
        _codesystem(
            base,
            CS_DUTY,
            "OpplysningspliktStatus",
            "Opplysningsplikt til barnevernet – status",
            "Hvordan helsepersonellets opplysningsplikt til barnevernet (hpl. § 33) er fulgt opp.",
            simple("duty-status"),
        ),
        _codesystem(
            base,
            CS_CONVERSATION,
            "Samtale",
            "Samtale – koder",
            "Samtaletype (første samtale / oppfølging), tolk, og ønsket involvering når pasienten vil ha "
            "sikkerhetssamtale uten andre tjenester.",
            simple("conversation-types", "interpreter", "involvement"),
        ),
        _codesystem(
            base,
            CS_AVERT,
            "AvvergingspliktStatus",
            "Avvergingsplikt – vurdering",
            "Hvordan avvergingsplikten (straffeloven § 196, helsepersonelloven § 31) er vurdert og fulgt opp.",
            simple("avert-status"),
        ),
        _codesystem(
            base,
            CS_INSTRUMENT,
            "Risikoinstrument",
            "Risikovurderingsinstrument",
            "Instrument brukt av personell med opplæring. Kun navnet registreres; ingen skåring.",
            simple("instruments"),
        ),
        _codesystem(
            base,
            CS_LEVEL,
            "Risikoniva",
            "Risikonivå",
            "Samlet risikonivå slik en strukturert vurdering konkluderte.",
            simple("levels"),
        ),
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
            by_system.setdefault(o.system or codes.codesystem_url(base, CS_ANSWER), []).append(
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
    plan_cs = codes.codesystem_url(base, CS_PLAN)
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


def _rule(key: str, human: str, expression: str, url: str) -> JSON:
    return {"key": key, "severity": "error", "human": human, "expression": expression, "source": url}


def _profile(
    base: str,
    sd_id: str,
    rtype: str,
    name: str,
    title: str,
    description: str,
    rules: list[JSON],
    elements: list[JSON],
) -> JSON:
    url = codes.profile_url(base, sd_id)
    security = _rule(
        "sp-sec-1",
        "Skal ha konfidensialitet R eller V og ActCode SDV i meta.security "
        "(must carry confidentiality R or V and v3-ActCode SDV)",
        SECURITY_RULE,
        url,
    )
    root = _el(rtype, short=title, constraint=[security, *[{**r, "source": url} for r in rules]])
    return {
        **_metadata("StructureDefinition", sd_id, url, name, title, description),
        "fhirVersion": "4.0.1",
        "kind": "resource",
        "abstract": False,
        "type": rtype,
        "baseDefinition": f"http://hl7.org/fhir/StructureDefinition/{rtype}",
        "derivation": "constraint",
        "differential": {
            "element": [
                root,
                _el(f"{rtype}.meta", min=1),
                _el(
                    f"{rtype}.meta.security",
                    min=2,
                    short="R eller V (v3-Confidentiality) og SDV (v3-ActCode)",
                ),
                *elements,
            ]
        },
    }


def profiles(base: str) -> list[JSON]:
    """StructureDefinition profiles for every resource type the module writes."""
    plan_cs = codes.codesystem_url(base, CS_PLAN)
    q_prefix = f"{base}/Questionnaire/sikkerhetsplan"
    return [
        _profile(
            base,
            "sikkerhetsplan-questionnaireresponse",
            "QuestionnaireResponse",
            "SikkerhetsplanQuestionnaireResponse",
            "Sikkerhetsplan – utfylt skjema",
            "Svarene fra sikkerhetsplanleggingen. Sensitivt: merket med konfidensialitet R/V og SDV.",
            [
                _rule(
                    "sp-qr-1",
                    "Skal peke på sikkerhetsplan-skjemaet (url|versjon)",
                    f"questionnaire.startsWith('{q_prefix}')",
                    "",
                )
            ],
            [
                _el("QuestionnaireResponse.identifier", min=1, short="Innsendingens identifikator"),
                _el("QuestionnaireResponse.questionnaire", min=1),
                _el("QuestionnaireResponse.subject", min=1),
                _el("QuestionnaireResponse.authored", min=1),
                _el("QuestionnaireResponse.author", min=1),
            ],
        ),
        _profile(
            base,
            "sikkerhetsplan-careplan",
            "CarePlan",
            "SikkerhetsplanCarePlan",
            "Sikkerhetsplan",
            "Sikkerhetsplanen: planlagte tiltak for det som mangler, og avtalte handlinger. "
            "Peker på skjemaet den er laget fra.",
            [
                _rule(
                    "sp-cp-1",
                    "Kategori oppfølging (1.0.0: sikkerhetsplan)",
                    f"category.coding.where(system='{plan_cs}' and (code='{CATEGORY_CODE}' or "
                    "code='sikkerhetsplan')).exists()",
                    "",
                ),
                _rule(
                    "sp-cp-2",
                    "supportingInfo skal peke på QuestionnaireResponse",
                    "supportingInfo.where(reference.contains('QuestionnaireResponse')"
                    " or reference.startsWith('urn:uuid:')).exists()",
                    "",
                ),
            ],
            [
                _el("CarePlan.identifier", min=1),
                _el("CarePlan.category", min=1),
                _el("CarePlan.author", min=1),
                _el("CarePlan.supportingInfo", min=1, short="Skjemaet (QuestionnaireResponse)"),
            ],
        ),
        _profile(
            base,
            "sikkerhetsplan-flag",
            "Flag",
            "SikkerhetsplanTryggKontaktFlag",
            "Trygg kontakt",
            "Varsel til annet helsepersonell om hvordan pasienten trygt kan kontaktes.",
            [
                _rule(
                    "sp-flag-1",
                    "Kategori safety",
                    f"category.coding.where(system='{codes.FLAG_CATEGORY}' and code='safety').exists()",
                    "",
                )
            ],
            [_el("Flag.identifier", min=1), _el("Flag.category", min=1), _el("Flag.author", min=1)],
        ),
        _profile(
            base,
            "sikkerhetsplan-journalnotat",
            "DocumentReference",
            "SikkerhetsplanJournalnotat",
            "Sikkerhetsplan – journalnotat",
            "Journalnotat om sikkerhetsplanleggingen (Volven 9602 B02-2 Journalnotat), lesbar tekst.",
            [
                _rule(
                    "sp-doc-1",
                    "Type Journalnotat (Volven 9602 B02-2)",
                    f"type.coding.where(system='{codes.VOLVEN_DOCUMENT_TYPE}' and code='B02-2').exists()",
                    "",
                ),
                _rule(
                    "sp-doc-2",
                    "securityLabel skal også ha SDV",
                    f"securityLabel.coding.where(system='{ACT_CODE}' and code='SDV').exists()",
                    "",
                ),
            ],
            [
                _el("DocumentReference.masterIdentifier", min=1),
                _el("DocumentReference.type", min=1),
                _el("DocumentReference.subject", min=1),
                _el("DocumentReference.date", min=1),
                _el("DocumentReference.author", min=1),
                _el("DocumentReference.securityLabel", min=2),
                _el("DocumentReference.context", min=1),
                _el(
                    "DocumentReference.context.related",
                    min=1,
                    short="Skjemaet (QuestionnaireResponse) og eventuelt sikkerhetsplanen (CarePlan)",
                ),
            ],
        ),
        _profile(
            base,
            "sikkerhetsplan-provenance",
            "Provenance",
            "SikkerhetsplanProvenance",
            "Sikkerhetsplan – proveniens",
            "Hvem dokumenterte, og hvilket skjema ressursene er laget fra (entity role source).",
            [
                _rule(
                    "sp-prov-1",
                    "Kilden (entity role source) er skjemaet",
                    "entity.where(role='source' and what.reference.exists()).exists()",
                    "",
                )
            ],
            [_el("Provenance.entity", min=1)],
        ),
    ]


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
    from fhir_safetyplan.versions import published_questionnaires

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
