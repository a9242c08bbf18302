"""The service bounds what one caller can hold, and answers malformed HTTP with an OperationOutcome (issue 9 points 9
and 11). A real uvicorn server with the options ``safetyplan serve`` uses, spoken to over raw sockets: a body
sent slowly is timed out with 408, requests beyond the limit get 503 with Retry-After, and a bad Content-Length
gets a 400 OperationOutcome instead of uvicorn's plain text."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from fhir_safetyplan.service import ServiceSettings, Tokens, create_app
from fhir_safetyplan.service.limits import uvicorn_options

TOKEN = "test-token-0123456789abcdef"
BODY_TIMEOUT = 1.0
MAX_REQUESTS = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    settings = ServiceSettings(
        tokens=Tokens([TOKEN]), flush_interval=0, body_timeout=BODY_TIMEOUT, max_requests=MAX_REQUESTS
    )
    chosen = _free_port()
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=chosen,
        access_log=False,
        log_level="warning",
        **uvicorn_options(settings.max_requests),
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="service", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the service did not start"
        time.sleep(0.05)
    yield chosen
    server.should_exit = True
    thread.join(30)


def _connect(port: int) -> socket.socket:
    conn = socket.create_connection(("127.0.0.1", port), timeout=15)
    return conn


def _read_response(conn: socket.socket) -> tuple[int, dict[str, str], Any]:
    """Status, headers and the JSON body of one response (read until the declared length or the close)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        assert chunk, f"connection closed before a response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, headers, json.loads(body[:length]) if length else None


def _slow_post(port: int) -> socket.socket:
    """A POST whose body (500 bytes declared) arrives 10 bytes and then nothing."""
    conn = _connect(port)
    conn.sendall(
        b"POST /QuestionnaireResponse/$validate HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/fhir+json\r\nAuthorization: Bearer " + TOKEN.encode() + b"\r\n"
        b"Content-Length: 500\r\n\r\n" + b'{"answers"'
    )
    return conn


def _is_outcome(body: Any) -> bool:
    return (
        isinstance(body, dict) and body.get("resourceType") == "OperationOutcome" and bool(body.get("issue"))
    )


def test_a_body_sent_too_slowly_is_answered_408_with_an_outcome_and_the_connection_closed(port: int) -> None:
    conn = _slow_post(port)
    started = time.monotonic()
    status, headers, body = _read_response(conn)
    waited = time.monotonic() - started
    assert status == 408
    assert headers["content-type"].startswith("application/fhir+json")
    assert _is_outcome(body) and body["issue"][0]["code"] == "timeout"
    assert BODY_TIMEOUT * 0.8 <= waited < BODY_TIMEOUT + 10
    conn.settimeout(5)
    assert conn.recv(1) == b"", "the connection stays open after the timeout"
    conn.close()


def test_requests_beyond_the_limit_get_503_with_retry_after_and_the_service_recovers(port: int) -> None:
    held = [_slow_post(port) for _ in range(MAX_REQUESTS)]
    time.sleep(0.3)  # both are in progress, waiting for their bodies
    extra = _connect(port)
    extra.sendall(b"GET /metadata HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    status, headers, body = _read_response(extra)
    assert status == 503
    assert headers["retry-after"] == "1"
    assert _is_outcome(body) and body["issue"][0]["code"] == "transient"
    for conn in [*held, extra]:
        conn.close()
    time.sleep(BODY_TIMEOUT + 0.5)  # the held requests time out and free their places
    again = _connect(port)
    again.sendall(b"GET /metadata HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    status, _, body = _read_response(again)
    assert status == 200 and body["resourceType"] == "CapabilityStatement"
    again.close()


@pytest.mark.parametrize("length", [b"abc", b"-5", b"12, 13"])
def test_a_bad_content_length_gets_a_400_operation_outcome_not_plain_text(port: int, length: bytes) -> None:
    conn = _connect(port)
    conn.sendall(
        b"POST /QuestionnaireResponse/$validate HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/fhir+json\r\nContent-Length: " + length + b"\r\n\r\n{}"
    )
    status, headers, body = _read_response(conn)
    assert status == 400
    assert headers["content-type"].startswith("application/fhir+json")
    assert _is_outcome(body)
    assert "Content-Length" in body["issue"][0]["diagnostics"]
    conn.close()


def test_uvicorn_bounds_connections_above_the_request_limit_and_idle_keep_alive() -> None:
    options = uvicorn_options(64)
    assert options["limit_concurrency"] > 64
    assert 0 < options["timeout_keep_alive"] <= 10
