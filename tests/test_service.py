"""The HTTP service: definitions, $validate, $extract, delivery, auth, limits, negotiation, errors, access log.

The app runs in-process (FastAPI's TestClient); the upstream FHIR server is scripted with ``responses``.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from _searches import empty_searches, refusing
from fastapi.testclient import TestClient

from fhir_safetyplan.delivery.store import outbox_spec
from fhir_safetyplan.errors import ConfigError
from fhir_safetyplan.service import ServiceSettings, Tokens, create_app, settings_from_env
from fhir_safetyplan.service.settings import read_tokens

# Starlette asks for httpx2 in its TestClient; httpx is what the project's test extras install.
pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx`:DeprecationWarning")

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
UPSTREAM = "http://upstream.test/fhir"
SANDBOX = "https://hapi.fhir.org/baseR4"
TOKEN = "test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FHIR = "application/fhir+json"
FNR_SYSTEM = "urn:oid:2.16.578.1.12.4.1.4.1"


def answers(name: str = "01-alt-pa-plass", submission: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / name / "answers.json").read_text(encoding="utf-8"))
    if submission:
        data["submissionId"] = submission
    return data


def body(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False).encode("utf-8")


def post(client: TestClient, path: str, data: Any, headers: dict[str, str] | None = None) -> Any:
    return client.post(path, content=body(data), headers={"Content-Type": FHIR, **AUTH, **(headers or {})})


def is_outcome(response: Any) -> bool:
    data = response.json()
    return data.get("resourceType") == "OperationOutcome" and bool(data.get("issue"))


def diagnostics(response: Any) -> str:
    return " ".join(str(i.get("diagnostics", "")) for i in response.json()["issue"])


def make_client(**kw: Any) -> Iterator[TestClient]:
    settings = ServiceSettings(tokens=Tokens([TOKEN]), flush_interval=0, upstream_retries=0, **kw)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def app_client() -> Iterator[TestClient]:
    """The service without an upstream: definitions, $validate and $extract."""
    yield from make_client()


@pytest.fixture
def upstream() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


@pytest.fixture
def outbox_path(outbox_at: str) -> str:
    """The service's outbox: an SQLite file, then a PostgreSQL database (each delivering test runs on both)."""
    return outbox_at


@pytest.fixture
def delivering(upstream: responses.RequestsMock, outbox_path: str) -> Iterator[TestClient]:
    """The service delivering to the scripted upstream through an outbox."""
    yield from make_client(upstream=UPSTREAM, outbox=outbox_path)


def transaction_response(request: Any) -> tuple[int, dict[str, str], str]:
    """What HAPI answers for a transaction of PUTs (and a conditional create): a status and location each."""
    bundle = json.loads(request.body)
    searches = empty_searches(bundle)
    if searches is not None:  # the current-plan lookup: this upstream holds no plans
        return 200, {"Content-Type": FHIR}, json.dumps(searches)
    entries = []
    for entry in bundle["entry"]:
        req = entry["request"]
        if req["method"] == "PUT":
            location = f"{UPSTREAM}/{req['url']}/_history/1"
        else:
            location = f"{UPSTREAM}/{req['url']}/p1/_history/1"
        entries.append({"response": {"status": "201 Created", "location": location, "etag": 'W/"1"'}})
    answer = {"resourceType": "Bundle", "type": "transaction-response", "entry": entries}
    return 200, {"Content-Type": FHIR}, json.dumps(answer)


def accept_transactions(rsps: responses.RequestsMock) -> None:
    rsps.add_callback(responses.POST, UPSTREAM, callback=transaction_response)


def upstream_is_up(rsps: responses.RequestsMock) -> None:
    """The upstream answers the health probe's GET /metadata with its capability statement."""
    rsps.add(
        responses.GET,
        f"{UPSTREAM}/metadata",
        json={"resourceType": "CapabilityStatement", "fhirVersion": "4.0.1"},
        content_type=FHIR,
    )


def posted_transactions(rsps: responses.RequestsMock) -> list[dict[str, Any]]:
    """The transactions the upstream answered (not the batch of searches for the current plan)."""
    return [
        body
        for c in rsps.calls
        if c.request.method == "POST"
        and c.request.url.rstrip("/") == UPSTREAM
        and isinstance(c.response, requests.Response)
        and (body := json.loads(c.request.body))["type"] == "transaction"
    ]


# ---- definitions and metadata ---------------------------------------------------------------------


def test_metadata_is_a_valid_r4_capability_statement_readable_without_a_token(app_client: TestClient) -> None:
    from fhir.resources.R4B.capabilitystatement import CapabilityStatement

    r = app_client.get("/metadata")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith(FHIR)
    cs = r.json()
    CapabilityStatement.model_validate(cs)
    assert cs["fhirVersion"] == "4.0.1"
    resources = {res["type"]: res for res in cs["rest"][0]["resource"]}
    assert {"read", "search-type"} <= {i["code"] for i in resources["Questionnaire"]["interaction"]}
    assert {o["name"] for o in resources["QuestionnaireResponse"]["operation"]} == {"validate", "extract"}
    # Without an upstream this service cannot create: it does not claim to.
    assert "interaction" not in resources["QuestionnaireResponse"]


def test_metadata_claims_create_when_an_upstream_is_configured(delivering: TestClient) -> None:
    cs = delivering.get("/metadata").json()
    qr = next(r for r in cs["rest"][0]["resource"] if r["type"] == "QuestionnaireResponse")
    assert qr["interaction"] == [{"code": "create"}]


@pytest.mark.parametrize(
    "qid", ["sikkerhetsplan", "sikkerhetsplan-nb", "sikkerhetsplan-nn", "sikkerhetsplan-en"]
)
def test_each_questionnaire_is_read_by_id_without_a_token(app_client: TestClient, qid: str) -> None:
    from fhir.resources.R4B.questionnaire import Questionnaire

    r = app_client.get(f"/Questionnaire/{qid}")
    assert r.status_code == 200
    q = r.json()
    Questionnaire.model_validate(q)
    assert q["id"] == qid
    assert q["url"] == f"https://safetyplan.example/fhir/Questionnaire/{qid}"


def test_an_unknown_questionnaire_id_is_404_naming_the_known_ids(app_client: TestClient) -> None:
    r = app_client.get("/Questionnaire/sikkerhetsplan-de")
    assert r.status_code == 404 and is_outcome(r)
    assert "sikkerhetsplan-nn" in diagnostics(r)


def test_questionnaire_search_without_parameters_is_a_searchset_of_every_form_of_every_version(
    app_client: TestClient,
) -> None:
    from fhir.resources.R4B.bundle import Bundle

    r = app_client.get("/Questionnaire")
    assert r.status_code == 200
    bundle = r.json()
    Bundle.model_validate(bundle)
    # four forms (nb with translations, nb, nn, en) in each published version (1.1.0 and the frozen 1.0.0)
    assert bundle["type"] == "searchset" and bundle["total"] == 8
    assert all(e["fullUrl"].endswith("/Questionnaire/" + e["resource"]["id"]) for e in bundle["entry"])


@pytest.mark.parametrize(
    ("params", "ids"),
    [
        (
            {"url": "https://safetyplan.example/fhir/Questionnaire/sikkerhetsplan-en"},
            ["sikkerhetsplan-en", "sikkerhetsplan-en-1.0.0"],
        ),
        ({"url": "https://safetyplan.example/fhir/Questionnaire/sikkerhetsplan|1.1.0"}, ["sikkerhetsplan"]),
        (
            {"url": "https://safetyplan.example/fhir/Questionnaire/sikkerhetsplan|1.0.0"},
            ["sikkerhetsplan-1.0.0"],
        ),
        ({"url": "https://safetyplan.example/fhir/Questionnaire/sikkerhetsplan|9.9.9"}, []),
        ({"version": "1.0.0", "language": "nn"}, ["sikkerhetsplan-nn-1.0.0"]),
        (
            {"language": "nb"},
            ["sikkerhetsplan", "sikkerhetsplan-nb", "sikkerhetsplan-1.0.0", "sikkerhetsplan-nb-1.0.0"],
        ),
        ({"_id": "sikkerhetsplan-en"}, ["sikkerhetsplan-en"]),
        ({"url": "https://elsewhere.example/Questionnaire/sikkerhetsplan"}, []),
    ],
)
def test_questionnaire_search_filters_by_url_version_language_and_id(
    app_client: TestClient, params: dict[str, str], ids: list[str]
) -> None:
    r = app_client.get("/Questionnaire", params=params)
    assert r.status_code == 200
    assert [e["resource"]["id"] for e in r.json().get("entry", [])] == ids


def test_a_url_version_that_contradicts_the_version_parameter_is_400(app_client: TestClient) -> None:
    r = app_client.get(
        "/Questionnaire",
        params={
            "url": "https://safetyplan.example/fhir/Questionnaire/sikkerhetsplan|1.0.0",
            "version": "2.0.0",
        },
    )
    assert r.status_code == 400 and is_outcome(r)


def test_definitions_use_the_configured_canonical_base() -> None:
    for client in make_client(canonical_base="https://fhir.example.no/fhir"):
        q = client.get("/Questionnaire/sikkerhetsplan").json()
        assert q["url"] == "https://fhir.example.no/fhir/Questionnaire/sikkerhetsplan"


# ---- content negotiation and request bodies --------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, FHIR),
        ("application/fhir+json", FHIR),
        ("application/json", "application/json"),
        ("*/*", FHIR),
        ("application/json;q=0.5, application/fhir+json", FHIR),
        ("application/fhir+json;q=0.1, application/json;q=0.9", "application/json"),
        ("text/html, */*;q=0.8", FHIR),
    ],
)
def test_the_answer_media_type_follows_the_accept_header(
    app_client: TestClient, accept: str | None, expected: str
) -> None:
    headers = {"Accept": accept} if accept else {}
    r = app_client.get("/metadata", headers=headers)
    assert r.status_code == 200
    assert r.headers["content-type"] == f"{expected}; charset=utf-8"


def test_format_parameter_overrides_accept(app_client: TestClient) -> None:
    r = app_client.get("/metadata", params={"_format": "application/json"}, headers={"Accept": FHIR})
    assert r.headers["content-type"].startswith("application/json")


@pytest.mark.parametrize(("accept", "fmt"), [("application/fhir+xml", None), (None, "xml")])
def test_a_caller_that_accepts_no_json_gets_406_as_an_outcome(
    app_client: TestClient, accept: str | None, fmt: str | None
) -> None:
    r = app_client.get(
        "/Questionnaire", headers={"Accept": accept} if accept else {}, params={"_format": fmt} if fmt else {}
    )
    assert r.status_code == 406 and is_outcome(r)


@pytest.mark.parametrize("content_type", ["application/json", "application/fhir+json; charset=utf-8"])
def test_both_json_media_types_are_accepted_in_requests(app_client: TestClient, content_type: str) -> None:
    r = app_client.post(
        "/QuestionnaireResponse/$validate",
        content=body(answers()),
        headers={"Content-Type": content_type, **AUTH},
    )
    assert r.status_code == 200


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/xml", "application/fhir+xml", "application/json; charset=latin-1"],
)
def test_other_request_media_types_are_415_with_an_outcome(
    app_client: TestClient, content_type: str | None
) -> None:
    headers = dict(AUTH)
    if content_type:
        headers["Content-Type"] = content_type
    r = app_client.post("/QuestionnaireResponse/$validate", content=body(answers()), headers=headers)
    assert r.status_code == 415 and is_outcome(r)
    assert "application/fhir+json" in diagnostics(r) or "UTF-8" in diagnostics(r)


def test_a_body_over_the_limit_is_413_before_it_is_read() -> None:
    for client in make_client(max_body_bytes=2000):
        r = post(client, "/QuestionnaireResponse/$extract", {"padding": "x" * 5000})
        assert r.status_code == 413 and is_outcome(r)
        assert r.json()["issue"][0]["code"] == "too-costly"


def test_a_chunked_body_over_the_limit_is_413_too() -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"padding": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}'

    for client in make_client(max_body_bytes=2000):
        r = client.post(
            "/QuestionnaireResponse/$extract", content=chunks(), headers={"Content-Type": FHIR, **AUTH}
        )
        assert r.status_code == 413 and is_outcome(r)


def test_the_default_body_limit_is_one_megabyte(app_client: TestClient) -> None:
    r = post(app_client, "/QuestionnaireResponse/$validate", {"padding": "x" * 1_000_001})
    assert r.status_code == 413


@pytest.mark.parametrize(
    ("raw", "where"),
    [(b'{"resourceType": "QuestionnaireResponse",', "line 1"), (b"\xff\xfe{}", "UTF-8"), (b"  ", "empty")],
)
def test_unreadable_bodies_are_400_saying_what_is_wrong(
    app_client: TestClient, raw: bytes, where: str
) -> None:
    r = app_client.post(
        "/QuestionnaireResponse/$extract", content=raw, headers={"Content-Type": FHIR, **AUTH}
    )
    assert r.status_code == 400 and is_outcome(r)
    assert where in diagnostics(r)


# ---- authentication -----------------------------------------------------------------------------------


OPERATIONS = ["/QuestionnaireResponse/$validate", "/QuestionnaireResponse/$extract", "/QuestionnaireResponse"]


@pytest.mark.parametrize("path", OPERATIONS)
def test_operations_without_a_token_are_401_with_a_challenge(delivering: TestClient, path: str) -> None:
    r = delivering.post(path, content=body(answers()), headers={"Content-Type": FHIR})
    assert r.status_code == 401 and is_outcome(r)
    assert r.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer wrong-token-0123456789"},
        {"X-API-Key": "wrong-token-0123456789"},
        {"Authorization": f"Bearer {TOKEN}", "X-API-Key": "wrong-token-0123456789"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Basic {TOKEN}"},
    ],
)
def test_a_wrong_token_is_401(app_client: TestClient, headers: dict[str, str]) -> None:
    r = app_client.post(
        "/QuestionnaireResponse/$validate", content=body(answers()), headers={"Content-Type": FHIR, **headers}
    )
    assert r.status_code == 401 and is_outcome(r)
    assert TOKEN not in r.text


@pytest.mark.parametrize("headers", [{"Authorization": f"Bearer {TOKEN}"}, {"X-API-Key": TOKEN}])
def test_a_configured_token_is_accepted_as_bearer_or_api_key(
    app_client: TestClient, headers: dict[str, str]
) -> None:
    r = app_client.post(
        "/QuestionnaireResponse/$validate", content=body(answers()), headers={"Content-Type": FHIR, **headers}
    )
    assert r.status_code == 200


def test_with_no_tokens_configured_operations_are_refused_and_the_message_names_the_setting() -> None:
    with TestClient(create_app(ServiceSettings(flush_interval=0))) as client:
        r = client.post(
            "/QuestionnaireResponse/$validate", content=body(answers()), headers={"Content-Type": FHIR}
        )
        assert r.status_code == 401
        assert "SAFETYPLAN_SERVICE_TOKENS" in diagnostics(r)
        assert client.get("/Questionnaire").status_code == 200


def test_anonymous_operations_only_when_the_operator_allows_them() -> None:
    with TestClient(create_app(ServiceSettings(allow_anonymous=True, flush_interval=0))) as client:
        r = client.post(
            "/QuestionnaireResponse/$validate", content=body(answers()), headers={"Content-Type": FHIR}
        )
        assert r.status_code == 200


def test_tokens_are_compared_by_digest_and_never_shown() -> None:
    tokens = Tokens(["a" * 20, "b" * 20])
    assert tokens.accepts("a" * 20) and tokens.accepts("b" * 20)
    assert not tokens.accepts("a" * 19) and not tokens.accepts("") and not tokens.accepts(None)
    assert not Tokens().accepts("a" * 20)
    assert "aaaa" not in repr(tokens) and "2" in repr(tokens)


def test_tokens_come_from_the_environment_and_a_file_with_comments(tmp_path: Path) -> None:
    file = tmp_path / "tokens"
    file.write_text("# engine A\nfile-token-0123456789abcdef\n\n", encoding="utf-8")
    env = {
        "SAFETYPLAN_SERVICE_TOKENS": "env-token-0123456789abcdef, second-token-0123456789",
        "SAFETYPLAN_SERVICE_TOKENS_FILE": str(file),
    }
    tokens = read_tokens(env)
    assert len(tokens) == 3
    assert tokens.accepts("file-token-0123456789abcdef") and tokens.accepts("second-token-0123456789")


def test_short_tokens_are_a_configuration_error_that_does_not_show_them() -> None:
    with pytest.raises(ConfigError) as err:
        read_tokens({"SAFETYPLAN_SERVICE_TOKENS": "hunter2"})
    assert "hunter2" not in str(err.value)


def test_settings_from_env_read_upstream_outbox_and_anonymous_flag(tmp_path: Path) -> None:
    env = {
        "SAFETYPLAN_UPSTREAM": UPSTREAM + "/",
        "SAFETYPLAN_OUTBOX": str(tmp_path / "o.sqlite"),
        "SAFETYPLAN_FLUSH_INTERVAL": "5",
        "SAFETYPLAN_SERVICE_ALLOW_ANONYMOUS": "1",
        "SAFETYPLAN_UPSTREAM_AUTH": "bearer",
        "SAFETYPLAN_BEARER_TOKEN": "upstream-secret",
    }
    s = settings_from_env(env)
    assert s.upstream == UPSTREAM and s.outbox == tmp_path / "o.sqlite" and s.flush_interval == 5.0
    assert s.allow_anonymous and s.upstream_auth is not None
    assert "upstream-secret" not in repr(s)
    assert settings_from_env(env, upstream="http://other.test/fhir").upstream == "http://other.test/fhir"


@pytest.mark.parametrize("url", ["ftp://x/fhir", "127.0.0.1:8080/fhir", "http://x/fhir?a=1"])
def test_an_upstream_that_is_not_a_fhir_base_url_is_a_configuration_error(url: str) -> None:
    with pytest.raises(ConfigError, match="--upstream"):
        settings_from_env({}, upstream=url)


def test_an_upstream_configuration_problem_is_502_and_the_plan_stays_held(
    upstream: responses.RequestsMock, outbox_path: str
) -> None:
    from fhir_safetyplan.client import AuthError
    from fhir_safetyplan.delivery.store import open_outbox

    upstream.add(responses.POST, UPSTREAM, body=AuthError("The token endpoint refused the client."))
    for client in make_client(upstream=UPSTREAM, outbox=outbox_path):
        r = post(client, "/QuestionnaireResponse", answers(submission="svc-config"))
        assert r.status_code == 502 and is_outcome(r)  # held for configuration, as a 401 from the upstream
        assert "held in the outbox" in diagnostics(r)
    with open_outbox(outbox_path) as box:
        assert [e.submission_id for e in box.pending()] == ["svc-config"]


def test_settings_from_env_name_a_missing_upstream_credential() -> None:
    with pytest.raises(ConfigError, match="SAFETYPLAN_BEARER_TOKEN"):
        settings_from_env({"SAFETYPLAN_UPSTREAM": UPSTREAM, "SAFETYPLAN_UPSTREAM_AUTH": "bearer"})


# ---- $validate and $extract ------------------------------------------------------------------------


def test_validate_of_a_valid_answers_document_is_an_information_outcome(app_client: TestClient) -> None:
    r = post(app_client, "/QuestionnaireResponse/$validate", answers())
    assert r.status_code == 200
    assert [i["severity"] for i in r.json()["issue"]] == ["information"]


def test_validate_of_an_invalid_response_is_200_with_error_issues(app_client: TestClient) -> None:
    qr = json.loads(
        (EXAMPLES / "01-alt-pa-plass" / "questionnaire-response.json").read_text(encoding="utf-8")
    )
    qr["item"].append({"linkId": "no-such-item", "answer": [{"valueString": "x"}]})
    r = post(app_client, "/QuestionnaireResponse/$validate", qr)
    assert r.status_code == 200
    assert any(i["severity"] == "error" for i in r.json()["issue"])


def test_validate_takes_a_parameters_body_with_resource(app_client: TestClient) -> None:
    qr = json.loads(
        (EXAMPLES / "01-alt-pa-plass" / "questionnaire-response.json").read_text(encoding="utf-8")
    )
    params = {"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": qr}]}
    r = post(app_client, "/QuestionnaireResponse/$validate", params)
    assert r.status_code == 200 and r.json()["issue"][0]["severity"] == "information"


@pytest.mark.parametrize("example", ["01-alt-pa-plass", "02-flere-mangler", "07-english"])
def test_extract_of_an_answers_document_equals_the_committed_example(
    app_client: TestClient, example: str
) -> None:
    r = post(app_client, "/QuestionnaireResponse/$extract", answers(example))
    assert r.status_code == 200
    expected = json.loads((EXAMPLES / example / "extract.json").read_text(encoding="utf-8"))
    assert r.json() == expected


def test_extract_of_a_renderer_response_in_parameters_equals_the_committed_example(
    app_client: TestClient,
) -> None:
    qr = json.loads((EXAMPLES / "08-skjema-fra-renderer" / "input.json").read_text(encoding="utf-8"))
    params = {"resourceType": "Parameters", "parameter": [{"name": "questionnaire-response", "resource": qr}]}
    r = post(app_client, "/QuestionnaireResponse/$extract", params)
    assert r.status_code == 200
    assert r.json() == json.loads(
        (EXAMPLES / "08-skjema-fra-renderer" / "extract.json").read_text(encoding="utf-8")
    )


def test_extract_of_an_invalid_response_is_422_listing_the_problems(app_client: TestClient) -> None:
    qr = json.loads(
        (EXAMPLES / "01-alt-pa-plass" / "questionnaire-response.json").read_text(encoding="utf-8")
    )
    qr["item"].append({"linkId": "no-such-item", "answer": [{"valueString": "x"}]})
    r = post(app_client, "/QuestionnaireResponse/$extract", qr)
    assert r.status_code == 422 and is_outcome(r)
    assert any("no-such-item" in json.dumps(i) for i in r.json()["issue"])


@pytest.mark.parametrize(
    "data",
    [
        [],
        "text",
        {"resourceType": "Patient"},
        {"resourceType": "Parameters", "parameter": [{"name": "other"}]},
        {"answers": {}},
    ],
)
def test_extract_of_something_that_is_not_a_plan_is_400(app_client: TestClient, data: Any) -> None:
    r = post(app_client, "/QuestionnaireResponse/$extract", data)
    assert r.status_code == 400 and is_outcome(r)


# ---- delivery -------------------------------------------------------------------------------------------


def test_a_delivered_plan_is_201_with_the_upstream_statuses_and_the_response_location(
    delivering: TestClient, upstream: responses.RequestsMock
) -> None:
    accept_transactions(upstream)
    r = post(delivering, "/QuestionnaireResponse", answers(submission="svc-delivered-1"))
    assert r.status_code == 201, r.text
    result = r.json()
    assert result["resourceType"] == "Bundle" and result["type"] == "transaction-response"
    sent = posted_transactions(upstream)
    assert len(sent) == 1
    assert len(result["entry"]) == len(sent[0]["entry"])
    assert all(e["response"]["status"].startswith("201") for e in result["entry"])
    assert r.headers["Location"].startswith(f"{UPSTREAM}/QuestionnaireResponse/")
    assert r.headers["X-Submission-Id"] == "svc-delivered-1"
    # What went upstream is the idempotent journal bundle, with its security labels.
    assert {e["request"]["method"] for e in sent[0]["entry"]} <= {"PUT", "POST"}
    assert all(
        any(s["code"] == "SDV" for s in e["resource"]["meta"]["security"])
        for e in sent[0]["entry"]
        if e["resource"]["resourceType"] != "Patient"
    )


def test_an_unreachable_upstream_queues_the_plan_202_and_a_flush_delivers_it_once(
    delivering: TestClient, upstream: responses.RequestsMock, outbox_path: str
) -> None:
    from fhir_safetyplan.delivery.store import open_outbox

    upstream.add(responses.POST, UPSTREAM, body=requests.ConnectionError("refused"))
    r = post(delivering, "/QuestionnaireResponse", answers(submission="svc-queued-1"))
    assert r.status_code == 202 and is_outcome(r)
    assert r.json()["issue"][0]["severity"] == "information"
    assert "svc-queued-1" in diagnostics(r)
    with open_outbox(outbox_path) as box:
        assert [e.submission_id for e in box.pending()] == ["svc-queued-1"]

    upstream.remove(responses.POST, UPSTREAM)
    accept_transactions(upstream)
    results = delivering.app.state.delivery.flush_once()
    assert [(x.submission_id, x.status) for x in results] == [("svc-queued-1", "delivered")]
    assert len(posted_transactions(upstream)) == 1
    assert delivering.app.state.delivery.flush_once() == []
    with open_outbox(outbox_path) as box:
        entry = box.get("svc-queued-1")
        assert entry is not None and entry.status == "delivered" and entry.bundle is None


def test_the_flusher_leaves_a_plan_alone_while_a_request_is_sending_it(
    delivering: TestClient, upstream: responses.RequestsMock
) -> None:
    upstream.add(responses.POST, UPSTREAM, body=requests.ConnectionError("refused"))
    assert post(delivering, "/QuestionnaireResponse", answers(submission="svc-busy-1")).status_code == 202
    upstream.remove(responses.POST, UPSTREAM)
    accept_transactions(upstream)
    delivery = delivering.app.state.delivery
    (entry,) = delivery.outbox.list()
    with delivery.sending(entry.plan_key):  # the plan key: the submission scoped by its patient
        assert delivery.flush_once() == []
    assert [x.status for x in delivery.flush_once()] == ["delivered"]


def test_a_flush_round_is_bounded_by_the_batch_size(
    upstream: responses.RequestsMock, outbox_path: str
) -> None:
    upstream.add(responses.POST, UPSTREAM, body=requests.ConnectionError("refused"))
    for client in make_client(upstream=UPSTREAM, outbox=outbox_path, flush_batch=2):
        for i in range(3):
            assert (
                post(client, "/QuestionnaireResponse", answers(submission=f"svc-batch-{i}")).status_code
                == 202
            )
        upstream.remove(responses.POST, UPSTREAM)
        accept_transactions(upstream)
        delivery = client.app.state.delivery  # type: ignore[attr-defined]
        assert [x.submission_id for x in delivery.flush_once()] == ["svc-batch-0", "svc-batch-1"]
        assert [x.submission_id for x in delivery.flush_once()] == ["svc-batch-2"]


def test_without_an_outbox_an_unreachable_upstream_is_503_and_nothing_is_kept(
    upstream: responses.RequestsMock,
) -> None:
    upstream.add(responses.POST, UPSTREAM, body=requests.ConnectionError("refused"))
    for client in make_client(upstream=UPSTREAM):
        r = post(client, "/QuestionnaireResponse", answers(submission="svc-503"))
        assert r.status_code == 503 and is_outcome(r)
        assert r.headers["Retry-After"]
        assert "outbox" in diagnostics(r)


def test_an_upstream_rejection_is_422_carrying_the_upstream_issues(
    delivering: TestClient, upstream: responses.RequestsMock
) -> None:
    hapi_outcome = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "processing", "diagnostics": "HAPI-0000: profile says no"}],
    }
    upstream.add_callback(responses.POST, UPSTREAM, callback=refusing(422, hapi_outcome))
    r = post(delivering, "/QuestionnaireResponse", answers(submission="svc-rejected"))
    assert r.status_code == 422 and is_outcome(r)
    assert "profile says no" in diagnostics(r)


def test_an_upstream_refusing_the_service_credentials_is_502_for_the_operator(
    delivering: TestClient, upstream: responses.RequestsMock
) -> None:
    upstream.add(responses.POST, UPSTREAM, json={"resourceType": "OperationOutcome"}, status=401)
    r = post(delivering, "/QuestionnaireResponse", answers(submission="svc-401"))
    assert r.status_code == 502 and is_outcome(r)
    assert "credentials" in diagnostics(r)


def test_an_invalid_plan_is_422_and_nothing_is_sent_or_stored(
    delivering: TestClient, upstream: responses.RequestsMock, outbox_path: str
) -> None:
    from fhir_safetyplan.delivery.store import open_outbox

    qr = json.loads(
        (EXAMPLES / "01-alt-pa-plass" / "questionnaire-response.json").read_text(encoding="utf-8")
    )
    qr["item"].append({"linkId": "no-such-item", "answer": [{"valueString": "x"}]})
    r = post(delivering, "/QuestionnaireResponse", qr)
    assert r.status_code == 422 and is_outcome(r)
    assert len(upstream.calls) == 0
    with open_outbox(outbox_path) as box:
        assert box.list() == []


def test_parameters_are_not_a_plan_to_deliver(delivering: TestClient) -> None:
    r = post(delivering, "/QuestionnaireResponse", {"resourceType": "Parameters", "parameter": []})
    assert r.status_code == 400 and is_outcome(r)


def test_without_an_upstream_delivery_is_501(app_client: TestClient) -> None:
    r = post(app_client, "/QuestionnaireResponse", answers())
    assert r.status_code == 501 and is_outcome(r)
    assert "--upstream" in diagnostics(r)


def _check_digit(digits: str, weights: tuple[int, ...]) -> int | None:
    k = (11 - sum(int(d) * w for d, w in zip(digits, weights, strict=True)) % 11) % 11
    return None if k == 10 else k


def real_looking_fnr() -> str:
    """Valid check digits and an ordinary birth date: the shape of a real number (built here, never sent)."""
    for individual in range(499, 399, -1):
        first9 = f"150385{individual}"
        k1 = _check_digit(first9, (3, 7, 6, 1, 8, 9, 4, 5, 2))
        k2 = None if k1 is None else _check_digit(f"{first9}{k1}", (5, 4, 3, 2, 7, 6, 5, 4, 3, 2))
        if k1 is not None and k2 is not None:
            return f"{first9}{k1}{k2}"
    raise AssertionError("no valid number in the series")


def test_a_real_looking_identity_number_bound_for_the_public_sandbox_is_403_and_not_sent(
    upstream: responses.RequestsMock, outbox_path: str
) -> None:
    from fhir_safetyplan.delivery.store import open_outbox

    number = real_looking_fnr()
    data = answers(submission="svc-guard")
    data["patient"] = {"fnr": number}
    for client in make_client(upstream=SANDBOX, outbox=outbox_path):
        r = post(client, "/QuestionnaireResponse", data)
        assert r.status_code == 403 and is_outcome(r)
        assert number not in r.text
        assert "hapi.fhir.org" in diagnostics(r)
    assert len(upstream.calls) == 0
    with open_outbox(outbox_path) as box:
        assert box.list() == []


# ---- health ---------------------------------------------------------------------------------------------


def test_healthz_reports_a_reachable_upstream_and_the_outbox_depth(
    delivering: TestClient, upstream: responses.RequestsMock
) -> None:
    upstream_is_up(upstream)
    r = delivering.get("/healthz")
    assert r.status_code == 200
    health = r.json()
    assert health["status"] == "ok"
    assert health["upstream"]["reachable"] is True
    assert health["outbox"] == {"configured": True, "pending": 0, "rejected": 0, "delivered": 0, "damaged": 0}


def test_healthz_stays_200_but_degraded_when_the_upstream_is_down_and_counts_queued_plans(
    delivering: TestClient, upstream: responses.RequestsMock
) -> None:
    upstream.add(responses.GET, f"{UPSTREAM}/metadata", body=requests.ConnectionError("refused"))
    upstream.add(responses.POST, UPSTREAM, body=requests.ConnectionError("refused"))
    assert post(delivering, "/QuestionnaireResponse", answers(submission="svc-health")).status_code == 202
    health = delivering.get("/healthz").json()
    assert health["status"] == "degraded"
    assert health["upstream"]["reachable"] is False and "ServerUnavailable" in health["upstream"]["problem"]
    assert health["outbox"]["pending"] == 1


# ---- errors and logs --------------------------------------------------------------------------------------


def test_unknown_paths_and_methods_are_outcomes(app_client: TestClient) -> None:
    r = app_client.get("/Patient/123")
    assert r.status_code == 404 and is_outcome(r)
    r = app_client.delete("/Questionnaire/sikkerhetsplan")
    assert r.status_code == 405 and is_outcome(r)


def test_a_bug_is_500_with_an_outcome_and_no_traceback_or_input(
    app_client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fhir_safetyplan.pipeline

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("Kari Testesen leaked")

    monkeypatch.setattr(fhir_safetyplan.pipeline, "extract", broken)
    r = post(app_client, "/QuestionnaireResponse/$extract", answers())
    assert r.status_code == 500 and is_outcome(r)
    assert "Kari" not in r.text and "Traceback" not in r.text
    assert "RuntimeError" in diagnostics(r)


def test_the_openapi_document_lists_every_endpoint_and_both_auth_schemes(app_client: TestClient) -> None:
    doc = app_client.get("/openapi.json").json()
    assert set(doc["paths"]) == {
        "/Questionnaire",
        "/Questionnaire/{id}",
        "/Questionnaire/$populate",
        "/Questionnaire/{id}/$populate",
        "/QuestionnaireResponse",
        "/QuestionnaireResponse/$validate",
        "/QuestionnaireResponse/$extract",
        "/metadata",
        "/healthz",
    }
    assert set(doc["components"]["securitySchemes"]) == {"bearer", "apiKey"}
    extract = doc["paths"]["/QuestionnaireResponse/$extract"]["post"]
    assert set(extract["requestBody"]["content"]) == {FHIR, "application/json"}


def _openapi_example(doc: dict[str, Any], path: str, name: str) -> Any:
    return doc["paths"][path]["post"]["requestBody"]["content"][FHIR]["examples"][name]["value"]


def test_the_openapi_answers_example_is_a_valid_plan_for_the_current_content(app_client: TestClient) -> None:
    from fhir_safetyplan.content import load

    doc = app_client.get("/openapi.json").json()
    example = _openapi_example(doc, "/QuestionnaireResponse/$validate", "answers")
    assert set(example["answers"]["checklist"]) == {item.key for item in load().checklist}
    outcome = post(app_client, "/QuestionnaireResponse/$validate", example).json()
    assert [i for i in outcome["issue"] if i["severity"] in ("error", "fatal")] == []
    extracted = post(app_client, "/QuestionnaireResponse/$extract", example)
    assert extracted.status_code == 200, extracted.text
    assert [e["resource"]["resourceType"] for e in extracted.json()["entry"]] == ["CarePlan"]


CANARY_NAME = "Kanarifugl Testesen"
CANARY_TEXT = "kanari-7f3a9c"


def test_the_logs_hold_method_route_status_and_duration_but_no_personal_data(
    delivering: TestClient, upstream: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    accept_transactions(upstream)
    upstream.add(responses.GET, f"{UPSTREAM}/metadata", body=requests.ConnectionError("refused"))
    number = real_looking_fnr()
    data = answers(submission=f"svc-canary-{CANARY_TEXT[-4:]}")
    data["patient"] = {"fnr": number}
    data["answers"]["existingMeasures"] = f"{CANARY_NAME} {CANARY_TEXT}"
    caplog.set_level(logging.DEBUG)
    assert post(delivering, "/QuestionnaireResponse", data).status_code == 201
    bad = copy.deepcopy(data)
    bad["answers"]["checklist"]["politi"] = CANARY_TEXT
    assert post(delivering, "/QuestionnaireResponse/$extract", bad).status_code == 400
    assert post(delivering, "/QuestionnaireResponse/$validate", data).status_code == 200
    delivering.get("/Questionnaire", params={"url": CANARY_TEXT, "language": number})
    delivering.get(f"/Questionnaire/{CANARY_TEXT}")
    delivering.get(f"/{CANARY_TEXT}/{number}")
    delivering.post(
        "/QuestionnaireResponse",
        content=body(data),
        headers={"Content-Type": FHIR, "X-API-Key": CANARY_TEXT * 3},
    )
    delivering.get("/healthz")

    # httpx logs the test client's own requests (URL included): that is the caller's side, not the service.
    text = "\n".join(f"{r.name} {r.getMessage()}" for r in caplog.records if not r.name.startswith("httpx"))
    for secret in (CANARY_NAME, "Kanarifugl", CANARY_TEXT, number, TOKEN):
        assert secret not in text
    access = [r.getMessage() for r in caplog.records if r.name == "fhir_safetyplan.service.access"]
    assert any(line.startswith("POST /QuestionnaireResponse 201 ") for line in access)
    assert any(line.startswith("GET /Questionnaire/{id} 404 ") for line in access)
    assert any(line.startswith("- - 404 ") for line in access)
    assert all(line.endswith("ms") for line in access)


def test_serve_is_a_command_with_the_documented_options() -> None:
    from fhir_safetyplan.cli import build_parser

    args = build_parser().parse_args(
        ["serve", "--port", "8123", "--upstream", UPSTREAM, "--outbox", "o.sqlite", "--flush-interval", "2"]
    )
    assert (args.host, args.port, args.upstream, args.outbox, args.flush_interval) == (
        "127.0.0.1",
        8123,
        UPSTREAM,
        "o.sqlite",
        2.0,
    )


def test_healthz_shows_only_scheme_and_host_and_caches_the_upstream_probe(
    delivering: TestClient, upstream: responses.RequestsMock
) -> None:
    upstream_is_up(upstream)
    first = delivering.get("/healthz").json()
    delivering.get("/healthz")
    delivering.get("/healthz")
    assert sum(c.request.url.endswith("/metadata") for c in upstream.calls) == 1
    assert first["upstream"]["host"] == "http://upstream.test"
    assert "/fhir" not in json.dumps(first)


def test_the_flusher_sends_only_its_own_upstreams_plans(
    delivering: TestClient, upstream: responses.RequestsMock, outbox_path: str
) -> None:
    from fhir_safetyplan.delivery.store import open_outbox

    other = "https://public.example/fhir"
    with open_outbox(outbox_path) as box:
        box.put("from-a-push", {"resourceType": "Bundle", "type": "transaction", "entry": []}, other)
    accept_transactions(upstream)
    assert delivering.app.state.delivery.flush_once() == []  # type: ignore[attr-defined]
    assert not any(c.request.url.startswith(other) for c in upstream.calls)
    with open_outbox(outbox_path) as box:
        assert [e.server_url for e in box.pending()] == [other]


def test_without_an_outbox_an_unreadable_upstream_answer_is_503_not_500(
    upstream: responses.RequestsMock,
) -> None:
    upstream.add(responses.POST, UPSTREAM, body="<html>proxy</html>", status=200, content_type="text/html")
    for client in make_client(upstream=UPSTREAM):
        r = post(client, "/QuestionnaireResponse", answers(submission="svc-html"))
        assert r.status_code == 503 and is_outcome(r)


def test_a_replica_that_died_after_storing_a_plan_leaves_it_to_another_once_its_lease_expires(
    upstream: responses.RequestsMock, postgres_db: str
) -> None:
    import time

    from fhir_safetyplan import pipeline
    from fhir_safetyplan.service.sender import Delivery

    accept_transactions(upstream)
    settings = ServiceSettings(upstream=UPSTREAM, outbox=outbox_spec(postgres_db), outbox_lease=2.0)
    died, survivor = Delivery(settings), Delivery(settings)
    assert died.outbox is not None and died.outbox.lease_seconds == 2.0
    # The first replica stored and claimed the plan, as a request does before it sends, and then died.
    died.outbox.put("svc-orphan-1", pipeline.build_bundle(answers()), UPSTREAM, lease_seconds=2.0)
    died.outbox.close()
    assert survivor.flush_once() == []  # still leased to the dead replica: left alone
    time.sleep(2.2)
    assert [r.status for r in survivor.flush_once()] == ["delivered"]
    assert len(posted_transactions(upstream)) == 1
