"""The R4 seam: the FHIR version, the R4 models and the R4 shape of CarePlan.activity live in fhir_safetyplan.fhir_r4
only, so output in another FHIR version later changes that one module.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest

from fhir_safetyplan import fhir_r4

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "fhir_safetyplan"
SEAM = PACKAGE / "fhir_r4.py"


def _r4_spellings(path: Path) -> list[str]:
    """Where a module spells out something R4-specific itself: the version, the R4B models, activity.detail."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if node.value == fhir_r4.FHIR_VERSION or node.value == fhir_r4.SERVER_VERSION_PREFIX:
                found.append(f"{node.lineno}: {node.value!r}")
            if node.value in ("detail", fhir_r4.CORE_PACKAGE):
                found.append(f"{node.lineno}: {node.value!r}")
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("fhir.resources.R4B"):
            found.append(f"{node.lineno}: from {node.module} import")
    return found


def test_nothing_outside_the_seam_spells_out_the_fhir_version_the_r4_models_or_activity_detail() -> None:
    spelled = {
        path.relative_to(ROOT).as_posix(): where
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != SEAM and (where := _r4_spellings(path))
    }
    assert spelled == {}


def test_the_seam_itself_is_seen_by_the_check() -> None:
    assert _r4_spellings(SEAM)


def _careplan(example: str) -> dict[str, Any]:
    bundle = json.loads((ROOT / "examples" / example / "extract.json").read_text(encoding="utf-8"))
    plan: dict[str, Any] = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "CarePlan"
    )
    return plan


def test_an_extracted_activity_reads_back_its_code_status_and_description() -> None:
    activity = _careplan("02-flere-mangler")["activity"][0]
    assert [c["code"] for c in fhir_r4.activity_codings(activity)] == ["romningsplan"]
    assert fhir_r4.activity_status(activity) == "not-started"
    assert fhir_r4.activity_description(activity).startswith("Lage en rømningsplan")


def test_a_completed_activity_keeps_what_it_was_and_only_changes_its_status() -> None:
    activity = _careplan("02-flere-mangler")["activity"][0]
    done = fhir_r4.completed_activity(activity)
    assert fhir_r4.activity_status(done) == "completed"
    assert fhir_r4.activity_codings(done) == fhir_r4.activity_codings(activity)
    assert fhir_r4.activity_description(done) == fhir_r4.activity_description(activity)
    assert fhir_r4.activity_status(activity) == "not-started"  # the original is not changed


@pytest.mark.parametrize(
    "activity",
    [
        None,
        "text",
        {},
        {"detail": "text"},
        {"detail": {"code": "x", "status": 3}},
        {"detail": {"code": {"coding": ["x"]}}},
    ],
)
def test_a_malformed_activity_from_a_server_reads_as_empty(activity: Any) -> None:
    assert fhir_r4.activity_codings(activity) == []
    assert fhir_r4.activity_status(activity) is None
    assert fhir_r4.activity_description(activity) == ""


def test_the_version_written_is_the_version_a_server_must_speak() -> None:
    assert fhir_r4.FHIR_VERSION.startswith(fhir_r4.SERVER_VERSION_PREFIX)
