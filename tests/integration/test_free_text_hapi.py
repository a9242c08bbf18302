"""Against the real HAPI server: clinicians' text with ``<`` before a letter is delivered, and the server stores
it as text in every narrative (issue 9 point 10) — HAPI refuses ill-formed or unsafe XHTML, so a stored plan
proves the escaping."""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from .conftest import Fhir
from .test_delivery_hapi import fresh_plan, push, write

TEXT = "Avtale med <Kari> om nøkkel, avstand <ca. 5 km"


def test_tag_like_text_is_delivered_and_stored_as_text_in_every_narrative_and_the_note(
    hapi_base_url: str, fhir: Fhir, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = fresh_plan("02-flere-mangler")
    plan["answers"]["agreedActions"] = [TEXT]
    code, summary, err = push(
        capsys, str(write(tmp_path, plan)), "--server", hapi_base_url, "--create-patient",
        "--outbox", str(tmp_path / "outbox.sqlite"),
    )  # fmt: skip
    assert code == 0, err
    stored = {
        e["resourceType"]: fhir.get(f"{e['resourceType']}/{e['id']}").json() for e in summary["entries"]
    }
    for rtype in ("QuestionnaireResponse", "CarePlan", "DocumentReference"):
        root = ET.fromstring(stored[rtype]["text"]["div"])
        assert {el.tag.rsplit("}", 1)[-1] for el in root.iter()} <= {"div", "h3", "p"}, rtype
        assert TEXT in "".join(root.itertext()), rtype
    note = stored["DocumentReference"]["content"][0]["attachment"]
    assert note["contentType"].startswith("text/plain")
    assert TEXT in base64.b64decode(note["data"]).decode("utf-8")
