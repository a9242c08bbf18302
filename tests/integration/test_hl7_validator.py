"""The official HL7 FHIR Validator accepts our definitions and everything we write.

HAPI's ``$validate`` is lenient where the HL7 validator (the one the IG Publisher and implementers run) is strict,
e.g. a Coding.display that is not a display of the code is a HAPI warning but an HL7 error. So the engine itself
(``org.hl7.fhir.validation`` from Maven Central) runs here, offline, driven by our small Java runner in
``tools/hl7-validator/`` (built, with its package cache, by ``scripts/setup.sh``). One JVM validates every file in
one call: load once (about 10 s), then well under a second a resource.

Checked: every file in ``profiles/``; every example's transaction Bundle (each entry against its ``meta.profile``,
with the Bundle's own references resolvable); every QuestionnaireResponse we write (the one in each example's
Bundle, and the ``questionnaire-response.json`` made from an answers document) against the Questionnaire it names
(``questionnaire required``). Example 08's ``questionnaire-response.json`` is the renderer's own response, echoed:
what we write from it is the one in its Bundle. No error may remain outside the kinds listed here with their reasons
(:data:`TOLERATED`: not defects; :data:`OFFLINE_ERRORS`: what only the server holds; :data:`PUBLISHED`: what the
released content 1.0.0 keeps, only in its files), and no warning outside :data:`OFFLINE_WARNINGS`; two planted
defects prove the checks are live.

When ``CI`` is set the test never skips: a runner that is missing fails the run.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from _needs import unavailable

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "hl7-validator"
PROFILES = ROOT / "profiles"
EXAMPLES = sorted(p for p in (ROOT / "examples").iterdir() if (p / "bundle.json").is_file())


def _prepare_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("hl7_validator_prepare", TOOL / "prepare.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


prepare = _prepare_module()


@dataclass(frozen=True)
class Issue:
    """One issue of an OperationOutcome, as the validator reported it."""

    severity: str
    message_id: str
    location: str
    text: str
    line: int | None

    def __str__(self) -> str:
        return f"{self.severity} {self.message_id} at {self.location} (line {self.line}): {self.text}"


@dataclass(frozen=True)
class Kind:
    """A kind of issue we accept, matched narrowly: message id and location (and text where ids are shared)."""

    message_id: str
    location: str  # regex on the FHIRPath location, matched from its start
    reason: str
    text: str = ""  # regex searched in the message text
    published_1_0_0_only: bool = False  # only in a file of the published content 1.0.0 (see _answers_1_0_0)

    def matches(self, issue: Issue) -> bool:
        return (
            issue.message_id == self.message_id
            and re.match(self.location, issue.location) is not None
            and re.search(self.text, issue.text) is not None
        )


_TEMPLATE = r"Questionnaire\.contained\[\d+\]/\*CarePlan/careplan-template\*/"

#: Errors that are not defects (research note hl7-validator.md), each with why.
TOLERATED: tuple[Kind, ...] = (
    Kind(
        "Terminology_TX_Code_ValueSet_MISSING",
        _TEMPLATE + r"\.(status|intent|activity\[\d+\]\.detail\.status)$",
        "The SDC extraction template is contained in the Questionnaire; its codes are filled at extraction "
        "(templateExtractValue), so the validator, which checks it as an ordinary CarePlan, finds them empty.",
    ),
    Kind(
        "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnairecommon#sdc-2",
        r"Questionnaire$",
        "sdc-2 of the SDC 4.0.0 ballot package (npm has no 4.0.0 final) looks for an R5 versionAlgorithm element "
        "through a cross-version path; our Questionnaires carry the R4 artifact-versionAlgorithm extension.",
    ),
)

#: Warnings (and information) of the offline kinds: what a terminology server would settle, and best practice.
OFFLINE_WARNINGS: tuple[Kind, ...] = (
    Kind(
        "UNKNOWN_CODESYSTEM",
        r".*",
        "BCP 47 languages, ISO 3166 countries and Volven code systems are known only to a terminology server.",
        text=r"'(urn:ietf:bcp:47|urn:iso:std:iso:3166|urn:oid:2\.16\.578\.1\.12\.4\.1\.1\.\d+)'",
    ),
    Kind(
        "",
        r".*\.language$",
        "The same BCP 47 note, reported a second time without a message id.",
        text=r"^A definition for CodeSystem 'urn:ietf:bcp:47' could not be found",
    ),
    Kind(
        "TYPE_SPECIFIC_CHECKS_DT_CANONICAL_MULTIPLE_POSSIBLE_VERSIONS",
        r"ValueSet\.compose\.include\[\d+\]\.system$",
        "data-absent-reason is defined by both R4 core and terminology.hl7.org; both are loaded.",
        text=r"data-absent-reason",
    ),
    Kind(
        "http://hl7.org/fhir/StructureDefinition/DomainResource#dom-6",
        r"(CodeSystem|ValueSet|StructureDefinition|NamingSystem|QuestionnaireResponse)$",
        "dom-6 (a narrative) is best practice: conformance resources are rendered by the tools that publish them, "
        "and the response made from an answers document gets its narrative when it is written (in the Bundle).",
    ),
    Kind(
        "Reference_REF_NoDisplay",
        _TEMPLATE + r"\.(subject|author|supportingInfo\[\d+\])$",
        "Empty references in the extraction template: filled at extraction.",
    ),
    Kind(
        "Terminology_TX_NoValid_13",
        r".*(meta\.security|securityLabel)\[\d+\]",
        "The Volven 9603 label (content 1.1.0: documents hidden from Helsenorge) is a Norwegian security label, "
        "not in HL7's security-labels value set; the binding is extensible, so it is allowed and warned about.",
        text=r"urn:oid:2\.16\.578\.1\.12\.4\.1\.1\.9603#NORN_EPO",
    ),
    Kind(
        "Terminology_TX_NoValid_2_CC",
        r".*securityLabel\[\d+\]",
        "The same Volven 9603 label in the journal note's securityLabel (a CodeableConcept).",
        text=r"urn:oid:2\.16\.578\.1\.12\.4\.1\.1\.9603#NORN_EPO",
    ),
    Kind(
        "Terminology_TX_NoValid_13",
        r"Questionnaire\.extension\[\d+\]\.extension\[0\]\.value\.ofType\(Coding\)$",
        "The $populate launch context for the previous response (population.py): SDC's launchContext name binding "
        "is extensible and SDC has no code for a previous response (its codes: patient, encounter, location, "
        "user, study, clinical), so the name is a code of our CodeSystem sikkerhetsplan, which is what an "
        "extensible binding allows.",
        text=r"sikkerhetsplan#previousResponse' was not found in the value set 'http://hl7\.org/fhir/uv/sdc/ValueSet/launchContext",
    ),
)

#: Errors a published version keeps: a released Questionnaire is never changed (SDC: changed questions mean a new
#: version), so the 1.0.0 forms and the responses to them keep what 1.0.0 published.
PUBLISHED: tuple[Kind, ...] = (
    Kind(
        "Display_Name_for__should_be_one_of__instead_of",
        r".*",
        "Content 1.0.0 coded answers in HL7 v2-0532 / data-absent-reason with Norwegian displays, which those "
        "English-only code systems reject; later versions use our CodeSystem svar (tests/test_answer_codes.py "
        "proves the generator no longer writes them).",
        text=r"for http://terminology\.hl7\.org/CodeSystem/(v2-0532|data-absent-reason)#",
        published_1_0_0_only=True,
    ),
    Kind(
        "Extension_EXT_Unknown_NotHere",
        r"Questionnaire\.extension\[\d+\]$",
        "Content 1.0.0 cited its source with cqf-relatedArtifact, which is not an R4 extension; later versions use "
        "artifact-relatedArtifact (extensions pack).",
        text=r"cqf-relatedArtifact",
        published_1_0_0_only=True,
    ),
    Kind(
        "Type_Specific_Checks_DT_URL_Resolve",
        r"Questionnaire\.extension\[\d+\]\.url$",
        "The same 1.0.0 cqf-relatedArtifact, reported as an unresolvable extension URL.",
        text=r"cqf-relatedArtifact",
        published_1_0_0_only=True,
    ),
)

#: Errors of the offline kind: references to what lives on the FHIR server, not in the file.
OFFLINE_ERRORS: tuple[Kind, ...] = (
    Kind(
        "Reference_REF_CantResolve",
        r".*",
        "A literal reference Type/id to the patient, encounter or practitioner the sender named exists on the "
        "server the Bundle goes to; offline there is nothing to resolve it against (the HAPI integration "
        "tests deliver these Bundles to a real server).",
        text=r"reference '(Patient|Encounter|Practitioner|PractitionerRole|Organization)/[A-Za-z0-9.-]+'$",
    ),
)


def _needs_runner() -> None:
    missing = [
        str(p.relative_to(ROOT)) for p in (prepare.JAR, prepare.package_dir(prepare.CORE)) if not p.exists()
    ]
    reason = None
    if shutil.which("java") is None:
        reason = "java is not installed (needs a JDK 17+)"
    elif missing:
        reason = f"HL7 validator runner not built ({', '.join(missing)}): run bash scripts/setup.sh"
    if reason is not None:
        unavailable("the HL7 validator test", reason)


def _issues(outcome: dict[str, Any]) -> list[Issue]:
    out = []
    for issue in outcome.get("issue", []):
        ext = {e["url"].rsplit("/", 1)[-1]: e for e in issue.get("extension", [])}
        message_id = ext.get("operationoutcome-message-id", {}).get("valueCode", "")
        line = ext.get("operationoutcome-issue-line", {}).get("valueInteger")
        location = (issue.get("expression") or issue.get("location") or [""])[0]
        out.append(
            Issue(issue["severity"], message_id, location, issue.get("details", {}).get("text", ""), line)
        )
    return out


def _planted(tmp: Path) -> dict[str, Path]:
    """Copies of example 01 with one defect each, which the validator must catch."""
    bundle = json.loads((EXAMPLES[0] / "bundle.json").read_text(encoding="utf-8"))
    careplan = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "CarePlan")
    careplan["activity"][0]["detail"]["code"]["coding"][0]["display"] = "Planted wrong display"
    wrong_display = tmp / "planted-wrong-display-bundle.json"
    wrong_display.write_text(json.dumps(bundle), encoding="utf-8")

    qr = json.loads((EXAMPLES[0] / "questionnaire-response.json").read_text(encoding="utf-8"))
    planted = copy.deepcopy(qr)
    planted["item"][0]["linkId"] = "planted-unknown-linkid"
    wrong_link = tmp / "planted-wrong-linkid-qr.json"
    wrong_link.write_text(json.dumps(planted), encoding="utf-8")
    return {"planted-display": wrong_display, "planted-linkid": wrong_link}


def _written_response(example: Path, tmp: Path) -> Path:
    """The QuestionnaireResponse entry of an example's Bundle, as a file."""
    bundle = json.loads((example / "bundle.json").read_text(encoding="utf-8"))
    qr = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "QuestionnaireResponse"
    )
    path = tmp / f"{example.name}-written-questionnaire-response.json"
    path.write_text(json.dumps(qr), encoding="utf-8")
    return path


def _tasks(planted: dict[str, Path], tmp: Path) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = [
        {"name": f"profiles/{p.name}", "file": str(p)} for p in sorted(PROFILES.glob("*.json"))
    ]
    for example in EXAMPLES:
        tasks.append({"name": f"{example.name}/bundle.json", "file": str(example / "bundle.json")})
        written = _written_response(example, tmp)
        tasks.append(
            {"name": f"{example.name}/bundle.json#QR", "file": str(written), "questionnaire": "required"}
        )
        if (example / "answers.json").is_file():
            tasks.append(
                {
                    "name": f"{example.name}/questionnaire-response.json",
                    "file": str(example / "questionnaire-response.json"),
                    "questionnaire": "required",
                }
            )
    tasks.append({"name": "planted-display", "file": str(planted["planted-display"])})
    tasks.append(
        {"name": "planted-linkid", "file": str(planted["planted-linkid"]), "questionnaire": "required"}
    )
    return tasks


@dataclass(frozen=True)
class Result:
    """What the validator said about one file, and whether the file belongs to the published content 1.0.0."""

    issues: list[Issue]
    published_1_0_0: bool


@pytest.fixture(scope="module")
def validated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Result]:
    """Every task's result, from one run of the validator."""
    _needs_runner()
    tmp = tmp_path_factory.mktemp("hl7-validator")
    tasks = _tasks(_planted(tmp), tmp)
    job = {
        "tho": prepare.THO[1],
        "extensions": prepare.EXTENSIONS[1],
        "igs": [f"{prepare.SDC[0]}#{prepare.SDC[1]}", str(PROFILES)],
        "tasks": tasks,
    }
    (tmp / "job.json").write_text(json.dumps(job), encoding="utf-8")
    run = subprocess.run(
        prepare.java_command("validate", str(tmp / "job.json"), str(tmp / "result.json")),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, f"the validator runner failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    result = json.loads((tmp / "result.json").read_text(encoding="utf-8"))
    files = {t["name"]: Path(t["file"]) for t in tasks}
    return {
        r["name"]: Result(_issues(r["outcome"]), _answers_1_0_0(files[r["name"]])) for r in result["results"]
    }


def _answers_1_0_0(path: Path) -> bool:
    """A Questionnaire of version 1.0.0, or a response (or Bundle holding one) to a Questionnaire ``|1.0.0``."""
    data = json.loads(path.read_text(encoding="utf-8"))
    resources = (
        [e.get("resource", {}) for e in data.get("entry", [])]
        if data.get("resourceType") == "Bundle"
        else [data]
    )
    return any(
        (r.get("resourceType") == "Questionnaire" and r.get("version") == "1.0.0")
        or str(r.get("questionnaire", "")).endswith("|1.0.0")
        for r in resources
    )


def _untolerated_errors(result: Result) -> list[str]:
    published = (k for k in PUBLISHED if result.published_1_0_0 or not k.published_1_0_0_only)
    kinds = (*TOLERATED, *OFFLINE_ERRORS, *published)
    return [
        str(i)
        for i in result.issues
        if i.severity in ("error", "fatal") and not any(k.matches(i) for k in kinds)
    ]


PROFILE_NAMES = [f"profiles/{p.name}" for p in sorted(PROFILES.glob("*.json"))]
BUNDLE_NAMES = [f"{e.name}/bundle.json" for e in EXAMPLES]
RESPONSE_NAMES = [f"{e.name}/bundle.json#QR" for e in EXAMPLES] + [
    f"{e.name}/questionnaire-response.json" for e in EXAMPLES if (e / "answers.json").is_file()
]


@pytest.mark.parametrize("name", PROFILE_NAMES)
def test_definition_has_no_errors_outside_the_tolerated_kinds(
    validated: dict[str, Result], name: str
) -> None:
    assert _untolerated_errors(validated[name]) == []


@pytest.mark.parametrize("name", BUNDLE_NAMES)
def test_example_resources_conform_to_our_profiles(validated: dict[str, Result], name: str) -> None:
    assert _untolerated_errors(validated[name]) == []


@pytest.mark.parametrize("name", RESPONSE_NAMES)
def test_example_response_conforms_to_its_questionnaire(validated: dict[str, Result], name: str) -> None:
    assert _untolerated_errors(validated[name]) == []


def test_warnings_are_only_of_the_documented_offline_kinds(validated: dict[str, Result]) -> None:
    unexpected = [
        f"{name}: {i}"
        for name, result in validated.items()
        if not name.startswith("planted-")
        for i in result.issues
        if i.severity == "warning" and not any(k.matches(i) for k in (*OFFLINE_WARNINGS, *TOLERATED))
    ]
    assert unexpected == []


def test_validator_catches_a_planted_wrong_display(validated: dict[str, Result]) -> None:
    errors = _untolerated_errors(validated["planted-display"])
    assert any("Planted wrong display" in e and "CarePlan" in e for e in errors), errors


def test_validator_catches_a_planted_unknown_link_id(validated: dict[str, Result]) -> None:
    errors = _untolerated_errors(validated["planted-linkid"])
    assert any("planted-unknown-linkid" in e for e in errors), errors
