"""Bounds on what one caller can hold of the service: how long a request body may take to arrive, how many
requests run at once, and an OperationOutcome (not uvicorn's plain text) for requests that are not HTTP.

- :class:`RequestLimits` (ASGI middleware): a request whose body has not fully arrived ``body_timeout``
  seconds after the request started is answered **408** (the connection is closed); more than
  ``max_requests`` requests in progress at once are answered **503** with ``Retry-After``. Both answers are
  OperationOutcomes.
- :func:`http_protocol`: uvicorn's HTTP protocol with its "Invalid HTTP request" answer (a bad
  ``Content-Length``, a malformed header) replaced by a 400 OperationOutcome.
- uvicorn itself bounds the connections (``limit_concurrency``, above ``max_requests`` so that our 503 is what
  callers see) and idle keep-alive connections (``timeout_keep_alive``); :func:`uvicorn_options` gives both.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fhir_safetyplan.errors import issue, operation_outcome
from fhir_safetyplan.service.fhirio import HttpError

#: seconds an idle keep-alive connection is kept open between requests
KEEP_ALIVE_SECONDS = 5


def uvicorn_options(max_requests: int) -> dict[str, Any]:
    """What ``safetyplan serve`` gives uvicorn: our HTTP protocol (:func:`http_protocol`), a bound on connections
    (a margin above ``max_requests``, so that callers see our 503 first) and on idle keep-alive time."""
    return {
        "http": http_protocol(),
        "limit_concurrency": max_requests + max(8, max_requests // 4),
        "timeout_keep_alive": KEEP_ALIVE_SECONDS,
    }


def _outcome_bytes(code: str, message: str) -> bytes:
    return json.dumps(operation_outcome([issue("error", code, message)]), ensure_ascii=False).encode("utf-8")


async def _answer(send: Send, status: int, code: str, message: str, headers: dict[str, str]) -> None:
    body = _outcome_bytes(code, message)
    raw = [
        (b"content-type", b"application/fhir+json; charset=utf-8"),
        (b"content-length", str(len(body)).encode("ascii")),
        *((k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class RequestLimits:
    """Times out slow request bodies (408) and bounds the requests in progress (503); see the module docs."""

    def __init__(self, app: ASGIApp, *, body_timeout: float, max_requests: int) -> None:
        self.app = app
        self.body_timeout = body_timeout
        self.max_requests = max_requests
        self.in_progress = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.in_progress >= self.max_requests:
            await _answer(
                send,
                503,
                "transient",
                f"The service is handling {self.max_requests} requests, its limit; send this one again "
                "in a moment (it was not read).",
                {"retry-after": "1", "connection": "close"},
            )
            return
        self.in_progress += 1
        try:
            await self.app(scope, self._timed(receive), send)
        finally:
            self.in_progress -= 1

    def _timed(self, receive: Receive) -> Receive:
        """``receive`` with a deadline that holds until the body is complete (not for a later disconnect)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.body_timeout
        complete = False

        async def timed_receive() -> Message:
            nonlocal complete
            if complete:
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise HttpError(
                    408,
                    f"The request body did not arrive within {self.body_timeout:g} seconds; send it again "
                    "in one go (nothing of it was used).",
                    code="timeout",
                    headers={"connection": "close"},
                ) from None
            complete = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        return timed_receive


def _write_400(transport: asyncio.Transport) -> None:
    body = _outcome_bytes(
        "structure",
        "The request is not valid HTTP/1.1 (for example a Content-Length that is not a number, or a malformed "
        "header line), so it was not read; send a well-formed request.",
    )
    head = (
        "HTTP/1.1 400 Bad Request\r\n"
        "content-type: application/fhir+json; charset=utf-8\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    transport.write(head.encode("ascii") + body)
    transport.close()


def http_protocol() -> type[asyncio.Protocol]:
    """The HTTP protocol class uvicorn would pick (httptools when installed, else h11), answering malformed
    requests with a 400 OperationOutcome instead of plain text."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:
        from uvicorn.protocols.http.h11_impl import H11Protocol

        class OutcomeH11Protocol(H11Protocol):
            def send_400_response(self, msg: str) -> None:
                _write_400(self.transport)

        return OutcomeH11Protocol

    class OutcomeHttpToolsProtocol(HttpToolsProtocol):
        def send_400_response(self, msg: str) -> None:
            _write_400(self.transport)

    return OutcomeHttpToolsProtocol
