"""Clinicians' free text is data (issue 9 point 10): text with ``<`` before a letter is accepted with a warning and
reaches every narrative escaped and every note verbatim as plain text; active content (a script, an event
handler, a script URL) is refused before anything is built. Checked over every free-text field and every
narrative and note of the bundle."""

from __future__ import annotations

import base64
import copy
import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fhir_safetyplan import pipeline
from fhir_safetyplan.errors import InputError, has_errors

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
OUR_ELEMENTS = {"div", "h3", "p"}

#: Where free text goes in an answers document: (example, setter).
FIELDS: dict[str, tuple[str, Callable[[dict[str, Any], str], None]]] = {
    "existingMeasures": ("03-barn-og-psykisk", lambda a, s: a.update(existingMeasures=s)),
    "agreedActions": ("03-barn-og-psykisk", lambda a, s: a.update(agreedActions=[s, "Ring fastlegen"])),
    "safeContact.times": ("03-barn-og-psykisk", lambda a, s: a["safeContact"].update(times=s)),
    "dependants.plan": ("03-barn-og-psykisk", lambda a, s: a["dependants"].update(plan=s)),
    "dependants.dutyNote": ("03-barn-og-psykisk", lambda a, s: a["dependants"].update(dutyNote=s)),
    "mental.adaptation": ("03-barn-og-psykisk", lambda a, s: a["mental"].update(adaptation=s)),
    "refusalNote": ("04-avslag", lambda a, s: a.update(refusalNote=s)),
}

#: Text that looks like markup but is what clinicians write, or harmless once escaped.
TAG_LIKE = [
    "Avtale med <Kari> om nøkkel",
    "Holder avstand <ca. 5 km",
    "Se notat </p></div><h1>Overskrift</h1>",
    "Merknad <!-- intern --> & <![CDATA[x]]> &amp; &lt;b&gt;",
    'Skriv <b>fet</b> og <a href="https://example.org">lenke</a>',
]

#: Active content: never accepted, whatever the field.
ACTIVE = [
    "<script>alert(1)</script>",
    "Ring <img src=x onerror=alert(1)>",
    '<a href="javascript:alert(1)">klikk</a>',
    "<svg/onload=alert(1)>",
    "<iframe src=https://example.org></iframe>",
    '<p style="x" onmouseover="alert(1)">',
]


def _plan(field: str, text: str) -> dict[str, Any]:
    example, put = FIELDS[field]
    data: dict[str, Any] = json.loads((EXAMPLES / example / "answers.json").read_text(encoding="utf-8"))
    put(data["answers"], text)
    return data


def _narratives(bundle: dict[str, Any]) -> dict[str, ET.Element]:
    out = {}
    for entry in bundle["entry"]:
        resource = entry["resource"]
        div = resource.get("text", {}).get("div")
        if div:
            out[resource["resourceType"]] = ET.fromstring(div)  # well-formed XHTML, or this raises
    return out


def _notes(bundle: dict[str, Any]) -> list[str]:
    return [
        base64.b64decode(content["attachment"]["data"]).decode("utf-8")
        for entry in bundle["entry"]
        if entry["resource"]["resourceType"] == "DocumentReference"
        for content in entry["resource"]["content"]
    ]


@pytest.mark.parametrize("text", TAG_LIKE)
@pytest.mark.parametrize("field", sorted(FIELDS))
def test_tag_like_text_is_accepted_with_a_warning_and_is_text_in_every_narrative_and_the_note(
    field: str, text: str
) -> None:
    data = _plan(field, text)
    outcome = pipeline.validate(copy.deepcopy(data))
    assert not has_errors(outcome), outcome
    assert any(i["severity"] == "warning" and i["code"] == "security" for i in outcome["issue"]), outcome
    bundle = pipeline.build_bundle(data)
    narratives = _narratives(bundle)
    for rtype, root in narratives.items():
        tags = {el.tag.rsplit("}", 1)[-1] for el in root.iter()}
        assert tags <= OUR_ELEMENTS, f"{rtype}: the text made elements {tags - OUR_ELEMENTS}"
    shown = {rtype for rtype, root in narratives.items() if text in "".join(root.itertext())}
    assert "QuestionnaireResponse" in shown and "DocumentReference" in shown, shown
    (note,) = _notes(bundle)
    assert text in note  # the note is text/plain: kept exactly as written, never interpreted


@pytest.mark.parametrize("text", ACTIVE)
@pytest.mark.parametrize("field", sorted(FIELDS))
def test_active_content_is_refused_in_every_field_before_anything_is_built(field: str, text: str) -> None:
    data = _plan(field, text)
    outcome = pipeline.validate(copy.deepcopy(data))
    assert any(i["severity"] == "error" and i["code"] == "security" for i in outcome["issue"]), outcome
    with pytest.raises(InputError) as info:
        pipeline.build_bundle(data)
    assert text not in json.dumps(info.value.outcome, ensure_ascii=False)
