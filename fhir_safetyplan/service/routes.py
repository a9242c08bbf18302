"""The endpoints: definitions, ``$validate``, ``$extract``, delivery, ``/metadata`` and ``/healthz``.

Handlers read and answer HTTP; the work is done by the same pure functions the command line uses
(:mod:`fhir_safetyplan.pipeline`) and by :mod:`fhir_safetyplan.delivery.deliver`, on worker threads. What the
OpenAPI document says of them is in :mod:`.openapi`, the CapabilityStatement in :mod:`.capability`, the
upstream's cached health in :mod:`.health`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from fastapi.types import DecoratedCallable
from starlette.concurrency import run_in_threadpool

from fhir_safetyplan import __version__, codes
from fhir_safetyplan.errors import JSON, one_issue
from fhir_safetyplan.service.callers import require_caller
from fhir_safetyplan.service.capability import capability_statement
from fhir_safetyplan.service.fhirio import PLAIN_JSON, HttpError, fhir_response, negotiate, read_json
from fhir_safetyplan.service.health import upstream_health
from fhir_safetyplan.service.openapi import ERRORS, OUTCOME, READ_ERRORS, described, plan_body
from fhir_safetyplan.service.settings import ServiceSettings
from fhir_safetyplan.service.statuses import http_status

if TYPE_CHECKING:
    from fhir_safetyplan.delivery.deliver import DeliveryResult
    from fhir_safetyplan.document import DocumentContext

log = logging.getLogger("fhir_safetyplan.service")
T = TypeVar("T")

router = APIRouter()

_FORMAT = Query(
    None,
    alias="_format",
    description="Override of the Accept header: json, application/fhir+json or application/json.",
)

# ---- helpers -------------------------------------------------------------------------------------


def _settings(request: Request) -> ServiceSettings:
    settings: ServiceSettings = request.app.state.settings
    return settings


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


async def _work(func: Callable[..., T], *args: Any) -> T:
    """Run a synchronous pipeline step on a worker thread, so the event loop keeps serving other calls."""
    return await run_in_threadpool(func, *args)


def _unwrap(data: Any, names: tuple[str, ...]) -> Any:
    """The input of an operation: the body itself, or the resource in a Parameters parameter ``names``."""
    if not (isinstance(data, dict) and data.get("resourceType") == "Parameters"):
        return data
    params = data.get("parameter")
    if isinstance(params, list):
        for p in params:
            if isinstance(p, dict) and p.get("name") in names and isinstance(p.get("resource"), dict):
                return p["resource"]
    raise HttpError(
        400,
        f"The Parameters resource has no parameter {names[0]!r} holding a QuestionnaireResponse.",
        code="required",
    )


def _context(settings: ServiceSettings) -> DocumentContext:
    from fhir_safetyplan.document import DocumentContext

    return DocumentContext(
        confidentiality=settings.confidentiality,
        create_patient=settings.create_patient,
        crisis_centre=settings.crisis_centre,
        canonical_base=settings.canonical_base,
    )


def _get(
    path: str, tag: str, summary: str, responses: dict[int | str, Any]
) -> Callable[[DecoratedCallable], DecoratedCallable]:
    """``GET path``: an endpoint anyone may read, answering JSON (no token: definitions and the service's
    state are public)."""
    return router.get(path, tags=[tag], summary=summary, response_class=Response, responses=responses)


def operation(
    api: APIRouter,
    path: str,
    summary: str,
    body: JSON,
    responses: dict[int | str, Any],
    *,
    tag: str = "operations",
) -> Callable[[DecoratedCallable], DecoratedCallable]:
    """``POST path`` on ``api``: an endpoint that reads a FHIR body, needs the caller's token and answers FHIR
    JSON (``body``: its OpenAPI request body). What its work raises is answered by the app's one mapping
    (:data:`fhir_safetyplan.service.statuses.ERROR_STATUSES`)."""
    return api.post(
        path,
        tags=[tag],
        summary=summary,
        response_class=Response,
        dependencies=[Depends(require_caller)],
        openapi_extra=body,
        responses=responses,
    )


# ---- definitions ---------------------------------------------------------------------------------


def _questionnaires(settings: ServiceSettings) -> list[JSON]:
    """The shared, cached Questionnaires of every version: only serialised here, never changed."""
    from fhir_safetyplan.versions import published_questionnaires

    return published_questionnaires(codes.canonical_base(settings.canonical_base))


@_get(
    "/Questionnaire",
    "definitions",
    "Search the Questionnaires (a searchset Bundle)",
    {200: described("A searchset Bundle of Questionnaires."), **READ_ERRORS},
)
async def search_questionnaires(
    request: Request,
    url: str | None = Query(None, description="Canonical URL; url|version is accepted too."),
    version: str | None = Query(None, description="Business version, e.g. 1.0.0."),
    language: str | None = Query(None, description="Language of the form: nb, nn or en."),
    id_: str | None = Query(None, alias="_id", description="Logical id, e.g. sikkerhetsplan-nn."),
    format_: str | None = _FORMAT,
) -> Response:
    """Our Questionnaires, filtered by canonical url (``url`` or ``url|version``), version, language and id."""
    media = negotiate(request)
    settings = _settings(request)
    if url and "|" in url:
        url, _, piped = url.partition("|")
        if version and piped and version != piped:
            raise HttpError(
                400, "url carries a |version that differs from the version parameter.", code="value"
            )
        version = version or piped or None
    matches = [
        q
        for q in _questionnaires(settings)
        if (url is None or q["url"] == url)
        and (version is None or q.get("version") == version)
        and (language is None or str(q.get("language", "")).lower() == language.strip().lower())
        and (id_ is None or q["id"] == id_)
    ]
    base = _base_url(request)
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(matches),
        "link": [{"relation": "self", "url": str(request.url)}],
        "entry": [
            {"fullUrl": f"{base}/Questionnaire/{q['id']}", "resource": q, "search": {"mode": "match"}}
            for q in matches
        ],
    }
    return fhir_response(bundle, media_type=media)


@_get(
    "/Questionnaire/{id}",
    "definitions",
    "Read one Questionnaire",
    {
        200: described("The Questionnaire."),
        404: described("No Questionnaire with this id (OperationOutcome).", OUTCOME),
        406: ERRORS[406],
    },
)
async def read_questionnaire(
    request: Request,
    id: str = Path(
        description="sikkerhetsplan (multilingual), sikkerhetsplan-nb, -nn or -en",
        examples=["sikkerhetsplan-nn"],
    ),
    format_: str | None = _FORMAT,
) -> Response:
    """One Questionnaire by id."""
    media = negotiate(request)
    for q in _questionnaires(_settings(request)):
        if q["id"] == id:
            return fhir_response(q, media_type=media, headers={"ETag": f'W/"{q.get("version", "1")}"'})
    known = ", ".join(codes.questionnaire_id(lang) for lang in (None, *codes.LANGUAGES))
    raise HttpError(
        404, f"There is no Questionnaire with this id here; the ids are {known}.", code="not-found"
    )


# ---- operations ----------------------------------------------------------------------------------


@operation(
    router,
    "/QuestionnaireResponse/$validate",
    "Validate a QuestionnaireResponse or answers document (an OperationOutcome, 200 even when invalid)",
    plan_body("A QuestionnaireResponse, an answers document, or a Parameters resource with 'resource'."),
    {200: described("The OperationOutcome: errors mean the input is not valid.", OUTCOME), **ERRORS},
)
async def validate_response(request: Request, format_: str | None = _FORMAT) -> Response:
    """FHIR ``$validate``: the outcome is the answer, so an invalid input still gets 200."""
    from fhir_safetyplan.pipeline import validate

    media = negotiate(request)
    settings = _settings(request)
    data = _unwrap(await read_json(request, settings.max_body_bytes), ("resource", "questionnaire-response"))
    outcome = await _work(validate, data, settings.canonical_base)
    return fhir_response(outcome, media_type=media)


@operation(
    router,
    "/QuestionnaireResponse/$extract",
    "SDC $extract: the transaction Bundle the form's template extraction defines",
    plan_body(
        "A QuestionnaireResponse, an answers document, or a Parameters resource with 'questionnaire-response'."
    ),
    {
        200: described("The transaction Bundle (CarePlan) extracted from the response."),
        422: described("The response is not valid against its Questionnaire (OperationOutcome).", OUTCOME),
        **ERRORS,
    },
)
async def extract_response(request: Request, format_: str | None = _FORMAT) -> Response:
    """SDC ``$extract`` of a validated input."""
    from fhir_safetyplan.pipeline import extract

    media = negotiate(request)
    settings = _settings(request)
    data = _unwrap(await read_json(request, settings.max_body_bytes), ("questionnaire-response", "resource"))
    bundle = await _work(extract, data, _context(settings))
    return fhir_response(bundle, media_type=media)


def _document(data: Any, settings: ServiceSettings) -> tuple[JSON, str]:
    from fhir_safetyplan.bundle import transaction
    from fhir_safetyplan.pipeline import document

    documentation = document(data, _context(settings))
    return transaction(documentation), documentation.submission


def _transaction_response(result: DeliveryResult) -> JSON:
    """A transaction-response Bundle from what the upstream answered per entry (ids and statuses only)."""
    entries = []
    for e in result.entries:
        response: JSON = {"status": e.status}
        if e.location:
            response["location"] = e.location
        if e.etag:
            response["etag"] = e.etag
        entries.append({"response": response})
    return {
        "resourceType": "Bundle",
        "type": "transaction-response",
        "identifier": {
            "system": "urn:ietf:rfc:3986",
            "value": f"urn:safetyplan:submission:{result.submission_id}",
        },
        "entry": entries,
    }


@operation(
    router,
    "/QuestionnaireResponse",
    "Validate, document and deliver a plan to the upstream FHIR server",
    plan_body(
        "A QuestionnaireResponse or an answers document. The same submission sent again is delivered again "
        "without creating copies."
    ),
    {
        201: described(
            "Delivered: a transaction-response Bundle with the upstream's statuses and locations."
        ),
        202: described(
            "Queued in the outbox: it will be delivered when the upstream is back (OperationOutcome).",
            OUTCOME,
        ),
        403: described("Refused by policy, e.g. a real identity number bound for a public server.", OUTCOME),
        409: described("Held for a person: the patient's plan changed meanwhile; nothing written.", OUTCOME),
        422: described("Not valid, or refused by the upstream server (OperationOutcome).", OUTCOME),
        501: described("This service has no upstream server to deliver to (OperationOutcome).", OUTCOME),
        502: described(
            "The upstream refused the service itself (credentials, URL): the plan is held.", OUTCOME
        ),
        503: described("The upstream cannot take it now and there is no outbox (OperationOutcome).", OUTCOME),
        **ERRORS,
    },
    tag="delivery",
)
async def create_response(request: Request, format_: str | None = _FORMAT) -> Response:
    """Validate, document and deliver: 201 delivered, 202 queued in the outbox, 4xx refused (OperationOutcome)."""
    media = negotiate(request)
    settings = _settings(request)
    delivery = request.app.state.delivery
    if settings.upstream is None:
        raise HttpError(
            501,
            "This service was started without an upstream FHIR server, so it cannot deliver; use $validate and "
            "$extract, or start it with --upstream URL.",
            code="not-supported",
        )
    data = await read_json(request, settings.max_body_bytes)
    if isinstance(data, dict) and data.get("resourceType") == "Parameters":
        raise HttpError(
            400, "POST a QuestionnaireResponse or an answers document, not Parameters.", code="structure"
        )
    bundle, submission = await _work(_document, data, settings)
    result = await _work(delivery.deliver, bundle, submission)
    if result.status not in ("delivered", "queued", "conflict"):  # conflict: answered 409 below
        from fhir_safetyplan.service.refusals import refusal

        raise refusal(result, delivery)
    # Percent-encoded: a header must be Latin-1 and one line, whatever the sender chose as identifier.
    headers = {"X-Submission-Id": quote(submission, safe="-._:")}
    if result.status == "queued":
        outcome = one_issue(
            "information",
            "informational",
            f"Queued: the upstream cannot take the plan now; it is kept in the outbox as submission "
            f"{submission} and delivered automatically when the upstream is back.",
        )
        return fhir_response(outcome, http_status(result.status), media, headers)
    if result.status == "conflict":  # held for a person: the patient's plan changed meanwhile
        return fhir_response(result.outcome, http_status(result.status), media, headers)
    qr = next((e for e in result.entries if e.resource_type == "QuestionnaireResponse" and e.location), None)
    if qr is not None and qr.location:
        location = qr.location
        if not location.startswith(("http://", "https://")):
            location = f"{settings.upstream}/{location.lstrip('/')}"
        headers["Location"] = location
    return fhir_response(_transaction_response(result), http_status(result.status), media, headers)


# ---- about the service ---------------------------------------------------------------------------


@_get(
    "/metadata",
    "about",
    "The CapabilityStatement of this service",
    {200: described("The CapabilityStatement."), 406: ERRORS[406]},
)
async def metadata(request: Request, format_: str | None = _FORMAT) -> Response:
    """What this service offers, as a FHIR CapabilityStatement."""
    media = negotiate(request)
    return fhir_response(capability_statement(_settings(request), _base_url(request)), media_type=media)


@_get(
    "/healthz",
    "about",
    "Liveness, upstream reachability and outbox depth",
    {
        200: {
            "description": "The service is alive; 'status' is 'degraded' when the upstream cannot be reached.",
            "content": {PLAIN_JSON: {"schema": {"type": "object"}}},
        }
    },
)
async def healthz(request: Request) -> Response:
    """Always 200 while the process serves; the body says whether the upstream answers and what is queued."""
    delivery = request.app.state.delivery
    upstream = await _work(upstream_health, _settings(request), request.app.state)
    depth = await _work(delivery.depth) if delivery.outbox is not None else None
    body: JSON = {
        "status": "ok" if upstream.get("reachable", True) else "degraded",
        "version": __version__,
        "upstream": upstream,
        "outbox": {"configured": False} if depth is None else {"configured": True, **depth},
    }
    return fhir_response(body, media_type=PLAIN_JSON)
