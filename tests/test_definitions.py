"""Conformance resources, profiles/ in the repository, and the FHIR package."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class

from fhir_safetyplan import codes
from fhir_safetyplan.conformance import SECURITY_RULE, all_resources, dumps, filename, write_profiles
from fhir_safetyplan.package import build_package, package_files

ROOT = Path(__file__).resolve().parent.parent


def test_every_conformance_resource_parses_with_r4b_models() -> None:
    resources = all_resources()
    assert {r["resourceType"] for r in resources} == {
        "Questionnaire",
        "CodeSystem",
        "ValueSet",
        "StructureDefinition",
        "NamingSystem",
    }
    for r in resources:
        get_fhir_model_class(r["resourceType"]).model_validate(r)


def test_ids_and_urls_are_unique() -> None:
    resources = all_resources()
    assert len({filename(r) for r in resources}) == len(resources)
    # A NamingSystem has no url; the frozen 1.0.0 Questionnaires share their url with 1.1.0 (identity: url|version).
    canonicals = [
        f"{r['url']}|{r['version']}" if r.get("url") else r["uniqueId"][0]["value"] for r in resources
    ]
    assert len(set(canonicals)) == len(resources)


def test_profiles_directory_is_exactly_what_the_generator_makes(tmp_path: Path) -> None:
    write_profiles(tmp_path)
    generated = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    committed = {p.name: p.read_bytes() for p in (ROOT / "profiles").glob("*.json")}
    assert sorted(committed) == sorted(generated), "run: safetyplan profiles --out profiles"
    for name, data in generated.items():
        assert committed[name] == data, f"profiles/{name} is stale; run: safetyplan profiles --out profiles"


def test_codesystem_codes_are_unique_and_translated() -> None:
    for cs in (r for r in all_resources() if r["resourceType"] == "CodeSystem"):
        seen: list[str] = []

        def walk(concepts: list[dict[str, Any]], seen: list[str]) -> None:
            for c in concepts:
                seen.append(str(c["code"]))
                assert {d["language"] for d in c["designation"]} == {"nn", "en"}
                walk(c.get("concept", []), seen)

        walk(cs["concept"], seen)
        assert len(seen) == len(set(seen)) == cs["count"]


def test_every_answer_option_code_of_our_systems_exists_in_our_codesystems() -> None:
    resources = all_resources()
    known = {}
    for cs in (r for r in resources if r["resourceType"] == "CodeSystem"):
        codes_in: set[str] = set()

        def walk(concepts: list[dict[str, Any]], codes_in: set[str]) -> None:
            for c in concepts:
                codes_in.add(str(c["code"]))
                walk(c.get("concept", []), codes_in)

        walk(cs["concept"], codes_in)
        known[cs["url"]] = codes_in
    text = json.dumps([r for r in resources if r["resourceType"] == "Questionnaire"])
    used = 0
    for q in (r for r in resources if r["resourceType"] == "Questionnaire"):
        stack = list(q["item"])
        while stack:
            it = stack.pop()
            stack.extend(it.get("item", []))
            for coding in [o["valueCoding"] for o in it.get("answerOption", [])] + it.get("code", []):
                if coding["system"] in known:
                    used += 1
                    assert coding["code"] in known[coding["system"]]
    assert used > 50 and text


@pytest.mark.parametrize(
    "rtype", ["QuestionnaireResponse", "CarePlan", "Flag", "DocumentReference", "Provenance"]
)
def test_a_profile_requires_the_confidentiality_labels_for_each_written_type(rtype: str) -> None:
    sd = next(r for r in all_resources() if r["resourceType"] == "StructureDefinition" and r["type"] == rtype)
    root = sd["differential"]["element"][0]
    assert any(c["expression"] == SECURITY_RULE for c in root["constraint"])
    paths = {e["path"]: e for e in sd["differential"]["element"]}
    assert paths[f"{rtype}.meta.security"]["min"] == 2
    assert sd["fhirVersion"] == "4.0.1" and sd["derivation"] == "constraint"


def test_package_is_reproducible_and_complete() -> None:
    first, second = build_package(), build_package()
    assert first == second
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(first))) as tar:
        names = tar.getnames()
        manifest = json.load(tar.extractfile("package/package.json"))  # type: ignore[arg-type]
        index = json.load(tar.extractfile("package/.index.json"))  # type: ignore[arg-type]
    assert manifest["name"] == codes.PACKAGE_NAME and manifest["fhirVersions"] == ["4.0.1"]
    assert manifest["dependencies"] == {"hl7.fhir.r4.core": "4.0.1"}
    resources = all_resources()
    assert sorted(names) == sorted(
        ["package/package.json", "package/.index.json", *[f"package/{filename(r)}" for r in resources]]
    )
    assert {f["filename"] for f in index["files"]} == {filename(r) for r in resources}
    files = package_files()
    for r in resources:
        assert files[f"package/{filename(r)}"] == dumps(r).encode()


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fhir_safetyplan", *args], capture_output=True, text=True, check=False
    )


def test_cli_questionnaire_prints_each_language() -> None:
    for lang, expected in [
        (None, "sikkerhetsplan"),
        ("nn", "sikkerhetsplan-nn"),
        ("en", "sikkerhetsplan-en"),
    ]:
        r = run("questionnaire", *(["--lang", lang] if lang else []))
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["id"] == expected


def test_cli_questionnaire_honours_the_canonical_base() -> None:
    r = run("questionnaire", "--canonical-base", "https://fhir.example.org/x")
    assert json.loads(r.stdout)["url"] == "https://fhir.example.org/x/Questionnaire/sikkerhetsplan"
    bad = run("questionnaire", "--canonical-base", "not a url")
    assert bad.returncode == 7 and "canonical base" in bad.stderr and "Traceback" not in bad.stderr


def test_cli_profiles_and_package_write_files(tmp_path: Path) -> None:
    r = run("profiles", "--out", str(tmp_path / "p"))
    assert r.returncode == 0
    assert len(list((tmp_path / "p").glob("*.json"))) == len(all_resources())
    r = run("package", "--out", str(tmp_path / "k"))
    path = Path(r.stdout.strip())
    assert r.returncode == 0 and path.exists() and path.read_bytes() == build_package()


def test_cli_version_help_and_usage_errors() -> None:
    assert run("--version").stdout.startswith("safetyplan ")
    assert "questionnaire" in run("--help").stdout
    r = run("questionnaire", "--lang", "xx")
    assert r.returncode == 2 and "Traceback" not in r.stderr
