"""JSON is parsed once, strictly, for every path: duplicate keys, lone surrogates, integers longer than Python can
convert and non-JSON numbers are refused with an OperationOutcome (exit 1 / HTTP 4xx) — by ``validate``,
``respond``, ``extract``, ``bundle``, ``push`` and the service's ``$validate``, ``$extract`` and POST (issue 9
points 6 and 7)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fhir_safetyplan import exitcodes, pipeline
from fhir_safetyplan.cli import main
from fhir_safetyplan.errors import InputError, has_errors
from fhir_safetyplan.jsoninput import parse_json
from fhir_safetyplan.service import ServiceSettings, Tokens, create_app

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx`:DeprecationWarning")

CORPUS = Path(__file__).parent / "bad_inputs"
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "01-alt-pa-plass" / "answers.json"
TOKEN = "test-token-0123456789abcdef"
#: (corpus file, a substring the message must contain): the new kinds of bad input of points 6 and 7.
HOSTILE = [
    ("json-integer-5000-digits.json", "5000 digits"),
    ("qr-integer-5000-digits.json", "5000 digits"),
    ("json-nan-number.json", "NaN"),
    ("qr-lone-surrogate-in-identifier.json", "QuestionnaireResponse.identifier.value"),
    ("answers-lone-surrogate-in-submission-id.json", "submissionId"),
    ("answers-duplicate-patient-key.json", '"patient" appears more than once'),
    ("qr-duplicate-subject-key.json", '"subject" appears more than once'),
]


def _said(outcome: dict[str, Any]) -> str:
    return " ".join(f"{i.get('diagnostics')} {i.get('expression')}" for i in outcome["issue"])


def _refusal(text: str | bytes) -> dict[str, Any]:
    with pytest.raises(InputError) as info:
        parse_json(text)
    assert has_errors(info.value.outcome)
    return info.value.outcome


def test_a_duplicated_key_is_refused_naming_the_key_and_where_it_is() -> None:
    outcome = _refusal('{"answers": {"mental": {"present": "no", "present": "yes"}}}')
    (problem,) = outcome["issue"]
    assert problem["code"] == "structure"
    assert problem["expression"] == ["answers.mental.present"]
    assert '"present" appears more than once' in problem["diagnostics"]


def test_a_duplicated_key_that_could_be_an_identity_number_is_not_quoted() -> None:
    outcome = _refusal('{"15838540063": 1, "15838540063": 2}')
    assert "15838540063" not in json.dumps(outcome)


def test_a_lone_surrogate_is_refused_in_keys_and_values_and_a_pair_is_accepted() -> None:
    assert _refusal('{"a": ["x", {"b": "\\ud800"}]}')["issue"][0]["expression"] == ["a[1].b"]
    assert "the key" in _refusal('{"\\udc00": 1}')["issue"][0]["diagnostics"]
    assert parse_json('{"a": "\\ud83d\\ude00"}') == {"a": "\U0001f600"}


def test_a_huge_integer_is_refused_with_its_line_and_a_normal_one_is_kept() -> None:
    outcome = _refusal('{\n  "n": ' + "9" * 5000 + "\n}")
    assert "at line 2 column 8" in outcome["issue"][0]["diagnostics"]
    assert parse_json('{"n": -2147483648}') == {"n": -2147483648}


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_numbers_json_does_not_have_are_refused(literal: str) -> None:
    _refusal('{"n": ' + literal + "}")


def test_the_library_refuses_a_lone_surrogate_before_deriving_anything_from_the_input() -> None:
    data = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    data["submissionId"] = "engine-17\ud800"
    assert has_errors(pipeline.validate(data))
    with pytest.raises(InputError) as info:
        pipeline.build_bundle(data)
    assert info.value.outcome["issue"][0]["expression"] == ["submissionId"]


@pytest.mark.parametrize(
    "command",
    [["validate"], ["respond"], ["extract"], ["bundle"], ["push", "--server", "http://127.0.0.1:9"]],
)
@pytest.mark.parametrize(("name", "said"), HOSTILE)
def test_every_command_refuses_it_with_exit_1_and_an_operation_outcome(
    command: list[str], name: str, said: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = ["--outbox", str(tmp_path / "outbox.sqlite")] if command[0] == "push" else []
    code = main([*command, str(CORPUS / name), *extra])
    out, err = capsys.readouterr()
    assert code == exitcodes.INVALID, err
    assert "Traceback" not in err
    outcome = json.loads(out)
    assert outcome["resourceType"] == "OperationOutcome"
    assert said in _said(outcome)


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    settings = ServiceSettings(
        upstream="http://127.0.0.1:9/fhir", tokens=Tokens([TOKEN]), flush_interval=0, upstream_retries=0
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


@pytest.mark.parametrize(
    "path", ["/QuestionnaireResponse/$validate", "/QuestionnaireResponse/$extract", "/QuestionnaireResponse"]
)
@pytest.mark.parametrize(("name", "said"), HOSTILE)
def test_the_service_refuses_it_with_400_and_an_operation_outcome(
    client: TestClient, path: str, name: str, said: str
) -> None:
    response = client.post(
        path,
        content=(CORPUS / name).read_bytes(),
        headers={"Content-Type": "application/fhir+json", "Authorization": f"Bearer {TOKEN}"},
    )
    assert response.status_code == 400, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert said in _said(outcome)


def test_thousands_of_duplicated_keys_or_surrogates_give_a_bounded_list_of_issues() -> None:
    from fhir_safetyplan.jsoninput import MAX_ISSUES

    keys = "{" + ",".join(f'"k{i}": 1, "k{i}": 2' for i in range(20_000)) + "}"
    assert len(_refusal(keys)["issue"]) == MAX_ISSUES
    objects = "[" + ",".join('{"a": 1, "a": 2}' for _ in range(20_000)) + "]"
    assert len(_refusal(objects)["issue"]) == MAX_ISSUES
    surrogates = "[" + ",".join('"\\ud800"' for _ in range(20_000)) + "]"
    assert len(_refusal(surrogates)["issue"]) == MAX_ISSUES
