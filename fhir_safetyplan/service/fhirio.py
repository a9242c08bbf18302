"""FHIR over HTTP at the edge of the service: media types, bodies with a size limit, OperationOutcome errors.

Every answer that is not a success is an OperationOutcome, whatever went wrong (bad JSON, wrong media type,
unknown route, a bug): an integration engine can always parse the body the same way.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from fhir_safetyplan.errors import JSON, SafetyPlanError, issue, operation_outcome
from fhir_safetyplan.jsoninput import parse_json

log = logging.getLogger("fhir_safetyplan.service")

FHIR_JSON = "application/fhir+json"
PLAIN_JSON = "application/json"
#: media types of request bodies we read (charset utf-8 only, which JSON requires anyway)
ACCEPTED_BODY_TYPES = (FHIR_JSON, PLAIN_JSON)


class HttpError(SafetyPlanError):
    """An error answered with ``status`` and this error's OperationOutcome (``headers`` added)."""

    def __init__(
        self,
        status: int,
        message: str,
        outcome: JSON | None = None,
        *,
        code: str = "processing",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, outcome or operation_outcome([issue("error", code, message)]))
        self.status = status
        self.headers = headers or {}


def _media_ranges(header: str) -> list[tuple[str, float]]:
    """(media range, q) pairs of an Accept header, in header order."""
    ranges: list[tuple[str, float]] = []
    for part in header.split(","):
        fields = [f.strip() for f in part.split(";")]
        media = fields[0].lower()
        if not media:
            continue
        q = 1.0
        for param in fields[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        ranges.append((media, q))
    return ranges


def negotiate(request: Request) -> str:
    """The media type to answer with: ``application/fhir+json`` unless the caller prefers ``application/json``.

    ``_format`` (FHIR's override for clients that cannot set Accept) wins over the Accept header.
    Raises :class:`HttpError` 406 when the caller accepts neither.
    """
    fmt = request.query_params.get("_format")
    if fmt is not None:
        fmt = fmt.strip().lower()
        if fmt in ("json", FHIR_JSON):
            return FHIR_JSON
        if fmt == PLAIN_JSON:
            return PLAIN_JSON
        raise HttpError(
            406,
            "This service answers in JSON only: use _format=json (or application/fhir+json, application/json).",
            code="not-supported",
        )
    header = request.headers.get("accept", "").strip()
    if not header:
        return FHIR_JSON
    best: tuple[float, int, str] | None = None
    for media, q in _media_ranges(header):
        if q <= 0:
            continue
        if media == FHIR_JSON:
            candidate = (q, 2, FHIR_JSON)
        elif media == PLAIN_JSON:
            candidate = (q, 1, PLAIN_JSON)
        elif media in ("*/*", "application/*"):
            candidate = (q, 0, FHIR_JSON)
        else:
            continue
        if best is None or candidate[:2] > best[:2]:
            best = candidate
    if best is None:
        raise HttpError(
            406,
            "This service answers with application/fhir+json or application/json; the Accept header allows "
            "neither.",
            code="not-supported",
        )
    return best[2]


def fhir_response(
    resource: JSON, status: int = 200, media_type: str = FHIR_JSON, headers: Mapping[str, str] | None = None
) -> Response:
    """A JSON answer with the negotiated media type (UTF-8, non-ASCII kept as is)."""
    body = json.dumps(resource, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(
        content=body, status_code=status, media_type=f"{media_type}; charset=utf-8", headers=headers
    )


def error_response(
    request: Request, status: int, outcome: JSON, headers: Mapping[str, str] | None = None
) -> Response:
    """An OperationOutcome answer; falls back to fhir+json when the caller's Accept cannot be honoured."""
    try:
        media = negotiate(request)
    except HttpError:
        media = FHIR_JSON
    return fhir_response(outcome, status, media, headers)


def _check_content_type(request: Request) -> None:
    raw = request.headers.get("content-type")
    if not raw:
        raise HttpError(
            415,
            "The request has no Content-Type: send the body as application/fhir+json (or application/json).",
            code="not-supported",
        )
    media, *params = (p.strip() for p in raw.split(";"))
    if media.lower() not in ACCEPTED_BODY_TYPES:
        raise HttpError(
            415,
            f"Content-Type {media[:80]!r} is not accepted: send application/fhir+json or application/json.",
            code="not-supported",
        )
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise HttpError(
                415,
                "Only UTF-8 bodies are accepted (charset=utf-8).",
                code="not-supported",
            )


async def read_json(request: Request, limit: int) -> Any:
    """The request body parsed as JSON, after checking its media type and that it is at most ``limit`` bytes.

    The size is checked on the declared Content-Length first and then while reading, so an oversized body
    (declared or chunked) is refused before it is held in memory.
    """

    _check_content_type(request)
    too_large = HttpError(
        413,
        f"The body is larger than {limit} bytes, the limit of this service. Send one plan per request.",
        code="too-costly",
    )
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise too_large
        except ValueError:
            raise HttpError(400, "The Content-Length header is not a number.", code="structure") from None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    body = b"".join(chunks)
    if not body.strip():
        raise HttpError(
            400,
            "The request body is empty: send a QuestionnaireResponse, an answers document or a Parameters "
            "resource as JSON.",
            code="required",
        )
    return parse_json(body, "the request body")
