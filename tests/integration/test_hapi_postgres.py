"""HAPI on PostgreSQL (``safetyplan server start --db postgresql://…``), the configuration HAPI users run in
production: a plan pushed to it reads back as sent and is stored in PostgreSQL, and the database password is on
no command line, in no environment and in no file or log the server leaves.

The server is the session's ``hapi_on_postgres`` (a database of its own in the ``postgres`` fixture's cluster);
``test_cluster_postgres.py`` stops and restarts the same server under load.
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import Any

import psycopg
import pytest

from fhir_safetyplan import exitcodes, hapi_database, local_hapi
from fhir_safetyplan.cli import main

from .conftest import Fhir, HapiOnPostgres
from .test_delivery_hapi import comparable, expected_on_server, fresh_plan, push, write

JSON = dict[str, Any]


def test_a_plan_pushed_to_hapi_on_postgresql_reads_back_as_sent_and_is_stored_in_postgresql(
    hapi_on_postgres: HapiOnPostgres, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fhir_safetyplan import pipeline
    from fhir_safetyplan.document import DocumentContext

    base_url = hapi_on_postgres.ready()
    data = fresh_plan("05-streng-kontakt")
    sent = pipeline.build_bundle(data, DocumentContext(create_patient=True))

    code, summary, err = push(capsys, str(write(tmp_path, data)), "--server", base_url, "--create-patient")
    assert code == exitcodes.OK, err
    assert summary["status"] == "delivered"

    fhir = Fhir(base_url)
    for ref, expected in expected_on_server(sent, summary).items():
        assert comparable(fhir.get(ref).json()) == comparable(expected), ref
    with psycopg.connect(hapi_on_postgres.db) as conn:
        stored = conn.execute(
            "SELECT res_type, fhir_id FROM hfj_resource WHERE fhir_id = ANY(%s)",
            ([e["id"] for e in summary["entries"]],),
        ).fetchall()
    assert sorted(stored) == sorted((e["resourceType"], e["id"]) for e in summary["entries"])


def test_the_database_password_is_on_no_command_line_and_in_no_file_the_server_leaves(
    hapi_on_postgres: HapiOnPostgres,
) -> None:
    hapi_on_postgres.ready()
    password = urllib.parse.urlsplit(hapi_on_postgres.db).password
    assert password
    info = local_hapi.status(hapi_on_postgres.state)
    assert info is not None
    assert password not in Path(f"/proc/{info.pid}/cmdline").read_text()
    assert password not in Path(f"/proc/{info.pid}/environ").read_text()
    assert "--safetyplan.jdbc-password-file=" in Path(f"/proc/{info.pid}/cmdline").read_text()
    assert not (hapi_on_postgres.state / hapi_database.PASSWORD_FILE).exists()  # read once and deleted
    for left in hapi_on_postgres.state.iterdir():
        assert password not in left.read_text(errors="replace"), left
    assert info.database.startswith("postgresql://safetyplan@127.0.0.1:")


def test_a_wrong_password_exits_7_with_postgresqls_reason_and_no_stack_trace(
    hapi_on_postgres: HapiOnPostgres, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parts = urllib.parse.urlsplit(hapi_on_postgres.db)
    wrong = parts._replace(netloc=f"{parts.username}:not-the-password@{parts.hostname}:{parts.port}")
    argv: list[Any] = ["server", "start", "--state-dir", str(tmp_path), "--db", wrong.geturl()]

    assert main(argv) == exitcodes.CONFIG
    err = capsys.readouterr().err
    assert f'password authentication failed for user "{parts.username}"' in err
    assert "not-the-password" not in err
    assert "Exception" not in err and "\tat " not in err
    assert local_hapi.status(tmp_path) is None


def test_hapis_log_never_quotes_an_identity_number_when_two_senders_race(
    hapi_on_postgres: HapiOnPostgres,
) -> None:
    """Two transactions conditionally creating one Patient at once: HAPI refuses one (409), and Hibernate and
    HAPI's REST error log would name the unique key it broke, ``Patient?identifier=<system>|<number>``."""
    from concurrent.futures import ThreadPoolExecutor

    from fhir_safetyplan import pipeline
    from fhir_safetyplan.document import DocumentContext

    base_url = hapi_on_postgres.ready()
    numbers, statuses = [], []
    for _ in range(10):  # a race is likely, not certain, in one round: go on until HAPI refused one
        data = fresh_plan("01-alt-pa-plass")
        numbers.append(data["patient"]["fnr"])
        bundle = pipeline.build_bundle(data, DocumentContext(create_patient=True))
        with ThreadPoolExecutor(max_workers=3) as pool:
            statuses += [r.status_code for r in pool.map(_send, [base_url] * 3, [bundle] * 3)]
        if 409 in statuses:
            break
    assert 409 in statuses, statuses
    hapi_log = (hapi_on_postgres.state / local_hapi.LOG_FILE).read_text(errors="replace")
    assert not [n for n in numbers if n in hapi_log]


def _send(base_url: str, bundle: JSON) -> Any:
    return Fhir(base_url).transaction(bundle)  # a session of its own per thread
