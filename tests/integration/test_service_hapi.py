"""The HTTP service over real HTTP on loopback, delivering to the real HAPI FHIR server.

The service runs in uvicorn on a thread of this process, on a free 127.0.0.1 port. For the outage, the
service's upstream is a loopback TCP proxy we control: first nothing listens on its port (connection
refused, as when the server is down), then the proxy starts forwarding to HAPI and the background flusher
delivers the queued plan.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import uvicorn

from fhir_safetyplan.identifiers import FNR_SYSTEM
from fhir_safetyplan.service import ServiceSettings, Tokens, create_app

from .conftest import Fhir, fresh_identifier
from .test_delivery_hapi import fresh_fnr

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "integration-token-0123456789abcdef"
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/fhir+json"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting for {what} after {timeout:.0f} s")


class RunningService:
    """The service in uvicorn on a thread, listening on 127.0.0.1:port."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=self.port, access_log=False, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="service", daemon=True)

    def __enter__(self) -> RunningService:
        self.thread.start()
        wait_for(lambda: self.server.started, 30, "the service to start")
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)

    def wait_until_delivered(self, count: int, what: str) -> None:
        """Until ``/healthz`` shows ``count`` plans delivered from the outbox and none pending (2 minutes)."""

        def delivered() -> bool:
            outbox = requests.get(f"{self.url}/healthz", timeout=30).json()["outbox"]
            return bool(outbox["delivered"] == count and outbox["pending"] == 0)

        wait_for(delivered, 120, what)


class Proxy:
    """A TCP proxy on 127.0.0.1:port to HAPI that counts the transactions (``POST /fhir``) passing through."""

    _TRANSACTION = re.compile(rb"(?:^|\r\n)POST /fhir/? HTTP/1\.1\r\n")

    def __init__(self, port: int, target: tuple[str, int]) -> None:
        self.port = port
        self.target = target
        self.transactions = 0
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept, daemon=True).start()

    def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()
        for s in self._sockets:
            try:
                s.close()
            except OSError:
                pass

    def _accept(self) -> None:
        assert self._listener is not None
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, count: bool) -> None:
        tail = b""
        try:
            while data := src.recv(65536):
                if count:
                    found = len(self._TRANSACTION.findall(tail + data))
                    if found:
                        with self._lock:
                            self.transactions += found
                    tail = data[-32:]
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def answers(submission: str, fnr: str, example: str = "01-alt-pa-plass") -> dict[str, Any]:
    """An example's answers with ``submission`` for the synthetic patient ``fnr``: a test's own patient,
    so a later plan another test wrote for the example's fixed patient cannot hold this one as a revision."""
    data: dict[str, Any] = json.loads(
        (ROOT / "examples" / example / "answers.json").read_text(encoding="utf-8")
    )
    data["submissionId"] = submission
    data["patient"] = {"fnr": fnr}
    return data


def settings(upstream: str, **kw: Any) -> ServiceSettings:
    return ServiceSettings(
        upstream=upstream, tokens=Tokens([TOKEN]), create_patient=True, upstream_retries=0, **kw
    )


@pytest.fixture
def service(hapi_base_url: str, tmp_path: Path) -> Iterator[RunningService]:
    with RunningService(settings(hapi_base_url, outbox=tmp_path / "outbox.sqlite", flush_interval=0)) as svc:
        yield svc


def _ids_by_type(result: dict[str, Any]) -> dict[str, str]:
    out = {}
    for entry in result["entry"]:
        m = re.search(r"([A-Z][A-Za-z]+)/([^/]+)/_history/", entry["response"]["location"])
        assert m, entry
        out.setdefault(m.group(1), m.group(2))  # the plan's own; a revision adds the retired old ones after
    return out


def test_definitions_and_operations_answer_over_http(service: RunningService) -> None:
    s = requests.Session()
    cs = s.get(f"{service.url}/metadata", timeout=30)
    assert cs.status_code == 200 and cs.headers["content-type"].startswith("application/fhir+json")
    q = s.get(f"{service.url}/Questionnaire", params={"language": "en"}, timeout=30).json()
    # the current form and the frozen 1.0.0 one
    assert [e["resource"]["id"] for e in q["entry"]] == ["sikkerhetsplan-en", "sikkerhetsplan-en-1.0.0"]
    body = json.dumps(answers(fresh_identifier("svc"), fresh_fnr()))
    outcome = s.post(f"{service.url}/QuestionnaireResponse/$validate", data=body, headers=HEADERS, timeout=30)
    assert outcome.status_code == 200 and outcome.json()["issue"][0]["severity"] == "information"
    extracted = s.post(
        f"{service.url}/QuestionnaireResponse/$extract", data=body, headers=HEADERS, timeout=30
    )
    assert extracted.status_code == 200
    assert extracted.json()["type"] == "transaction"
    assert s.get(f"{service.url}/openapi.json", timeout=30).json()["paths"]


def test_a_posted_plan_is_on_the_server_once_even_when_posted_twice(
    service: RunningService, fhir: Fhir
) -> None:
    submission = fresh_identifier("svc")
    body = json.dumps(answers(submission, fresh_fnr()))
    first = requests.post(f"{service.url}/QuestionnaireResponse", data=body, headers=HEADERS, timeout=120)
    assert first.status_code == 201, first.text
    ids = _ids_by_type(first.json())
    assert {"QuestionnaireResponse", "CarePlan", "DocumentReference", "Provenance"} <= set(ids)
    qr = fhir.get(f"QuestionnaireResponse/{ids['QuestionnaireResponse']}")
    assert qr.status_code == 200
    assert first.headers["Location"].startswith(fhir.base + "/QuestionnaireResponse/")

    again = requests.post(f"{service.url}/QuestionnaireResponse", data=body, headers=HEADERS, timeout=120)
    assert again.status_code == 201, again.text
    assert _ids_by_type(again.json()) == ids
    for rtype, rid in ids.items():
        assert len(fhir.search(rtype, _id=rid)) == 1, rtype
    stored = fhir.search("QuestionnaireResponse", identifier=qr.json()["identifier"]["value"])
    assert len(stored) == 1


def test_an_invalid_plan_gets_an_outcome_and_nothing_reaches_the_server(service: RunningService) -> None:
    data = answers(fresh_identifier("svc"), fresh_fnr())
    data["answers"]["checklist"]["politi"] = "kanskje"
    r = requests.post(
        f"{service.url}/QuestionnaireResponse", data=json.dumps(data), headers=HEADERS, timeout=60
    )
    assert r.status_code == 400
    assert r.json()["resourceType"] == "OperationOutcome"


def test_a_plan_queued_while_the_server_is_down_is_delivered_once_when_it_is_back(
    hapi_base_url: str, fhir: Fhir, tmp_path: Path
) -> None:
    from urllib.parse import urlsplit

    hapi = urlsplit(hapi_base_url)
    proxy = Proxy(free_port(), (hapi.hostname or "127.0.0.1", hapi.port or 80))
    upstream = f"http://127.0.0.1:{proxy.port}{hapi.path}"
    submission, fnr = fresh_identifier("svc"), fresh_fnr()
    with RunningService(settings(upstream, outbox=tmp_path / "outbox.sqlite", flush_interval=0.5)) as svc:
        r = requests.post(
            f"{svc.url}/QuestionnaireResponse",
            data=json.dumps(answers(submission, fnr)),
            headers=HEADERS,
            timeout=60,
        )
        assert r.status_code == 202, r.text
        assert r.json()["resourceType"] == "OperationOutcome"
        health = requests.get(f"{svc.url}/healthz", timeout=30).json()
        assert health["status"] == "degraded" and health["outbox"]["pending"] == 1

        proxy.start()
        try:
            svc.wait_until_delivered(1, "the flusher to deliver the queued plan")
            time.sleep(2.0)  # several more flusher rounds: none may send it again
            assert proxy.transactions == 1
            # /healthz reuses its upstream probe for a few seconds (it must not be a way to hit the upstream).
            wait_for(
                lambda: requests.get(f"{svc.url}/healthz", timeout=30).json()["status"] == "ok",
                30,
                "/healthz to see the upstream back",
            )
        finally:
            proxy.stop()

    from fhir_safetyplan.ids import plan_scope, resource_id

    subject = {"identifier": {"system": FNR_SYSTEM, "value": fnr}}
    for rtype in ("QuestionnaireResponse", "CarePlan", "DocumentReference", "Provenance"):
        found = fhir.search(rtype, _id=resource_id(plan_scope(submission, subject), rtype))
        assert len(found) == 1, rtype
