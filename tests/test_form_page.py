"""The form page's server side: ``/form`` and its files, ``/form/config``, ``/form/check`` (what the answers
become, or their problems tied to questions), and the ``preview`` command's own checks.

The page in a real browser is tested in ``test_form_browser.py``.
"""

from __future__ import annotations

import base64
import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fhir_safetyplan import bundled, cli, form_preview
from fhir_safetyplan.document import DocumentContext
from fhir_safetyplan.identifiers import parse_identity_number
from fhir_safetyplan.service import ServiceSettings, Tokens, create_app

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx`:DeprecationWarning")

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "01-alt-pa-plass"
TOKEN = "form-page-test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/fhir+json"}


def example_response() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLE / "questionnaire-response.json").read_text(encoding="utf-8"))
    return data


def example_resource(resource_type: str) -> dict[str, Any]:
    bundle = json.loads((EXAMPLE / "bundle.json").read_text(encoding="utf-8"))
    return next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == resource_type)


def client(upstream: str | None = None, *, form_delivers: bool = False) -> TestClient:
    settings = ServiceSettings(
        upstream=upstream, tokens=Tokens([TOKEN]), flush_interval=0, form_delivers=form_delivers
    )
    return TestClient(create_app(settings))


# ---- what the answers become ---------------------------------------------------------------------


def test_a_valid_response_becomes_the_examples_note_activities_and_flag() -> None:
    status, shown = form_preview.result(example_response(), DocumentContext())
    assert status == 200 and shown["ok"] is True
    assert shown["note"] == (EXAMPLE / "journal-note.txt").read_text(encoding="utf-8")
    care_plan = example_resource("CarePlan")
    assert shown["activities"] == [a["detail"]["description"] for a in care_plan["activity"]]
    assert shown["flag"] == example_resource("Flag")["code"]["text"]
    assert shown["resources"] == [
        "QuestionnaireResponse",
        "CarePlan",
        "Flag",
        "DocumentReference",
        "Provenance",
    ]


def test_a_note_is_decoded_from_the_document_reference_as_utf8() -> None:
    reference = example_resource("DocumentReference")
    data = reference["content"][0]["attachment"]["data"]
    assert form_preview._note_text(reference) == base64.b64decode(data).decode("utf-8")
    assert form_preview._note_text(None) == ""


def test_a_missing_answer_is_a_problem_at_that_question_not_at_its_group() -> None:
    response = example_response()
    samtale = response["item"][0]
    samtale["item"] = [i for i in samtale["item"] if i["linkId"] != "samtale.involvering"]
    status, shown = form_preview.result(response, DocumentContext())
    assert status == 422 and shown["ok"] is False
    assert "samtale.involvering" in [p["linkId"] for p in shown["problems"]]
    assert shown["outcome"]["resourceType"] == "OperationOutcome"
    assert [p["text"] for p in shown["problems"]] == [i["diagnostics"] for i in shown["outcome"]["issue"]]
    assert all(p["severity"] in ("error", "fatal", "warning") and p["text"] for p in shown["problems"])


def test_input_that_is_no_plan_at_all_is_a_problem_about_no_question() -> None:
    status, shown = form_preview.result({"resourceType": "Patient"}, DocumentContext())
    assert status == 400 and shown["ok"] is False and shown["problems"]
    assert {p["linkId"] for p in shown["problems"]} == {None}


def test_linkid_at_follows_the_item_path_of_a_fhirpath() -> None:
    response = example_response()
    first, second = response["item"][0], response["item"][0]["item"][1]
    assert form_preview.linkid_at(response, "QuestionnaireResponse.item[0]") == first["linkId"]
    assert (
        form_preview.linkid_at(response, "QuestionnaireResponse.item[0].item[1].answer[0]")
        == second["linkId"]
    )
    # a path beyond the response's items stops at the deepest item that exists
    assert form_preview.linkid_at(response, "QuestionnaireResponse.item[0].item[99]") == first["linkId"]
    assert form_preview.linkid_at(response, "QuestionnaireResponse") is None
    assert form_preview.linkid_at(response, "Bundle.entry[0]") is None
    assert form_preview.linkid_at("not a response", "QuestionnaireResponse.item[0]") is None


def test_problems_prefer_the_quoted_linkid_of_the_form_then_the_fhirpath() -> None:
    response = example_response()
    outcome = {
        "issue": [
            {"severity": "error", "code": "required", "diagnostics": 'No answer for "samtale.atferd-rad" here',
             "expression": ["QuestionnaireResponse.item[0]"]},
            {"severity": "error", "code": "value", "diagnostics": 'A "quoted word" that is no linkId',
             "expression": ["QuestionnaireResponse.item[0].item[1]"]},
            {"severity": "warning", "code": "value", "diagnostics": "about the whole response",
             "expression": ["QuestionnaireResponse"]},
            {"severity": "information", "code": "informational", "diagnostics": "not a problem"},
        ]
    }  # fmt: skip
    assert [p["linkId"] for p in form_preview.problems(response, outcome)] == [
        "samtale.atferd-rad",
        response["item"][0]["item"][1]["linkId"],
        None,
    ]


# ---- the page's words ------------------------------------------------------------------------------


def test_the_page_has_the_same_words_in_every_language_and_every_word_the_script_uses() -> None:
    texts = form_preview.page_texts()
    assert set(texts) == {"nb", "nn", "en"}
    keys = set(texts["nb"])
    assert all(set(texts[lang]) == keys for lang in texts)
    assert all(isinstance(v, str) and v.strip() for lang in texts for v in texts[lang].values())
    script = (ROOT / "fhir_safetyplan" / "service" / "form_page" / "form.js").read_text(encoding="utf-8")
    used = set(re.findall(r"\bw\.([a-z_]+)", script))
    assert used and used <= keys


# ---- the routes --------------------------------------------------------------------------------------


def test_the_page_is_served_with_a_policy_that_allows_this_origin_only() -> None:
    with client() as c:
        page = c.get("/form")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy and "script-src 'self'" in policy
    for src in re.findall(r'(?:src|href)="([^"]+)"', page.text):
        assert src.startswith(("/form/", "data:")), src  # nothing from another origin


def test_the_pages_script_and_every_lhc_forms_file_it_names_are_served() -> None:
    assert bundled.lforms_root() is not None, "scripts/setup.sh installs LHC-Forms in tools/form-preview"
    with client() as c:
        page = c.get("/form").text
        for src in re.findall(r'(?:src|href)="(/form/[^"]+)"', page):
            answer = c.get(src)
            assert answer.status_code == 200 and answer.content, src


@pytest.mark.parametrize(
    "path",
    ["/form/static/form.html", "/form/static/..%2Fform.py", "/form/lforms/package.json", "/form/lforms/"],
)
def test_files_beyond_the_pages_own_are_not_served(path: str) -> None:
    with client() as c:
        answer = c.get(path)
    assert answer.status_code == 404
    assert answer.json()["resourceType"] == "OperationOutcome"


def test_config_offers_delivery_only_when_preview_turned_it_on_for_an_upstream() -> None:
    with client() as c:
        config = c.get("/form/config").json()
    assert config["deliver"] is False and config["renderer"] is True
    assert config["questionnaires"] == {
        "nb": "sikkerhetsplan-nb",
        "nn": "sikkerhetsplan-nn",
        "en": "sikkerhetsplan-en",
    }
    patient = config["patient"]["value"]
    assert parse_identity_number(patient).synthetic_style == "tenor"  # synthetic (Tenor: month + 80)
    examples = Path(__file__).resolve().parent.parent / "examples"
    assert not any(
        patient in p.read_text(encoding="utf-8") for p in examples.glob("*/*.json")
    )  # no example's
    with client("http://upstream.test/fhir") as c:  # serve with an upstream: the page only checks
        assert c.get("/form/config").json()["deliver"] is False
    with client("http://upstream.test/fhir", form_delivers=True) as c:
        assert c.get("/form/config").json()["deliver"] is True


def test_the_form_page_of_serve_never_delivers_its_synthetic_patients_plan_upstream() -> None:
    import responses

    with responses.RequestsMock() as upstream, client("http://upstream.test/fhir") as c:
        answer = c.post("/form/deliver", content=json.dumps(example_response()), headers=AUTH)
        assert len(upstream.calls) == 0
    assert answer.status_code == 403
    outcome = answer.json()
    assert outcome["resourceType"] == "OperationOutcome" and outcome["issue"][0]["code"] == "forbidden"
    assert "safetyplan preview --server" in outcome["issue"][0]["diagnostics"]


def test_preview_lets_the_form_deliver_only_when_given_a_server() -> None:
    from fhir_safetyplan.commands.preview import _settings

    parser = cli.build_parser()
    with_server = _settings(parser.parse_args(["preview", "--server", "http://127.0.0.1:1/fhir"]), TOKEN)
    without = _settings(parser.parse_args(["preview"]), TOKEN)
    assert with_server.form_delivers is True and without.form_delivers is False


def test_check_needs_the_services_token() -> None:
    with client() as c:
        answer = c.post("/form/check", content=json.dumps(example_response()))
    assert answer.status_code == 401
    assert "needs a token" in answer.json()["issue"][0]["diagnostics"]


def test_check_answers_what_a_valid_response_becomes() -> None:
    with client() as c:
        answer = c.post("/form/check", content=json.dumps(example_response()), headers=AUTH)
    assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
    shown = answer.json()
    assert shown["ok"] is True
    assert shown["note"] == (EXAMPLE / "journal-note.txt").read_text(encoding="utf-8")


def test_check_answers_422_with_problems_for_an_invalid_response_and_400_for_a_body_that_is_no_json() -> None:
    response = copy.deepcopy(example_response())
    response["item"][0]["item"][1]["answer"] = [{"valueString": "kanskje"}]
    with client() as c:
        invalid = c.post("/form/check", content=json.dumps(response), headers=AUTH)
        broken = c.post("/form/check", content=b"{not json", headers=AUTH)
    assert invalid.status_code == 422 and invalid.json()["ok"] is False
    assert invalid.json()["outcome"]["resourceType"] == "OperationOutcome"
    assert response["item"][0]["item"][1]["linkId"] in [p["linkId"] for p in invalid.json()["problems"]]
    assert broken.status_code == 400 and broken.json()["resourceType"] == "OperationOutcome"


# ---- the command -----------------------------------------------------------------------------------


@pytest.mark.parametrize("port", ["-1", "65536"])
def test_preview_with_an_impossible_port_is_a_usage_error(
    port: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["preview", "--port", port]) == 2
    assert "--port must be between" in capsys.readouterr().err


def test_preview_with_a_server_url_that_is_no_url_is_a_configuration_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["preview", "--port", "0", "--server", "not a url"]) == 7
    assert "Traceback" not in capsys.readouterr().err


def test_preview_on_a_port_already_in_use_is_a_configuration_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert cli.main(["preview", "--port", str(taken.getsockname()[1])]) == 7
    assert "already in use" in capsys.readouterr().err
