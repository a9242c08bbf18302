"""FhirClient: the wire contract, retries that never duplicate, errors that carry an OperationOutcome."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import pytest
import requests
import responses
from responses import matchers
from responses.registries import OrderedRegistry
from urllib3.exceptions import MaxRetryError, NewConnectionError

from fhir_safetyplan import exitcodes
from fhir_safetyplan.client import (
    FhirClient,
    FhirError,
    ServerConfigError,
    ServerIncompatible,
    ServerRejected,
    ServerUnavailable,
    WriteConflict,
    entry_results,
    is_idempotent_transaction,
)
from fhir_safetyplan.errors import ConfigError, InputError

BASE = "http://fhir.test/fhir"
NAME = "Kari Testesen"
FNR = "01818012345"  # a made-up string; only used to prove it never reaches a log


def put_bundle(n: int = 2) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": f"urn:uuid:00000000-0000-4000-8000-00000000000{i}",
                "resource": {"resourceType": "CarePlan", "id": f"sp-{i}", "description": NAME},
                "request": {"method": "PUT", "url": f"CarePlan/sp-{i}"},
            }
            for i in range(n)
        ],
    }


def post_bundle() -> dict[str, Any]:
    b = put_bundle(1)
    b["entry"][0]["request"] = {"method": "POST", "url": "CarePlan"}
    return b


def tx_response(bundle: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "transaction-response",
        "entry": [
            {
                "response": {
                    "status": "201 Created",
                    "location": f"{e['request']['url']}/_history/1",
                    "etag": 'W/"1"',
                }
            }
            for e in bundle["entry"]
        ],
    }


def hapi_outcome(
    code: str = "HAPI-0450", text: str = f"Failed to parse resource for {NAME}"
) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "processing", "diagnostics": f"{code}: {text}"}],
    }


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=True, registry=OrderedRegistry) as r:
        yield r


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The waits the retry policy asked for, recorded instead of slept."""
    recorded: list[float] = []
    monkeypatch.setattr("fhir_safetyplan.client._retry.time.sleep", recorded.append)
    return recorded


@pytest.fixture
def client() -> FhirClient:
    return FhirClient(BASE, retries=3)


def refused() -> requests.ConnectionError:
    return requests.ConnectionError(MaxRetryError(None, "/", NewConnectionError(None, "refused")))  # type: ignore[arg-type]


# ---- wire contract ----------------------------------------------------------------------------------


def test_transaction_posts_fhir_json_to_the_base_with_explicit_timeouts(rsps, client):
    bundle = put_bundle()
    rsps.post(
        BASE,
        json=tx_response(bundle),
        match=[
            matchers.header_matcher(
                {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
            ),
            matchers.json_params_matcher(bundle),
            matchers.request_kwargs_matcher({"timeout": (5.0, 60.0)}),
        ],
    )
    out = client.transaction(bundle)
    assert out["type"] == "transaction-response"
    assert rsps.calls[0].request.headers["User-Agent"].startswith("fhir-safetyplan/")


def test_body_is_utf8_without_bom(rsps, client):
    bundle = put_bundle(1)
    bundle["entry"][0]["resource"]["description"] = "Trygg kontakt: søster på Ås"
    rsps.post(BASE, json=tx_response(bundle))
    client.transaction(bundle)
    body = rsps.calls[0].request.body
    assert not body.startswith(b"\xef\xbb\xbf")
    assert "søster på Ås".encode() in body


def test_transaction_answer_that_is_not_a_transaction_response_is_a_fhir_error(rsps, client):
    rsps.post(BASE, json={"resourceType": "OperationOutcome"})
    with pytest.raises(FhirError, match="transaction-response"):
        client.transaction(put_bundle())


def test_only_transaction_or_batch_bundles_are_posted(client):
    with pytest.raises(InputError):
        client.transaction({"resourceType": "Bundle", "type": "collection"})


def test_create_with_condition_sends_if_none_exist_and_update_puts_to_the_id(rsps, client):
    patient = {"resourceType": "Patient", "identifier": [{"system": "urn:test", "value": "p1"}]}
    rsps.post(
        f"{BASE}/Patient",
        status=201,
        json={**patient, "id": "p1"},
        match=[matchers.header_matcher({"If-None-Exist": "identifier=urn:test|p1"})],
    )
    rsps.put(f"{BASE}/CarePlan/sp-1", status=201, headers={"Location": f"{BASE}/CarePlan/sp-1/_history/1"})
    assert client.create(patient, if_none_exist="identifier=urn:test|p1")["id"] == "p1"
    written = client.update({"resourceType": "CarePlan", "id": "sp-1"})
    assert written == {"resourceType": "CarePlan", "id": "sp-1", "meta": {"versionId": "1"}}


def test_read_refuses_ids_that_would_change_the_path(client):
    with pytest.raises(InputError):
        client.read("CarePlan", "../Patient/1")
    with pytest.raises(InputError):
        client.read("careplan?x=", "1")


@pytest.mark.parametrize("url", ["fhir.test/fhir", "ftp://fhir.test", "http://fhir.test/fhir?x=1", "http://"])
def test_base_url_must_be_an_http_base(url):
    with pytest.raises(ConfigError):
        FhirClient(url)


# ---- idempotency ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("requests_", "expected"),
    [
        ([{"method": "PUT", "url": "CarePlan/a"}], True),
        ([{"method": "PUT", "url": "CarePlan/a"}, {"method": "GET", "url": "Patient/b"}], True),
        ([{"method": "DELETE", "url": "Flag/a"}], True),
        ([{"method": "POST", "url": "Patient", "ifNoneExist": "identifier=urn:x|1"}], True),
        ([{"method": "PUT", "url": "CarePlan/a"}, {"method": "POST", "url": "Provenance"}], False),
        ([{"method": "PATCH", "url": "CarePlan/a"}], False),
        ([{"method": "POST", "url": "Patient", "ifNoneExist": ""}], False),
        ([None], False),
    ],
)
def test_a_transaction_is_idempotent_only_when_every_entry_is(requests_, expected):
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [{"request": r} for r in requests_]}
    assert is_idempotent_transaction(bundle) is expected


def test_a_bundle_that_is_not_a_transaction_is_not_idempotent():
    assert not is_idempotent_transaction({"resourceType": "Bundle", "type": "collection", "entry": []})


# ---- retries ----------------------------------------------------------------------------------------


def test_429_with_retry_after_waits_as_told_then_succeeds(rsps, client, waits):
    bundle = put_bundle()
    rsps.post(BASE, status=429, headers={"Retry-After": "7"}, json=hapi_outcome())
    rsps.post(BASE, json=tx_response(bundle))
    assert client.transaction(bundle)["type"] == "transaction-response"
    assert waits == [7.0]
    assert len(rsps.calls) == 2


def test_retry_after_longer_than_we_wait_gives_up_at_once(rsps, client, waits):
    rsps.post(BASE, status=503, headers={"Retry-After": "3600"})
    with pytest.raises(ServerUnavailable) as info:
        client.transaction(put_bundle())
    assert waits == []
    assert info.value.status == 503
    assert info.value.exit_code == exitcodes.UNAVAILABLE


def test_503_is_retried_with_growing_backoff_for_an_idempotent_transaction(rsps, client, waits):
    bundle = put_bundle()
    for _ in range(3):
        rsps.post(BASE, status=503)
    rsps.post(BASE, json=tx_response(bundle))
    client.transaction(bundle)
    assert len(waits) == 3
    assert waits[0] < waits[1] < waits[2]
    assert 0.5 <= waits[0] <= 0.625


def test_503_is_not_retried_for_a_non_idempotent_transaction(rsps, client, waits):
    rsps.post(BASE, status=503, json=hapi_outcome("HAPI-2223", "Timer already cancelled"))
    with pytest.raises(ServerUnavailable) as info:
        client.transaction(post_bundle())
    assert len(rsps.calls) == 1
    assert waits == []
    assert info.value.outcome["issue"][0]["diagnostics"].startswith("HAPI-2223")


def test_retries_run_out_into_server_unavailable_carrying_the_servers_outcome(rsps, client, waits):
    for _ in range(4):
        rsps.post(BASE, status=502, json=hapi_outcome("HAPI-9999", "gateway"))
    with pytest.raises(ServerUnavailable) as info:
        client.transaction(put_bundle())
    assert len(rsps.calls) == 4  # 1 + 3 retries
    assert len(waits) == 3
    assert info.value.status == 502
    assert info.value.outcome["resourceType"] == "OperationOutcome"


def test_read_timeout_is_retried_for_an_idempotent_transaction(rsps, client, waits):
    bundle = put_bundle()
    rsps.post(BASE, body=requests.exceptions.ReadTimeout("read timed out"))
    rsps.post(BASE, json=tx_response(bundle))
    assert client.transaction(bundle)["type"] == "transaction-response"
    assert len(rsps.calls) == 2


def test_read_timeout_is_not_retried_for_a_non_idempotent_transaction(rsps, client, waits):
    rsps.post(BASE, body=requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(ServerUnavailable) as info:
        client.transaction(post_bundle())
    assert len(rsps.calls) == 1
    assert info.value.status is None
    assert "not retried" in str(info.value)


def test_connection_reset_is_retried_for_an_idempotent_transaction(rsps, client, waits):
    bundle = put_bundle()
    rsps.post(BASE, body=requests.ConnectionError("Connection reset by peer"))
    rsps.post(BASE, body=requests.ConnectionError("Connection reset by peer"))
    rsps.post(BASE, json=tx_response(bundle))
    client.transaction(bundle)
    assert len(rsps.calls) == 3


def test_connection_reset_is_not_retried_for_a_non_idempotent_transaction(rsps, client, waits):
    rsps.post(BASE, body=requests.ConnectionError("Connection reset by peer"))
    with pytest.raises(ServerUnavailable) as info:
        client.transaction(post_bundle())
    assert len(rsps.calls) == 1
    assert info.value.outcome["issue"][0]["code"] == "transient"


def test_refused_connection_is_retried_even_for_a_non_idempotent_post_because_nothing_was_sent(
    rsps, client, waits
):
    bundle = post_bundle()
    rsps.post(BASE, body=refused())
    rsps.post(BASE, json=tx_response(bundle))
    client.transaction(bundle)
    assert len(rsps.calls) == 2


def test_4xx_is_never_retried(rsps, client, waits):
    rsps.put(f"{BASE}/CarePlan/sp-1", status=409, json=hapi_outcome("HAPI-0989", "not the current version"))
    with pytest.raises(ServerRejected):
        client.update({"resourceType": "CarePlan", "id": "sp-1"})
    assert waits == []


def test_retries_zero_means_one_try(rsps, waits):
    rsps.get(f"{BASE}/metadata", status=503)
    with pytest.raises(ServerUnavailable):
        FhirClient(BASE, retries=0).capabilities()
    assert len(rsps.calls) == 1


# ---- errors -----------------------------------------------------------------------------------------


def test_4xx_raises_server_rejected_with_the_servers_operation_outcome(rsps, client):
    rsps.post(BASE, status=422, json=hapi_outcome("HAPI-1821", f"Unknown code for {NAME}"))
    with pytest.raises(ServerRejected) as info:
        client.transaction(put_bundle())
    err = info.value
    assert err.status == 422
    assert err.exit_code == exitcodes.REJECTED
    assert err.outcome["issue"][0]["diagnostics"].startswith("HAPI-1821")
    # The message names the HAPI code and what to do, but never quotes the server's text about our data.
    assert "HAPI-1821" in str(err)
    assert NAME not in str(err) and NAME not in repr(err)


def test_4xx_without_an_outcome_gets_a_synthesised_one(rsps, client):
    rsps.get(f"{BASE}/CarePlan/nope", status=404, body="<html>not found</html>")
    with pytest.raises(ServerRejected) as info:
        client.read("CarePlan", "nope")
    assert info.value.outcome["resourceType"] == "OperationOutcome"
    assert info.value.outcome["issue"][0]["severity"] == "error"
    assert "check the server URL" in str(info.value)


def test_non_json_answer_is_a_fhir_error(rsps, client):
    rsps.get(f"{BASE}/CarePlan/x", body="<html/>", content_type="text/html")
    with pytest.raises(FhirError, match="not JSON"):
        client.read("CarePlan", "x")


# ---- validate, search, capabilities ----------------------------------------------------------------


def test_validate_returns_the_outcome_when_hapi_answers_412(rsps, client):
    oo = hapi_outcome("HAPI-0000", "CarePlan.status: minimum required = 1")
    rsps.post(f"{BASE}/CarePlan/$validate", status=412, json=oo)
    assert client.validate({"resourceType": "CarePlan"}) == oo


def test_validate_against_a_profile_sends_the_profile_as_a_query_parameter(rsps, client):
    # HAPI 8.8 does not resolve a profile given inside a Parameters body; ?profile= it does.
    ok = {"resourceType": "OperationOutcome", "issue": [{"severity": "information", "code": "informational"}]}
    resource = {"resourceType": "CarePlan", "id": "x"}
    profile = "https://safetyplan.example/fhir/StructureDefinition/x"
    rsps.post(
        f"{BASE}/CarePlan/$validate",
        json=ok,
        match=[
            matchers.query_param_matcher({"profile": profile}),
            matchers.json_params_matcher(resource),
        ],
    )
    assert client.validate(resource, profile) == ok


def _page(ids: list[str], next_url: str | None) -> dict[str, Any]:
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [
            {"resource": {"resourceType": "CarePlan", "id": i}, "search": {"mode": "match"}} for i in ids
        ],
    }
    if next_url:
        bundle["link"] = [{"relation": "next", "url": next_url}]
    return bundle


def test_search_follows_next_links_and_asks_for_no_cache(rsps, client):
    nocache = matchers.header_matcher({"Cache-Control": "no-cache"})
    rsps.get(
        f"{BASE}/CarePlan",
        json=_page(["a", "b"], f"{BASE}?_getpages=xyz&_getpagesoffset=2"),
        match=[nocache, matchers.query_param_matcher({"subject": "Patient/p1"})],
    )
    rsps.get(BASE, json=_page(["c"], None), match=[nocache])
    found = client.search("CarePlan", {"subject": "Patient/p1"})
    assert [r["id"] for r in found] == ["a", "b", "c"]


def test_search_does_not_follow_a_next_link_to_another_host(rsps, client):
    rsps.get(f"{BASE}/CarePlan", json=_page(["a"], "http://elsewhere.test/fhir?_getpages=1"))
    with pytest.raises(FhirError, match="another host"):
        client.search("CarePlan")


def test_search_stops_with_an_error_past_the_page_cap(rsps, client):
    rsps.get(f"{BASE}/CarePlan", json=_page(["a"], f"{BASE}?_getpages=1"))
    rsps.get(BASE, json=_page(["b"], f"{BASE}?_getpages=2"))
    with pytest.raises(FhirError, match="more than 2 pages"):
        client.search("CarePlan", max_pages=2)


def capability(
    fhir_version: str = "4.0.1", drop: str | None = None, updatecreate: bool = True
) -> dict[str, Any]:
    types = ["QuestionnaireResponse", "CarePlan", "Flag", "DocumentReference", "Provenance"]
    return {
        "resourceType": "CapabilityStatement",
        "fhirVersion": fhir_version,
        "rest": [
            {
                "mode": "server",
                "interaction": [{"code": "transaction"}],
                "resource": [
                    {
                        "type": t,
                        "updateCreate": updatecreate,
                        "interaction": [{"code": c} for c in ("read", "update", "search-type", "create")],
                    }
                    for t in types
                    if t != drop
                ],
            }
        ],
    }


def test_check_capabilities_accepts_an_r4_server_with_what_we_need(rsps, client):
    rsps.get(f"{BASE}/metadata", json=capability())
    assert client.check_capabilities(system_interactions=["transaction"])["fhirVersion"] == "4.0.1"


def test_check_capabilities_lists_everything_missing_in_one_error(rsps, client):
    rsps.get(f"{BASE}/metadata", json=capability("5.0.0", drop="Flag", updatecreate=False))
    with pytest.raises(ServerIncompatible) as info:
        client.check_capabilities(system_interactions=["transaction", "batch"])
    text = str(info.value)
    assert "FHIR 5.0.0" in text and "Flag" in text and "updateCreate" in text and "batch" in text
    assert info.value.exit_code == exitcodes.CONFIG
    expressions = [i["expression"][0] for i in info.value.outcome["issue"]]
    assert "CapabilityStatement.fhirVersion" in expressions


def test_metadata_that_is_not_a_capability_statement_is_explained(rsps, client):
    rsps.get(f"{BASE}/metadata", json={"resourceType": "Bundle"})
    with pytest.raises(FhirError, match="FHIR base URL"):
        client.capabilities()


# ---- what reaches the logs --------------------------------------------------------------------------


def test_logs_hold_method_path_status_but_no_bodies_and_no_query_values(rsps, client, waits, caplog):
    caplog.set_level(logging.DEBUG)
    bundle = put_bundle()
    rsps.get(f"{BASE}/Patient", json=_page([], None))
    rsps.post(BASE, status=503, json=hapi_outcome("HAPI-1", f"problem with {NAME}"))
    rsps.post(BASE, json=tx_response(bundle))
    client.search("Patient", {"identifier": f"urn:oid:2.16.578.1.12.4.1.4.1|{FNR}"})
    client.transaction(bundle)
    assert "GET /Patient?identifier=… -> 200" in caplog.text
    assert "POST / answered 503" in caplog.text
    assert FNR not in caplog.text
    assert NAME not in caplog.text


def test_entry_results_read_locations_relative_or_absolute():
    results = entry_results(
        {
            "entry": [
                {
                    "response": {
                        "status": "201 Created",
                        "location": "CarePlan/sp-1/_history/1",
                        "etag": 'W/"1"',
                    }
                },
                {"response": {"status": "200 OK", "location": f"{BASE}/Patient/p-9/_history/3"}},
                {"response": {"status": "200 OK"}},
            ]
        }
    )
    assert [(r.resource_type, r.id, r.version_id) for r in results] == [
        ("CarePlan", "sp-1", "1"),
        ("Patient", "p-9", "3"),
        (None, None, None),
    ]
    assert results[0].as_dict() == {
        "status": "201 Created",
        "location": "CarePlan/sp-1/_history/1",
        "resource_type": "CarePlan",
        "id": "sp-1",
        "version_id": "1",
        "etag": 'W/"1"',
    }


def test_client_repr_names_the_server_only():
    assert re.fullmatch(
        r"FhirClient\('http://fhir.test/fhir', auth=None, timeout=\(5.0, 60.0\)\)", repr(FhirClient(BASE))
    )


def test_json_dumps_of_outcome_is_possible_for_the_cli(rsps, client):
    rsps.get(f"{BASE}/CarePlan/x", status=410)
    with pytest.raises(ServerRejected) as info:
        client.read("CarePlan", "x")
    assert json.loads(json.dumps(info.value.outcome))["resourceType"] == "OperationOutcome"


def test_a_really_refused_connection_counts_as_never_sent(waits):
    # A real socket, not a mock: proves urllib3's exception shape is what _never_sent recognises.
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = FhirClient(f"http://127.0.0.1:{port}/fhir", retries=2)
    with pytest.raises(ServerUnavailable, match="refused") as info:
        client.transaction(post_bundle())
    assert len(waits) == 2  # retried although the bundle is not idempotent: nothing had been sent
    assert info.value.status is None


# ---- malformed answers are FhirErrors; configuration problems are not rejections -----------------------


@responses.activate
def test_a_deeply_nested_answer_is_a_fhir_error() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    responses.get(f"{BASE}/CarePlan/x", body='{"resourceType":"CarePlan","x":' + deep + "}")
    with pytest.raises(FhirError, match="nested"):
        FhirClient(BASE).read("CarePlan", "x")


@responses.activate
def test_a_capability_statement_of_the_wrong_shape_is_a_fhir_error() -> None:
    responses.get(
        f"{BASE}/metadata",
        json={"resourceType": "CapabilityStatement", "fhirVersion": "4.0.1", "rest": ["x"]},
    )
    with pytest.raises(FhirError, match="shape"):
        FhirClient(BASE).check_capabilities()


@responses.activate
def test_a_searchset_entry_that_is_not_an_object_is_a_fhir_error() -> None:
    responses.get(f"{BASE}/CarePlan", json={"resourceType": "Bundle", "type": "searchset", "entry": ["x"]})
    with pytest.raises(FhirError):
        FhirClient(BASE).search("CarePlan")


@responses.activate
def test_a_conflict_answered_to_a_resend_is_transient() -> None:
    responses.post(BASE, status=503)
    responses.post(BASE, status=409, json=hapi_outcome("HAPI-0550", "conflict"))
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "CarePlan", "id": "a"}, "request": {"method": "PUT", "url": "CarePlan/a"}}
    ]}  # fmt: skip
    with pytest.raises(WriteConflict) as info:
        FhirClient(
            BASE,
            retries=1,
        ).transaction(bundle)
    assert not isinstance(info.value, ServerRejected)  # not a verdict on the content
    assert info.value.exit_code == exitcodes.UNAVAILABLE


@responses.activate
def test_a_racing_identical_write_answered_409_hapi_0550_on_the_first_attempt_is_a_conflict_not_a_rejection() -> (
    None
):
    responses.post(BASE, status=409, json=hapi_outcome("HAPI-0550", "version constraint failure"))
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "CarePlan", "id": "a"}, "request": {"method": "PUT", "url": "CarePlan/a"}}
    ]}  # fmt: skip
    with pytest.raises(WriteConflict) as info:
        FhirClient(BASE, retries=0).transaction(bundle)
    assert info.value.status == 409 and "HAPI-0550" in str(info.value)


@responses.activate
@pytest.mark.parametrize("status", [301, 401, 403, 407])
def test_redirects_and_refused_credentials_are_configuration_errors(status: int) -> None:
    responses.get(f"{BASE}/CarePlan/x", status=status)
    with pytest.raises(ServerConfigError) as info:
        FhirClient(BASE).read("CarePlan", "x")
    assert info.value.exit_code == exitcodes.CONFIG


def test_a_base_url_with_user_and_password_is_refused() -> None:
    with pytest.raises(ConfigError, match="user name or password"):
        FhirClient("https://user:secret@fhir.test/fhir")
