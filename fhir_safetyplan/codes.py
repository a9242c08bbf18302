"""Code systems, identifier systems and canonical URLs used across the module (one place, no magic strings)."""

from __future__ import annotations

#: Used when the caller names none (the command line and the service pass --canonical-base or
#: SAFETYPLAN_CANONICAL_BASE when set). A deployment replaces it with a base URL
#: it controls; `.example` is reserved (RFC 2606), so this default can never collide with a real organisation.
DEFAULT_CANONICAL_BASE = "https://safetyplan.example/fhir"
QUESTIONNAIRE_VERSION = "1.1.0"
PACKAGE_NAME = "example.safetyplan.r4"

#: Our CodeSystem of answers (Y / N / NA / asked-declined), displayed in nb with nn and en designations. Content 1.0.0
#: used the HL7 code systems below with the same codes; their displays are English only, so the HL7 validator
#: rejects a Norwegian display on them. Responses coded the 1.0.0 way are still read (:func:`answer_code`).
ANSWER_CS = "svar"
YES_NO = "http://terminology.hl7.org/CodeSystem/v2-0532"
DATA_ABSENT = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
LEGACY_ANSWER_SYSTEMS = (YES_NO, DATA_ABSENT)
CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
FLAG_CATEGORY = "http://terminology.hl7.org/CodeSystem/flag-category"
PROVENANCE_AGENT_TYPE = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
DATA_OPERATION = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
VOLVEN_DOCUMENT_TYPE = "urn:oid:2.16.578.1.12.4.1.1.9602"
#: Volven 9603 Sperring og nekting av dokumenter (e.g. NORN_EPO: not shown electronically, the patient's wish).
VOLVEN_ACCESS = "urn:oid:2.16.578.1.12.4.1.1.9603"
TRANSLATION = "http://hl7.org/fhir/StructureDefinition/translation"
ITEM_CONTROL = "http://hl7.org/fhir/StructureDefinition/questionnaire-itemControl"
ITEM_CONTROL_SYSTEM = "http://hl7.org/fhir/questionnaire-item-control"
VERSION_ALGORITHM = "http://hl7.org/fhir/StructureDefinition/artifact-versionAlgorithm"
#: The R4 extensions pack's RelatedArtifact on a Questionnaire (``cqf-relatedArtifact`` is not an R4 extension).
RELATED_ARTIFACT = "http://hl7.org/fhir/StructureDefinition/artifact-relatedArtifact"

SDC = "http://hl7.org/fhir/uv/sdc/StructureDefinition/"
TEMPLATE_EXTRACT = SDC + "sdc-questionnaire-templateExtract"
TEMPLATE_EXTRACT_CONTEXT = SDC + "sdc-questionnaire-templateExtractContext"
TEMPLATE_EXTRACT_VALUE = SDC + "sdc-questionnaire-templateExtractValue"
SDC_EXTRACT_TEMPLATE_PROFILE = SDC + "sdc-questionnaire-extr-template"
SDC_POPULATE_OPERATION = "http://hl7.org/fhir/uv/sdc/OperationDefinition/Questionnaire-populate"

FNR = "urn:oid:2.16.578.1.12.4.1.4.1"
DNR = "urn:oid:2.16.578.1.12.4.1.4.2"
HPR = "urn:oid:2.16.578.1.12.4.1.4.4"
ORGNR = "urn:oid:2.16.578.1.12.4.1.4.101"

#: The only resource types this module writes (plus, on request, a conditional create of a test Patient).
WRITTEN_TYPES = ("QuestionnaireResponse", "CarePlan", "Flag", "DocumentReference", "Provenance")

LANGUAGES = ("nb", "nn", "en")
TRANSLATED = ("nn", "en")


def canonical_base(base: str | None = None) -> str:
    """The canonical base in force, checked: ``base``, else the default (no trailing /)."""
    from fhir_safetyplan.errors import ConfigError

    value = base or DEFAULT_CANONICAL_BASE
    value = value.rstrip("/")
    if not value.startswith(("http://", "https://", "urn:")) or any(c.isspace() for c in value):
        raise ConfigError(
            f"canonical base {value!r} is not an absolute http(s) or urn URL; "
            "give one like https://fhir.example.org/fhir (--canonical-base or SAFETYPLAN_CANONICAL_BASE)"
        )
    return value


def answer_code(coding: object) -> str | None:
    """The code of an answer coding (``Y``, ``N``, ``NA``, ``asked-declined``), None for any other coding.

    Accepts our answer CodeSystem under any canonical base (the response was checked against its Questionnaire,
    which fixes the base) and the HL7 systems content 1.0.0 used.
    """
    if not isinstance(coding, dict):
        return None
    system = str(coding.get("system", ""))
    if system in LEGACY_ANSWER_SYSTEMS or system.endswith(f"/CodeSystem/{ANSWER_CS}"):
        return str(coding.get("code", "")) or None
    return None


def codesystem_url(base: str, cs_id: str) -> str:
    return f"{base}/CodeSystem/{cs_id}"


def namingsystem_url(base: str, ns_id: str) -> str:
    """An identifier namespace of ours, e.g. ``{base}/NamingSystem/submission`` (a NamingSystem's uniqueId)."""
    return f"{base}/NamingSystem/{ns_id}"


def valueset_url(base: str, vs_id: str) -> str:
    return f"{base}/ValueSet/{vs_id}"


def profile_url(base: str, sd_id: str) -> str:
    return f"{base}/StructureDefinition/{sd_id}"


def questionnaire_id(lang: str | None) -> str:
    """``sikkerhetsplan`` for the multilingual form, ``sikkerhetsplan-<lang>`` for one language."""
    return "sikkerhetsplan" if lang is None else f"sikkerhetsplan-{lang}"


def questionnaire_url(base: str, lang: str | None) -> str:
    return f"{base}/Questionnaire/{questionnaire_id(lang)}"


#: The NamingSystem of the submission identifier every written resource carries (its id).
SUBMISSION_NAMING_SYSTEM = "submission"


def submission_system(base: str) -> str:
    """The submission identifier's system under canonical ``base``: ``{base}/NamingSystem/submission``."""
    return namingsystem_url(base, SUBMISSION_NAMING_SYSTEM)


#: How the submission identifier's system ends, whatever the canonical base.
SUBMISSION_SYSTEM_SUFFIX = submission_system("")


def is_submission_system(system: object) -> bool:
    """True for the submission identifier's system under any canonical base."""
    return isinstance(system, str) and system.endswith(SUBMISSION_SYSTEM_SUFFIX)
