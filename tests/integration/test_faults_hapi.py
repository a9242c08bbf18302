"""Faults on a real HAPI server: the server killed while a push is in flight, and the connection cut after
the server got the transaction. Either way the plan ends on the server exactly once.

A dedicated server (its own state directory and an H2 *file* database, so data survives the restart) sits
behind a small loopback TCP proxy written here. The proxy passes requests through one per connection, and
for chosen transaction POSTs either kills the server right after forwarding the request (SIGKILL: the plan
may or may not have been committed) or waits for the server's whole answer and then resets the client's
connection (the server committed; the client never hears it).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fhir_safetyplan.cli import main

from .conftest import TOOLCHAIN, Fhir
from .test_delivery_hapi import FNR, SUBMISSION_SYSTEM, fresh_plan, write

JSON = dict[str, Any]


def _read_request(conn: socket.socket) -> bytes | None:
    """One HTTP request (headers and Content-Length body) from the client, or None at EOF."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        body += chunk
    # One request per upstream connection: the answer then ends at EOF, whatever its framing.
    lines = [ln for ln in head.split(b"\r\n") if not ln.lower().startswith(b"connection:")]
    return b"\r\n".join([*lines, b"Connection: close"]) + b"\r\n\r\n" + body


def _reset(conn: socket.socket) -> None:
    # SO_LINGER 0: close() sends RST, as a dropped connection looks to the client.
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def _answer(status: str) -> bytes:
    body = json.dumps(
        {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": "transient", "diagnostics": status}],
        }
    ).encode()
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: application/fhir+json\r\nRetry-After: 0\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


_ANSWERS = {"429": _answer("429 Too Many Requests"), "503": _answer("503 Service Unavailable")}


class FaultProxy:
    """A loopback TCP proxy to ``127.0.0.1:upstream_port`` that can fail transaction POSTs on purpose."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.transactions_forwarded = 0
        self.faults_injected = 0
        #: what to do with the next transaction POSTs: "cut" (after the server answered), "kill" (the server,
        #: mid-request), "down" (drop the connection, nothing forwarded), "429" / "503" (answered by the
        #: proxy, with Retry-After), or None (pass it through)
        self.faults: list[str | None] = []
        self.on_kill: Callable[[], None] = lambda: None
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        threading.Thread(target=self._serve, daemon=True).start()

    def close(self) -> None:
        self._listener.close()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        try:
            request = _read_request(conn)
            if request is None:
                conn.close()
                return
            method, path = request.split(b" ", 2)[:2]
            # Not the batch of searches delivery reads the patient's current plan with: only the write.
            is_transaction = (
                method == b"POST"
                and path.rstrip(b"/").endswith(b"/fhir")
                and b'"type":"batch"' not in request
            )
            fault = None
            if is_transaction:
                with self._lock:
                    fault = self.faults.pop(0) if self.faults else None
                    self.faults_injected += fault is not None
            if fault in _ANSWERS:  # answered by the proxy: the server never sees the request
                conn.sendall(_ANSWERS[fault])
                conn.close()
                return
            if fault == "down":  # as if the server were down: the connection drops before anything is sent
                _reset(conn)
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=120)
            except OSError:
                _reset(conn)  # server down: the client sees the connection dropped
                return
            with upstream:
                upstream.sendall(request)
                if is_transaction:
                    with self._lock:
                        self.transactions_forwarded += 1
                if fault == "kill":
                    time.sleep(0.2)  # let the server start on it: the kill lands mid-transaction
                    self.on_kill()
                    _reset(conn)
                    return
                answer = b""
                while chunk := upstream.recv(65536):
                    answer += chunk
                if fault == "cut":
                    _reset(conn)  # the server has committed and answered; the client never hears it
                    return
                conn.sendall(answer)
                conn.close()
        except OSError:
            conn.close()


def _kill(state: Path) -> Callable[[], None]:
    from fhir_safetyplan import local_hapi

    def kill() -> None:
        info = local_hapi.status(state)
        assert info is not None
        os.kill(info.pid, signal.SIGKILL)
        for _ in range(100):
            if local_hapi.status(state) is None:
                return
            time.sleep(0.1)

    return kill


def _one_of_each(fhir: Fhir, data: JSON, expected_types: list[str]) -> None:
    token = f"{SUBMISSION_SYSTEM}|{data['submissionId']}"
    for rtype in ("QuestionnaireResponse", "CarePlan", "Flag", "DocumentReference"):
        if rtype in expected_types:
            assert len(fhir.search(rtype, identifier=token)) == 1, rtype
    assert len(fhir.search("Patient", identifier=f"{FNR}|{data['patient']['fnr']}")) == 1


def _push(
    proxy: FaultProxy, tmp_path: Path, data: JSON, capsys: pytest.CaptureFixture[str], *where: str
) -> tuple[int, str, str]:
    """``safetyplan push`` of ``data`` through the proxy, creating its patient, with ``where`` (``--outbox
    PATH`` or ``--no-outbox``): its exit code, stdout and stderr."""
    capsys.readouterr()
    via_proxy = f"http://127.0.0.1:{proxy.port}/fhir"
    code = main(["push", str(write(tmp_path, data)), "--server", via_proxy, "--create-patient", *where])
    out, err = capsys.readouterr()
    return code, out, err


def _queued(proxy: FaultProxy, tmp_path: Path, data: JSON, capsys: pytest.CaptureFixture[str]) -> str:
    """Push ``data`` through the proxy with an outbox, which must answer exit 4, queued; the outbox."""
    outbox = str(tmp_path / "outbox.sqlite")
    code, out, err = _push(proxy, tmp_path, data, capsys, "--outbox", outbox)
    assert code == 4, err
    assert json.loads(out)["status"] == "queued"
    return outbox


def _flush_delivers_one_of_each(
    faulty_server: JSON, outbox: str, data: JSON, capsys: pytest.CaptureFixture[str]
) -> None:
    """``outbox flush`` delivers the queued plan: one of each of its resources on the server."""
    assert main(["outbox", "flush", "--outbox", outbox]) == 0
    (result,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert result["status"] == "delivered"
    fhir = Fhir(f"http://127.0.0.1:{faulty_server['port']}/fhir")
    _one_of_each(fhir, data, [e["resourceType"] for e in result["entries"]])


def test_server_killed_mid_push_leaves_plan_queued_and_flush_after_restart_delivers_exactly_one(
    faulty_server: JSON, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fhir_safetyplan import local_hapi

    proxy: FaultProxy = faulty_server["proxy"]
    state: Path = faulty_server["state"]
    proxy.on_kill = _kill(state)
    proxy.faults = ["kill"]
    data = fresh_plan("01-alt-pa-plass")

    outbox = _queued(proxy, tmp_path, data, capsys)
    assert local_hapi.status(state) is None  # really killed
    assert main(["outbox", "list", "--outbox", outbox]) == 0
    (entry,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert entry["status"] == "pending" and entry["attempts"] >= 1

    # Restarted on a new port behind the same proxy address: the killed server's port stays in TIME_WAIT for
    # a minute, and local_hapi.start refuses a port it cannot bind without SO_REUSEADDR.
    info = local_hapi.start(
        state_dir=state, server_args=faulty_server["args"], timeout=300, toolchain=TOOLCHAIN
    )
    faulty_server["port"] = proxy.upstream_port = info.port
    _flush_delivers_one_of_each(faulty_server, outbox, data, capsys)
    assert main(["outbox", "flush", "--outbox", outbox]) == 0  # nothing left: no second delivery
    assert capsys.readouterr().out == ""


def test_connection_cut_after_the_server_committed_is_retried_without_a_duplicate(
    faulty_server: JSON, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    proxy: FaultProxy = faulty_server["proxy"]
    proxy.faults = ["cut"]
    before = proxy.transactions_forwarded
    data = fresh_plan("02-flere-mangler")

    code, out, err = _push(proxy, tmp_path, data, capsys, "--no-outbox")
    assert code == 0, err
    summary = json.loads(out)
    assert proxy.transactions_forwarded - before == 2  # the cut one, then the client's own retry
    # The retry found everything in place: HAPI answered 200 for each entry, version 1, no copies.
    assert {e["status"] for e in summary["entries"]} == {"200 OK"}
    assert {e["versionId"] for e in summary["entries"]} == {"1"}
    fhir = Fhir(f"http://127.0.0.1:{faulty_server['port']}/fhir")
    _one_of_each(fhir, data, [e["resourceType"] for e in summary["entries"]])


def test_connection_cut_with_every_retry_failing_queues_and_flush_delivers_exactly_one(
    faulty_server: JSON, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    proxy: FaultProxy = faulty_server["proxy"]
    proxy.faults = ["cut"] * 4  # the first attempt and all three retries
    data = fresh_plan("05-streng-kontakt")

    outbox = _queued(proxy, tmp_path, data, capsys)
    assert proxy.faults == []
    _flush_delivers_one_of_each(faulty_server, outbox, data, capsys)
