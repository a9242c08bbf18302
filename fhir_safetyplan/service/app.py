"""The app factory: routes, OperationOutcome errors, a personal-data-free access log, the flusher's lifetime."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fhir_safetyplan import __version__
from fhir_safetyplan.errors import JSON, SafetyPlanError, issue, operation_outcome
from fhir_safetyplan.service.fhirio import HttpError, error_response
from fhir_safetyplan.service.limits import RequestLimits
from fhir_safetyplan.service.openapi import document as openapi_document
from fhir_safetyplan.service.populate import router as populate_router
from fhir_safetyplan.service.sender import Delivery
from fhir_safetyplan.service.settings import ServiceSettings
from fhir_safetyplan.service.statuses import error_status

log = logging.getLogger("fhir_safetyplan.service")
access_log = logging.getLogger("fhir_safetyplan.service.access")


class AccessLog:
    """One line per request: method, route template, status, duration. Nothing else.

    Not the path (``/Questionnaire/{id}`` is logged as the template, unknown paths as ``-``), not the query
    (search parameters can carry identity numbers), not the client address, not a header, not the body.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None)
            if template is None and scope.get("endpoint") is not None and not scope.get("path_params"):
                # A plain Starlette route without parameters (/openapi.json): its path is its template.
                template = scope.get("path")
            method = scope.get("method", "-") if template else "-"
            access_log.info(
                "%s %s %d %.1fms", method, template or "-", status, 1000 * (time.perf_counter() - started)
            )


def _outcome_for_status(status: int, detail: Any) -> JSON:
    # Starlette's own errors (unknown route, wrong method) carry fixed texts, never request data.
    messages = {
        404: ("not-found", "There is no such endpoint; see /openapi.json for what this service offers."),
        405: ("not-supported", "This endpoint does not allow this HTTP method; see /openapi.json."),
    }
    code, text = messages.get(
        status, ("processing", str(detail) if isinstance(detail, str) else "Request failed.")
    )
    return operation_outcome([issue("error", code, text)])


def _validation_outcome(exc: RequestValidationError) -> JSON:
    issues = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("query", "path", "header", "body")]
        where = ".".join(loc) or "request"
        # Only the location and the rule: the offending value may be personal data.
        issues.append(issue("error", "value", f"{where}: {err.get('msg', 'invalid value')}", where))
    return operation_outcome(issues or [issue("error", "value", "The request is not acceptable.")])


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(HttpError)
    async def _http_error(request: Request, exc: HttpError) -> Response:
        return error_response(request, exc.status, exc.outcome, exc.headers)

    @app.exception_handler(SafetyPlanError)
    async def _safetyplan_error(request: Request, exc: SafetyPlanError) -> Response:
        # The one mapping of every endpoint: the caller's input, a missing plan, the upstream's failure.
        status = error_status(exc)
        if status is not None:
            return error_response(request, status, exc.outcome)
        log.error("request failed: %s", type(exc).__name__)
        return error_response(request, 500, operation_outcome([issue("error", "exception", str(exc))]))

    @app.exception_handler(StarletteHTTPException)
    async def _starlette_error(request: Request, exc: StarletteHTTPException) -> Response:
        return error_response(
            request, exc.status_code, _outcome_for_status(exc.status_code, exc.detail), exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, exc: RequestValidationError) -> Response:
        return error_response(request, 400, _validation_outcome(exc))

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> Response:
        # A bug: say so, with no traceback and no exception text (it may quote the input).
        log.error(
            "internal error (%s) on %s", type(exc).__name__, getattr(request.scope.get("route"), "path", "-")
        )
        return error_response(
            request,
            500,
            operation_outcome(
                [
                    issue(
                        "fatal",
                        "exception",
                        f"Internal error ({type(exc).__name__}); this is a bug in the service. The operator's "
                        "log has the time; report it without personal data.",
                    )
                ]
            ),
        )


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    """The web service (an ASGI app) over the pipeline and delivery; ``settings`` default to the environment."""
    from fhir_safetyplan.service.form import router as form_router
    from fhir_safetyplan.service.routes import router
    from fhir_safetyplan.service.settings import settings_from_env

    settings = settings or settings_from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.delivery.start()
        if not settings.tokens and not settings.allow_anonymous:
            log.warning(
                "no service tokens configured (SAFETYPLAN_SERVICE_TOKENS[_FILE]): every POST will be refused"
            )
        log.info(
            "service ready: upstream %s, outbox %s, flush every %.0f s",
            settings.upstream or "none",
            "on" if settings.outbox else "off",
            settings.flush_interval,
        )
        try:
            yield
        finally:
            await app.state.delivery.stop()

    app = FastAPI(
        title="fhir-safetyplan service",
        version=__version__,
        description=(
            "Safety plans as FHIR R4 for integration engines: the Questionnaire definitions, "
            "QuestionnaireResponse $validate and SDC $extract, and delivery of the journal documentation to "
            "the upstream FHIR server through a durable outbox. Every error is an OperationOutcome."
        ),
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.delivery = Delivery(settings)
    _install_error_handlers(app)
    app.include_router(router)
    app.include_router(populate_router)
    app.include_router(form_router)
    app.add_middleware(RequestLimits, body_timeout=settings.body_timeout, max_requests=settings.max_requests)
    app.add_middleware(AccessLog)

    def openapi() -> JSON:
        return openapi_document(app)

    app.openapi = openapi  # type: ignore[method-assign]
    return app
