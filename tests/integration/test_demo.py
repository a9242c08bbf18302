"""``safetyplan demo`` end to end against the session's HAPI server: delivered, read back, printed."""

from __future__ import annotations

import pytest

from fhir_safetyplan.cli import main


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
    assert "15838540063" not in out  # the (synthetic) identity number is not printed


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
