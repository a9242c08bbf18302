"""Fuzzing the service from its own OpenAPI document (schemathesis, in-process ASGI).

Whatever schemathesis sends — inputs that follow the schema and inputs that break it — the service never
answers 5xx and never crashes, and every 4xx body is an OperationOutcome. Bounded: a few dozen examples per
operation, no shrinking, so it runs in seconds.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import pytest
import schemathesis
from _searches import plan_searches, stored
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode

from fhir_safetyplan.client import FhirClient
from fhir_safetyplan.service import ServiceSettings, Tokens, create_app

TOKEN = "fuzz-token-0123456789abcdef"
MAX_EXAMPLES = 30
#: statuses answered per operation, so the last test can show the fuzzing reached past the front door
SEEN: dict[str, set[int]] = {}


def _earlier_plan() -> list[dict[str, Any]]:
    """An earlier plan as the upstream stores it (an example, a year before the examples' conversations)."""
    from fhir_safetyplan import pipeline

    example = Path(__file__).resolve().parent.parent / "examples" / "01-alt-pa-plass" / "answers.json"
    document = json.loads(example.read_text(encoding="utf-8"))
    document |= {"submissionId": "fuzz-earlier", "authored": "2025-11-20T10:00:00+01:00"}
    return stored(pipeline.build_bundle(document))


def _searched_subject(url: str) -> dict[str, Any]:
    query = parse_qs(urlsplit(url).query)
    if "subject" in query:
        return {"reference": query["subject"][0]}
    system, _, value = query["subject:Patient.identifier"][0].partition("|")
    return {"reference": "Patient/fuzz-1", "identifier": {"system": system, "value": value}}


class StubUpstream:
    """Stands in for the upstream FHIR server: accepts every transaction, like HAPI with all PUTs, and has an
    earlier plan for every patient it is asked about, so a delivering POST is a revision (or held, 409, when
    the generated conversation is older)."""

    base_url = "http://upstream.invalid/fhir"

    def __init__(self) -> None:
        self.transactions = 0
        self.revisions = 0
        self.earlier = _earlier_plan()

    def transaction(self, bundle: dict[str, Any], **_options: Any) -> dict[str, Any]:
        if bundle.get("type") == "batch":  # the current-plan lookup: the earlier plan, for this patient
            subject = _searched_subject(bundle["entry"][0]["request"]["url"])
            plan = [{**r, "subject": subject} if "subject" in r else r for r in self.earlier]
            answer = plan_searches(bundle, plan)
            assert answer is not None
            return answer
        self.transactions += 1
        self.revisions += any("ifMatch" in e["request"] for e in bundle.get("entry", []))
        entries = [
            {"response": {"status": "201 Created", "location": f"{e['request']['url']}/_history/1"}}
            for e in bundle.get("entry", [])
        ]
        return {"resourceType": "Bundle", "type": "transaction-response", "entry": entries}

    def search(self, resource_type: str, params: Any = None, **kw: Any) -> list[dict[str, Any]]:
        return []  # no plans: $populate without a previous response reads the upstream and finds none (404)

    def capabilities(self) -> dict[str, Any]:
        return {"resourceType": "CapabilityStatement", "fhirVersion": "4.0.1"}

    def close(self) -> None:
        pass


_OUTBOX_DIR = tempfile.TemporaryDirectory(prefix="safetyplan-fuzz-")
STUB = StubUpstream()
APP = create_app(
    ServiceSettings(
        upstream=StubUpstream.base_url,
        outbox=Path(_OUTBOX_DIR.name) / "outbox.sqlite",
        flush_interval=0,
        tokens=Tokens([TOKEN]),
        client_factory=lambda url: cast(FhirClient, STUB),
    )
)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
schema.config.phases.update(phases=["examples", "fuzzing"])
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
    max_examples=MAX_EXAMPLES,
    no_shrink=True,
    deterministic=True,
)


@pytest.fixture(scope="module", autouse=True)
def _remove_outbox() -> Iterator[None]:
    yield
    _OUTBOX_DIR.cleanup()


def _is_outcome(body: Any) -> bool:
    return (
        isinstance(body, dict)
        and body.get("resourceType") == "OperationOutcome"
        and isinstance(body.get("issue"), list)
        and len(body["issue"]) > 0
        and all(isinstance(i.get("diagnostics"), str) and i["diagnostics"] for i in body["issue"])
    )


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_input_makes_the_service_fail_and_every_refusal_is_an_operation_outcome(case: Any) -> None:
    for headers in ({"Authorization": f"Bearer {TOKEN}"}, {}):
        response = case.call(headers=headers)
        SEEN.setdefault(f"{case.method} {case.path}", set()).add(response.status_code)
        assert response.status_code < 500, (case.method, case.path, response.status_code, response.text[:500])
        if 400 <= response.status_code < 500:
            body = json.loads(response.text)
            assert _is_outcome(body), (case.method, case.path, response.status_code, response.text[:500])
            assert "Traceback" not in response.text
        case.validate_response(
            response,
            checks=[
                schemathesis.checks.not_a_server_error,
                schemathesis.checks.status_code_conformance,
                schemathesis.checks.content_type_conformance,
                schemathesis.checks.response_schema_conformance,
            ],
        )


def test_the_fuzzing_reached_past_the_front_door() -> None:
    """Every operation answered 2xx at least once (so generated inputs reached the pipeline and delivery)."""
    if not SEEN:
        pytest.skip("runs after the fuzz test in the same session")
    for operation, statuses in SEEN.items():
        assert any(200 <= s < 300 for s in statuses), (operation, statuses)
    for operation in ("POST /QuestionnaireResponse/$extract", "POST /QuestionnaireResponse"):
        assert {400, 401} <= SEEN[operation], (operation, SEEN[operation])
    assert STUB.transactions > 0
    assert STUB.revisions > 0  # delivering POSTs that revise an earlier plan
