"""Integration tests against a real HAPI FHIR JPA server.

One server per pytest session: the one named by ``SAFETYPLAN_HAPI_URL`` (e.g. ``http://127.0.0.1:8080/fhir``)
if set, else our launcher in ``hapi/``, built if needed and started on a free loopback port, stopped at the
end. Every test here is marked ``integration`` (``pytest -m "not integration"`` leaves them out).

When ``CI`` is set these tests never skip: a server that cannot be built or started fails the run. Elsewhere
they skip, with the reason, only when Java or Maven is missing.

Tests share one server and its database, so each test makes its own data unique with
:func:`fresh_identifier` instead of relying on an empty server. The server keeps HAPI's default search
cache (60 s), as the public sandbox does: read with ``Cache-Control: no-cache`` (the ``fhir`` fixture does).
"""

from __future__ import annotations

import os
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from _needs import unavailable

from fhir_safetyplan.settings import hapi_toolchain

#: the local HAPI launcher and Java, configured as for ``safetyplan server`` (JAVA_HOME, SAFETYPLAN_HAPI_*)
TOOLCHAIN = hapi_toolchain(os.environ)

JSON = dict[str, Any]
FHIR_JSON = "application/fhir+json"
_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test under tests/integration as ``integration``."""
    for item in items:
        if _HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.integration)


def fresh_identifier(prefix: str = "t") -> str:
    """A new value unique to one test: letters and digits, usable as a resource id and an identifier value.

    Starts with a letter, so HAPI accepts it as a client-assigned id (purely numeric ids are refused).
    """
    return f"{prefix}{uuid.uuid4().hex[:16]}"


class Fhir:
    """A minimal FHIR JSON client for test set-up and checks (not the client under test)."""

    def __init__(self, base_url: str) -> None:
        self.base = base_url.rstrip("/")
        self.session = requests.Session()
        self.session.headers.update({"Accept": FHIR_JSON, "Cache-Control": "no-cache"})

    def url(self, path: str) -> str:
        """Absolute URL of ``path`` (relative to the FHIR base)."""
        return f"{self.base}/{path.lstrip('/')}" if path else self.base

    def get(self, path: str, **params: str) -> requests.Response:
        """GET ``path`` with query parameters (no cached search results)."""
        return self.session.get(self.url(path), params=params or None, timeout=60)

    def search(self, resource_type: str, **params: str) -> list[JSON]:
        """The resources matching a search (first page, up to 100); fails the test on a non-200."""
        response = self.get(resource_type, _count="100", **params)
        assert response.status_code == 200, response.text
        return [entry["resource"] for entry in response.json().get("entry", []) if "resource" in entry]

    def post(self, path: str, body: JSON, headers: dict[str, str] | None = None) -> requests.Response:
        """POST a JSON body to ``path`` ("" is the base, e.g. for a transaction)."""
        return self.session.post(
            self.url(path), json=body, headers={"Content-Type": FHIR_JSON, **(headers or {})}, timeout=120
        )

    def put(self, resource: JSON) -> requests.Response:
        """PUT ``resource`` at ``Type/id`` (create or update with a client-assigned id)."""
        path = f"{resource['resourceType']}/{resource['id']}"
        return self.session.put(
            self.url(path), json=resource, headers={"Content-Type": FHIR_JSON}, timeout=120
        )

    def transaction(self, bundle: JSON) -> requests.Response:
        """POST a transaction (or batch) Bundle to the base."""
        return self.post("", bundle)

    def validate(self, resource: JSON, profile: str | None = None) -> JSON:
        """``$validate`` ``resource`` (optionally against ``profile``); the OperationOutcome.

        HAPI answers 200 whether or not the resource is valid (errors are issues with severity error).
        """
        path = f"{resource['resourceType']}/$validate"
        if profile:
            path += "?profile=" + urllib.parse.quote(profile, safe="")
        response = self.post(path, resource)
        assert response.status_code == 200, response.text
        outcome: JSON = response.json()
        return outcome

    def upload(self, *resources: JSON) -> list[JSON]:
        """Store each resource (PUT if it has an id, else POST); return what the server stored."""
        stored: list[JSON] = []
        for resource in resources:
            if resource.get("id"):
                response = self.put(resource)
            else:
                response = self.post(resource["resourceType"], resource)
            assert response.status_code in (200, 201), (
                f"upload of {resource['resourceType']} failed: {response.status_code} {response.text[:2000]}"
            )
            stored.append(response.json())
        return stored


def _wait_for(base_url: str, timeout: float) -> None:
    from fhir_safetyplan import local_hapi

    local_hapi.wait_until_ready(base_url, timeout)


@pytest.fixture(scope="session")
def hapi_base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL (``http://127.0.0.1:PORT/fhir``) of a running HAPI FHIR R4 server for this session."""
    from fhir_safetyplan import local_hapi
    from fhir_safetyplan.errors import ConfigError, SafetyPlanError

    external = os.environ.get("SAFETYPLAN_HAPI_URL")
    if external:
        base = external.rstrip("/")
        try:
            _wait_for(base, 120.0)
        except SafetyPlanError as exc:
            pytest.fail(f"SAFETYPLAN_HAPI_URL={base} does not answer /metadata: {exc}", pytrace=False)
        yield base
        return

    try:
        local_hapi.check_tools(need_maven=local_hapi.needs_build(toolchain=TOOLCHAIN), toolchain=TOOLCHAIN)
    except ConfigError as exc:
        unavailable("the integration tests", f"no HAPI FHIR server: {exc}")

    state_dir = tmp_path_factory.mktemp("hapi-server")
    timeout = float(os.environ.get("SAFETYPLAN_HAPI_START_TIMEOUT", "300"))
    try:
        info = local_hapi.start(state_dir=state_dir, timeout=timeout, toolchain=TOOLCHAIN)
    except SafetyPlanError as exc:
        pytest.fail(f"could not start the local HAPI FHIR server: {exc}", pytrace=False)
    try:
        yield info.base_url
    finally:
        local_hapi.stop(state_dir)


@pytest.fixture(scope="session")
def fhir(hapi_base_url: str) -> Fhir:
    """A small test client on the session's server (every read bypasses HAPI's search cache)."""
    return Fhir(hapi_base_url)


@pytest.fixture
def upload(fhir: Fhir) -> Callable[..., list[JSON]]:
    """``upload(*resources)``: store resources on the server and return what it stored."""
    return fhir.upload


@pytest.fixture(scope="session")
def faulty_server(tmp_path_factory: pytest.TempPathFactory, hapi_base_url: str) -> Iterator[JSON]:
    """A dedicated HAPI server with an H2 file database (data survives a kill), and a fault proxy in front
    of it; shared by the fault tests, which may kill and restart it (``port`` follows the restart)."""
    from fhir_safetyplan import local_hapi

    from .test_faults_hapi import FaultProxy

    del hapi_base_url  # only to share the session fixture's checks (tools present, jar built)
    root = tmp_path_factory.mktemp("faulty-hapi")
    state = root / "state"
    # WRITE_DELAY=0: H2 writes each commit to its file at once. With its default (500 ms) a SIGKILL of HAPI loses
    # transactions HAPI had already answered 2xx for, and the fault matrix would count the server's lost write as ours.
    args = [f"--safetyplan.jdbc-url=jdbc:h2:file:{root / 'db'};WRITE_DELAY=0"]
    info = local_hapi.start(state_dir=state, server_args=args, timeout=300, toolchain=TOOLCHAIN)
    proxy = FaultProxy(info.port)
    ctx: JSON = {"state": state, "args": args, "port": info.port, "proxy": proxy}
    try:
        yield ctx
    finally:
        proxy.close()
        local_hapi.stop(state)


class HapiOnPostgres:
    """A HAPI server of its own on PostgreSQL (a fresh database in the session's cluster), started without
    waiting so that it boots while other work goes on; :meth:`ready` waits for it. Its data lives in
    PostgreSQL, so it survives :meth:`stop` and :meth:`start` (which keeps the port)."""

    def __init__(self, state: Path, db: str) -> None:
        self.state = state
        self.db = db
        self.port = 0
        self.start(wait=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/fhir"

    def start(self, wait: bool = True) -> None:
        from fhir_safetyplan import local_hapi

        timeout = float(os.environ.get("SAFETYPLAN_HAPI_START_TIMEOUT", "300"))
        info = local_hapi.start(
            port=self.port or None,
            state_dir=self.state,
            db=self.db,
            wait=wait,
            timeout=timeout,
            toolchain=TOOLCHAIN,
        )
        self.port = info.port

    def ready(self) -> str:
        """The base URL, once the server answers ``/metadata``."""
        from fhir_safetyplan import local_hapi

        info = local_hapi.status(self.state)
        if info is None:
            pytest.fail(f"HAPI on PostgreSQL is not running; see {self.state / local_hapi.LOG_FILE}")
        local_hapi.wait_until_ready(info.base_url, 300, info.pid, info.log_file)
        return self.base_url

    def stop(self) -> None:
        from fhir_safetyplan import local_hapi

        local_hapi.stop(self.state)


@pytest.fixture(scope="session")
def hapi_on_postgres(
    tmp_path_factory: pytest.TempPathFactory, hapi_base_url: str, postgres: Any
) -> Iterator[HapiOnPostgres]:
    """HAPI on PostgreSQL (``safetyplan server start --db postgresql://…``), for this session."""
    del hapi_base_url  # only to share the session fixture's checks (tools present, jar built)
    db = postgres.create_database(f"hapi_{uuid.uuid4().hex[:12]}")
    server = HapiOnPostgres(tmp_path_factory.mktemp("hapi-postgres"), db)
    try:
        yield server
    finally:
        server.stop()
