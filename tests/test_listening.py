"""``serve`` and ``preview`` take their address before anything starts: an address that cannot be had is a
configuration error (exit 7) that names it, never uvicorn's start-up failure (exit 3, which means "rejected by
the server") after the app has started; and the service serves on the socket it bound."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from fhir_safetyplan import cli, exitcodes
from fhir_safetyplan.errors import ConfigError
from fhir_safetyplan.service import listening


@pytest.fixture
def taken_port() -> object:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


@pytest.mark.parametrize("command", ["serve", "preview"])
def test_a_port_another_process_listens_on_is_a_configuration_error(
    command: str, taken_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main([command, "--port", str(taken_port)]) == exitcodes.CONFIG
    err = capsys.readouterr().err
    assert f"port {taken_port}" in err and "already in use" in err and "choose another --port" in err
    assert "Traceback" not in err


def test_an_address_this_machine_does_not_have_is_a_configuration_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # 203.0.113.0/24 is TEST-NET-3 (RFC 5737): never an address of this machine
    assert cli.main(["serve", "--host", "203.0.113.7", "--port", "8000"]) == exitcodes.CONFIG
    err = capsys.readouterr().err
    assert "203.0.113.7" in err and "no such address" in err and "Traceback" not in err


def test_port_zero_binds_a_free_port_and_the_socket_listens() -> None:
    sock = listening.bind("127.0.0.1", 0)
    try:
        port = sock.getsockname()[1]
        assert port > 0
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass  # accepted by the listen backlog: the port is ours before uvicorn starts
    finally:
        sock.close()


def test_a_port_out_of_range_is_refused_with_the_address() -> None:
    with pytest.raises(ConfigError, match=re.escape("Cannot listen on 127.0.0.1 port 70000")):
        listening.bind("127.0.0.1", 70000)


def test_serve_answers_on_the_socket_it_bound_and_shuts_down_gracefully_on_sigterm(tmp_path: Path) -> None:
    probe = listening.bind("127.0.0.1", 0)
    port = probe.getsockname()[1]
    probe.close()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "SAFETYPLAN_SERVICE_TOKENS": "listen-test-0123456789",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "fhir_safetyplan", "serve", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
                    assert answer.status == 200
                    break
            except OSError:
                assert proc.poll() is None, proc.communicate()[1]
                assert time.monotonic() < deadline, "serve did not answer within 60 s"
                time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    # uvicorn shuts down gracefully and then ends by the signal it caught, as a process manager expects
    assert proc.returncode in (exitcodes.OK, -signal.SIGTERM), err
    assert "Application shutdown complete" in err
    assert f"127.0.0.1:{port}" in err and "Traceback" not in err
