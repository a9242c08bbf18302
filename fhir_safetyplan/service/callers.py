"""Who may call the operations: a bearer token or an ``X-API-Key`` the operator configured.

Reading the definitions, ``/metadata`` and ``/healthz`` needs no token. Every POST (the bodies hold a
person's safety plan) needs one, unless the operator explicitly allowed anonymous calls.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from fhir_safetyplan.service.fhirio import HttpError
from fhir_safetyplan.service.settings import ServiceSettings

log = logging.getLogger("fhir_safetyplan.service.callers")

# auto_error=False: a missing or malformed header is our decision (and our OperationOutcome), not FastAPI's.
bearer_scheme = HTTPBearer(
    auto_error=False, scheme_name="bearer", description="A token the operator configured."
)
api_key_scheme = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    scheme_name="apiKey",
    description="The same tokens as the bearer scheme, for engines that set a fixed header more easily.",
)

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="safetyplan"'}


def require_caller(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    api_key: Annotated[str | None, Depends(api_key_scheme)],
) -> None:
    """Let the request through when it carries a configured token (or anonymous calls are allowed)."""
    settings: ServiceSettings = request.app.state.settings
    if settings.allow_anonymous and bearer is None and api_key is None:
        return
    presented = [t for t in (bearer.credentials if bearer else None, api_key) if t]
    if not presented:
        if not settings.tokens:
            raise HttpError(
                401,
                "This operation needs a token, and the operator has configured none: set "
                "SAFETYPLAN_SERVICE_TOKENS or SAFETYPLAN_SERVICE_TOKENS_FILE where the service runs.",
                code="login",
                headers=_CHALLENGE,
            )
        raise HttpError(
            401,
            "This operation needs a token: send 'Authorization: Bearer <token>' or 'X-API-Key: <token>'.",
            code="login",
            headers=_CHALLENGE,
        )
    # Every presented token must be valid: a wrong one next to a right one is still a mistake to report.
    if not all(settings.tokens.accepts(t) for t in presented):
        log.warning("refused a call with an unknown token")
        raise HttpError(
            401,
            "The token was not accepted; ask the operator of this service for a valid one.",
            code="login",
            headers=_CHALLENGE,
        )
