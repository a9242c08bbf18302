"""``safetyplan preview --server``: the page's explicit "deliver" goes through the normal delivery path
(outbox included) to the real HAPI server, and what arrives is the plan that was filled in by clicks."""

from __future__ import annotations

import re
from pathlib import Path

from _form_browser import NB_STEPS, drive, preview_url, require_browser, serving

from fhir_safetyplan import local_hapi
from fhir_safetyplan.delivery.outbox import Outbox

from .conftest import Fhir


def test_preview_delivers_the_filled_in_plan_through_the_outbox_only_when_asked(
    hapi_base_url: str, fhir: Fhir, tmp_path: Path
) -> None:
    require_browser()
    outbox = tmp_path / "outbox.sqlite"
    args = ["preview", "--port", str(local_hapi.free_port()), "--server", hapi_base_url, "--create-patient"]
    with serving([*args, "--outbox", str(outbox)], tmp_path / "stderr.log") as printed:
        url = preview_url(printed)
        checked_only = drive(url, NB_STEPS, tmp_path)
        assert checked_only["deliverShown"] is True and "delivery" not in checked_only
        assert not outbox.exists() or not Outbox(outbox).list()  # checking delivers nothing
        report = drive(url, NB_STEPS, tmp_path, deliver=True)
    assert report["consoleErrors"] == [] and report["blocked"] == []
    delivery = report["delivery"]
    assert delivery.startswith("Levert: "), delivery
    found = re.search(r"QuestionnaireResponse/[A-Za-z0-9\-.]+", delivery)
    assert found, delivery
    stored = fhir.get(found.group(0))
    assert stored.status_code == 200
    response = stored.json()
    assert "Ringe krisesenteret sammen neste uke" in stored.text
    assert {c["code"] for c in response["meta"]["security"]} >= {"R", "SDV"}
    with Outbox(outbox) as kept:
        assert [e.status for e in kept.list()] == ["delivered"]
