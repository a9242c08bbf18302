"""``safetyplan demo`` end to end against the session's HAPI server: delivered, read back, printed."""

from __future__ import annotations

import re

import pytest
import requests

from fhir_safetyplan.cli import main
from fhir_safetyplan.identifiers import FNR_SYSTEM, parse_identity_number


def test_demo_delivers_the_example_and_prints_it_as_read_back(
    hapi_base_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--server", hapi_base_url]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("Sikkerhetsplan – 2026-11-20")
    from fhir_safetyplan import content

    assert content.load().checklist[0].text.nb in out  # in place: the escape plan
    assert "Ny samtale om fire uker" in out  # agreed help
    assert "Kan kontaktes: telefonsamtale til pasientens eget nummer" in out
    assert "Pasienten er rådet til ikke å endre atferd før det praktiske er på plass." in out  # the note
    assert "read back 5 resources" in err and "Traceback" not in err
    assert (
        re.search(r"\b\d{11}\b", out + err) is None
    )  # no identity number is printed (not even a synthetic one)


def test_each_demo_run_delivers_for_a_new_synthetic_patient(
    hapi_base_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """So that other plans on a shared server for the example's own patient (a later conversation's would make
    the demo's plan the older one, held for a person) never get in the demo's way."""
    patients = []
    for _ in range(2):
        assert main(["demo", "--server", hapi_base_url]) == 0
        err = capsys.readouterr().err
        found = re.search(r"reading the plan of (Patient/[^ ]+) back", err)
        assert found, err
        patients.append(found.group(1))
    assert patients[0] != patients[1]
    for reference in patients:
        answer = requests.get(f"{hapi_base_url}/{reference}", timeout=30)
        assert answer.status_code == 200
        (ident,) = answer.json()["identifier"]
        assert ident["system"] == FNR_SYSTEM and ident["value"] != "15838540063"  # not example 01's own
        assert parse_identity_number(ident["value"]).synthetic


def test_demo_of_the_english_example_prints_english(
    hapi_base_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--server", hapi_base_url, "--example", "07"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Safety plan – ")
    assert "In place:" in out and "Agreed help:" in out and "Safe contact:" in out


def test_demo_with_an_unknown_example_is_a_configuration_error(
    hapi_base_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--server", hapi_base_url, "--example", "99-none"]) == 7
    assert "known examples: 01-alt-pa-plass" in capsys.readouterr().err
