"""The PostgreSQL outbox with several processes at once, and what it says when it cannot be used.

The behaviour both stores share (states, keys, revisions, leases) is tested against both in ``test_outbox.py``,
``test_outbox_patients.py``, ``test_outcomes.py`` and ``test_deliver.py`` (the ``outbox_at`` fixture). Here: what
only a database shared by processes on several hosts has to get right, on a real PostgreSQL, with real processes.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pg_cluster
import psycopg
import pytest
from test_outbox import SERVER, bundle

from fhir_safetyplan import cli, exitcodes
from fhir_safetyplan.delivery.outbox_postgres import SCHEMA_VERSION, PostgresOutbox
from fhir_safetyplan.delivery.store import OutboxUrl, open_outbox, redact
from fhir_safetyplan.errors import ConfigError

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def start(script: str, *args: str) -> subprocess.Popen[str]:
    """A real process running ``script`` (it gets ``args`` as sys.argv[1:])."""
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_line(proc: subprocess.Popen[str], expected: str) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    assert line == expected, f"got {line!r}; stderr: {proc.stderr.read() if proc.stderr else ''}"


def finish(procs: list[subprocess.Popen[str]]) -> list[str]:
    outs = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        outs.append(out)
    return outs


# ---- several processes ------------------------------------------------------------------------------

_CLAIMER = """
import sys, time
from pathlib import Path
from fhir_safetyplan.delivery.store import open_outbox
box = open_outbox(sys.argv[1])
print("ready", flush=True)
while not Path(sys.argv[2]).exists():
    time.sleep(0.005)
for entry in box.queue(sys.argv[3]):
    got = box.claim(entry.plan_key, sys.argv[3], lease_seconds=600)
    if got is not None:
        print(got.seq, flush=True)
"""


def test_processes_claiming_from_one_queue_never_get_the_same_entry(postgres_db: str, tmp_path: Path) -> None:
    with open_outbox(postgres_db) as box:
        seqs = {box.put(f"s{i}", bundle(str(i)), SERVER).seq for i in range(150)}
    go = tmp_path / "go"
    procs = [start(_CLAIMER, postgres_db, str(go), SERVER) for _ in range(3)]
    for proc in procs:
        wait_for_line(proc, "ready")
    go.touch()  # all three walk the same queue, in the same order, at the same time
    claimed = [{int(x) for x in out.split()} for out in finish(procs)]
    assert sum(len(c) for c in claimed) == len(seqs)  # nobody got an entry another one got
    assert set().union(*claimed) == seqs  # and every entry was taken by someone


_HOLDER = """
import sys, time
from fhir_safetyplan.delivery.store import open_outbox
box = open_outbox(sys.argv[1], lease_seconds=float(sys.argv[3]))
for entry in box.queue(sys.argv[2]):
    assert box.claim(entry.plan_key, sys.argv[2], box.lease_seconds) is not None
print("claimed", flush=True)
time.sleep(600)  # killed while sending
"""


def test_entries_leased_by_a_killed_process_are_taken_by_another_after_the_lease_expires(
    postgres_db: str,
) -> None:
    with open_outbox(postgres_db) as box:
        for i in range(5):
            box.put(f"s{i}", bundle(str(i)), SERVER)
        holder = start(_HOLDER, postgres_db, SERVER, "3")
        wait_for_line(holder, "claimed")
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
        # Its leases outlive it (it may be on another host: only the expiry can tell)...
        assert box.claim("s0", SERVER) is None
        deadline = time.monotonic() + 30
        taken: set[str] = set()
        while len(taken) < 5 and time.monotonic() < deadline:
            for i in range(5):
                if f"s{i}" not in taken and box.claim(f"s{i}", SERVER) is not None:
                    taken.add(f"s{i}")
            time.sleep(0.2)
        # ...and once they expire another process takes every entry: nothing was lost with the holder.
        assert taken == {f"s{i}" for i in range(5)}
        assert box.counts()["pending"] == 5
        assert {e.lease_owner for e in box.list()} == {box.owner}


_PUTTER = """
import sys, time
from pathlib import Path
from fhir_safetyplan.delivery.store import open_outbox
box = open_outbox(sys.argv[1])
print("ready", flush=True)
while not Path(sys.argv[2]).exists():
    time.sleep(0.005)
b = {"resourceType": "Bundle", "type": "transaction", "entry": []}
for i in range(25):
    box.put("same-plan", b, sys.argv[3], lease_seconds=None if i % 2 else 60)
"""


def test_concurrent_puts_of_one_plan_are_one_entry_with_every_revision_counted(
    postgres_db: str, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    open_outbox(postgres_db).close()
    procs = [start(_PUTTER, postgres_db, str(go), SERVER) for _ in range(4)]
    for proc in procs:
        wait_for_line(proc, "ready")
    go.touch()
    finish(procs)
    with open_outbox(postgres_db) as box:
        (entry,) = box.list()
        assert entry.status == "pending" and entry.revision == 100


_OPENER = """
import sys, time
from pathlib import Path
print("ready", flush=True)
while not Path(sys.argv[2]).exists():
    time.sleep(0.002)
from fhir_safetyplan.delivery.store import open_outbox
open_outbox(sys.argv[1]).close()
"""


def test_processes_starting_at_once_on_a_new_database_create_the_schema_once(
    postgres_db: str, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    procs = [start(_OPENER, postgres_db, str(go)) for _ in range(4)]
    for proc in procs:
        wait_for_line(proc, "ready")
    go.touch()
    finish(procs)  # none failed on a half-made schema
    with psycopg.connect(postgres_db) as conn:
        assert conn.execute("SELECT version FROM safetyplan_outbox_schema").fetchall() == [(SCHEMA_VERSION,)]


def test_a_table_of_that_name_that_is_not_ours_is_refused_untouched(postgres_db: str) -> None:
    with psycopg.connect(postgres_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE safetyplan_outbox (id int)")
        conn.execute("INSERT INTO safetyplan_outbox VALUES (1)")
    with pytest.raises(ConfigError, match="did not make"):
        open_outbox(postgres_db)
    with psycopg.connect(postgres_db) as conn:
        assert conn.execute("SELECT * FROM safetyplan_outbox").fetchall() == [(1,)]


def test_an_outbox_from_a_newer_version_is_refused(postgres_db: str) -> None:
    open_outbox(postgres_db).close()
    with psycopg.connect(postgres_db, autocommit=True) as conn:
        conn.execute("INSERT INTO safetyplan_outbox_schema (version) VALUES (%s)", (SCHEMA_VERSION + 1,))
    with pytest.raises(ConfigError, match="newer fhir-safetyplan"):
        open_outbox(postgres_db)


def test_times_are_the_databases_and_leases_expire_by_its_clock(postgres_db: str) -> None:
    with open_outbox(postgres_db) as box:
        box.put("s1", bundle("1"), SERVER, lease_seconds=30)
        (entry,) = box.list()
        assert entry.created_at.endswith("+00:00") and entry.lease_until is not None
        with psycopg.connect(postgres_db) as conn:
            (left,) = conn.execute(
                "SELECT extract(epoch FROM lease_until - now()) FROM safetyplan_outbox"
            ).fetchone()  # type: ignore[misc]
        assert 25 < float(left) <= 30


# ---- the URL: where it is taken, and its password never shown -------------------------------------------


def wrong_password_url(postgres: pg_cluster.Cluster) -> str:
    return f"postgresql://{pg_cluster.SUPERUSER}:Hemmelig-Passord-42@127.0.0.1:{postgres.port}/safetyplan"


def test_a_refused_password_is_a_config_error_that_never_shows_the_password(
    postgres: pg_cluster.Cluster,
) -> None:
    url = wrong_password_url(postgres)
    with pytest.raises(ConfigError) as caught:
        open_outbox(url)
    message = str(caught.value)
    assert "Hemmelig-Passord-42" not in message
    assert f"127.0.0.1:{postgres.port}/safetyplan" in message and "password" in message
    assert "Hemmelig-Passord-42" not in repr(OutboxUrl(url)) + str(OutboxUrl(url)) + redact(url)
    assert "Hemmelig" not in redact("postgresql://u@h/db?password=Hemmelig&sslmode=require")


def test_the_password_is_in_no_repr_listing_or_log(
    postgres_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    password = postgres_db.split(":")[2].split("@")[0]
    caplog.set_level("DEBUG")
    with open_outbox(postgres_db) as box:
        box.put("s1", bundle("1"), SERVER)
        shown = repr(box) + box.location + json.dumps([e.as_dict() for e in box.list()])
    from fhir_safetyplan.service.settings import settings_from_env

    settings = settings_from_env(
        {"SAFETYPLAN_OUTBOX": postgres_db, "SAFETYPLAN_SERVICE_ALLOW_ANONYMOUS": "1"}
    )
    shown += repr(settings) + str(settings.outbox)
    assert password not in shown + caplog.text
    assert isinstance(box, PostgresOutbox) and "127.0.0.1" in shown


def test_the_cli_takes_a_postgresql_url_and_never_prints_its_password(
    postgres_db: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("fhir_safetyplan.client._retry.time.sleep", lambda s: None)
    password = postgres_db.split(":")[2].split("@")[0]
    plan = EXAMPLES / "01-alt-pa-plass" / "answers.json"
    down = f"http://127.0.0.1:{pg_cluster.free_port()}/fhir"  # nothing listens: the plan is queued
    code = cli.main(["push", str(plan), "--server", down, "--no-check", "--outbox", postgres_db])
    out, err = capsys.readouterr()
    assert code == exitcodes.QUEUED, err
    assert json.loads(out)["status"] == "queued"
    monkeypatch.setenv("SAFETYPLAN_OUTBOX", postgres_db)  # the environment's outbox, the same database
    assert cli.main(["outbox", "list"]) == exitcodes.OK
    listed, err2 = capsys.readouterr()
    assert [json.loads(line)["status"] for line in listed.splitlines()] == ["pending"]
    assert password not in out + err + listed + err2
    assert "Traceback" not in err + err2
    assert list(tmp_path.iterdir()) == []  # no SQLite file, no folder named postgresql:


def test_an_unreachable_postgresql_outbox_exits_7_and_makes_no_folder(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    url = f"postgresql://nobody:Hemmelig-42@127.0.0.1:{pg_cluster.free_port()}/x"
    assert cli.main(["outbox", "list", "--outbox", url]) == exitcodes.CONFIG
    out, err = capsys.readouterr()
    assert "cannot be used" in out + err and "Hemmelig-42" not in out + err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("url", ["mysql://u@h/db", "sqlite:///tmp/x.sqlite", "https://example.org/outbox"])
def test_another_url_scheme_is_a_clear_config_error_not_a_file_path(
    url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli.main(["outbox", "list", "--outbox", url]) == exitcodes.CONFIG
    out, err = capsys.readouterr()
    assert "postgresql://" in out + err and "file path" in out + err
    assert list(tmp_path.iterdir()) == []


# ---- outbox check / export: a PostgreSQL outbox, and moving a queue between the stores ------------------


def test_check_reads_a_postgresql_outbox_and_names_an_unreadable_row(
    postgres_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with open_outbox(postgres_db) as box:
        for i in range(3):
            box.put(f"s{i}", bundle(str(i)), SERVER)
        box.mark_delivered("s0", [])
    assert cli.main(["outbox", "check", "--outbox", postgres_db]) == exitcodes.OK
    out, _ = capsys.readouterr()
    assert json.loads(out)["readable"] == {"delivered": 1, "pending": 2}
    with psycopg.connect(postgres_db, autocommit=True) as conn:
        conn.execute("UPDATE safetyplan_outbox SET bundle = 'garbage{' WHERE submission_id = 's2'")
    assert cli.main(["outbox", "check", "--outbox", postgres_db]) == exitcodes.CONFIG
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert report["unreadable"] == ["seq 3 (submission s2): bundle"] and report["readable"]["pending"] == 1
    assert postgres_db.split(":")[2].split("@")[0] not in out + err  # the password


def test_a_queue_moves_from_sqlite_to_postgresql_and_back_keeping_what_a_person_must_decide(
    postgres_db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = tmp_path / "old.sqlite"
    with open_outbox(old) as box:
        for i in range(4):
            box.put(f"s{i}", bundle(str(i)), SERVER)
        box.mark_delivered("s0", [])
        box.mark_rejected("s1", "WriteConflict (HTTP 412)")  # held for a person: only a requeue resends it
    assert cli.main(["outbox", "export", "--outbox", str(old), "--to", postgres_db]) == exitcodes.OK
    _, err = capsys.readouterr()
    assert "outbox flush --outbox postgresql://" in err
    with open_outbox(postgres_db) as box:
        moved = {e.submission_id: (e.status, e.last_error) for e in box.list()}
        assert moved == {
            "s1": ("rejected", "WriteConflict (HTTP 412)"),
            "s2": ("pending", None),
            "s3": ("pending", None),
        }
        pending = box.pending()
        assert [e.bundle for e in pending] == [bundle("2"), bundle("3")]
    # Into a database that already holds an outbox with entries: refused, nothing added.
    assert cli.main(["outbox", "export", "--outbox", str(old), "--to", postgres_db]) == exitcodes.CONFIG
    assert "empty outbox only" in "".join(capsys.readouterr())
    back = tmp_path / "back.sqlite"
    assert cli.main(["outbox", "export", "--outbox", postgres_db, "--to", str(back)]) == exitcodes.OK
    with open_outbox(back) as box:
        assert {e.submission_id: e.status for e in box.list()} == {
            "s1": "rejected",
            "s2": "pending",
            "s3": "pending",
        }


# ---- the database goes away and comes back -------------------------------------------------------------


def _allow_connections(postgres: pg_cluster.Cluster, url: str, allowed: bool) -> None:
    database = url.rsplit("/", 1)[1]
    with psycopg.connect(postgres.url_of("postgres"), autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS {str(allowed).lower()}')
        if not allowed:  # and drop the sessions already open: as if the database server had gone
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (database,)
            )


def test_the_service_answers_503_while_its_postgresql_outbox_is_unreachable_and_recovers(
    postgres: pg_cluster.Cluster, postgres_db: str
) -> None:
    import requests
    import responses
    from fastapi.testclient import TestClient

    from fhir_safetyplan.delivery.store import outbox_spec
    from fhir_safetyplan.service import ServiceSettings, Tokens, create_app

    token = "postgres-outage-token-0123456789"
    upstream = "http://upstream.test/fhir"
    settings = ServiceSettings(
        upstream=upstream,
        outbox=outbox_spec(postgres_db),
        tokens=Tokens([token]),
        flush_interval=0,
        upstream_retries=0,
    )
    plan = json.loads((EXAMPLES / "01-alt-pa-plass" / "answers.json").read_text(encoding="utf-8"))
    auth = {"Authorization": f"Bearer {token}"}
    with (
        responses.RequestsMock(assert_all_requests_are_fired=False) as rsps,
        TestClient(create_app(settings), raise_server_exceptions=False) as client,
    ):
        rsps.add(responses.POST, upstream, body=requests.ConnectionError("refused"))
        assert client.post("/QuestionnaireResponse", json=plan, headers=auth).status_code == 202
        _allow_connections(postgres, postgres_db, False)
        try:
            down = client.post("/QuestionnaireResponse", json={**plan, "submissionId": "b"}, headers=auth)
            health = client.get("/healthz").json()
        finally:
            _allow_connections(postgres, postgres_db, True)
        assert down.status_code == 503 and down.headers["Retry-After"]
        assert "outbox cannot be reached" in down.text
        assert postgres_db.rsplit("/", 1)[1] not in down.text and "127.0.0.1" not in down.text
        assert health["outbox"]["problem"] == "OutboxUnavailable"
        # Back: the same replica reconnects by itself, and the plan sent again is kept.
        again = client.post("/QuestionnaireResponse", json={**plan, "submissionId": "b"}, headers=auth)
        assert again.status_code == 202
        assert client.get("/healthz").json()["outbox"]["pending"] == 2


def test_serve_with_an_unreachable_postgresql_outbox_exits_7_before_listening(tmp_path: Path) -> None:
    port = pg_cluster.free_port()
    url = f"postgresql://nobody:Hemmelig-42@127.0.0.1:{pg_cluster.free_port()}/x"
    done = subprocess.run(
        [sys.executable, "-m", "fhir_safetyplan", "serve", "--port", str(port), "--outbox", url],
        env={"PATH": "/usr/bin:/bin", "SAFETYPLAN_SERVICE_TOKENS": "serve-outage-token-0123456789"},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == exitcodes.CONFIG, done.stderr
    assert "cannot be used" in done.stderr and "Traceback" not in done.stderr
    assert "Hemmelig-42" not in done.stdout + done.stderr


def test_a_user_with_only_the_privileges_the_readme_names_can_run_the_outbox(
    postgres: pg_cluster.Cluster, postgres_db: str
) -> None:
    open_outbox(postgres_db).close()  # the tables' owner opens it once
    database = postgres_db.rsplit("/", 1)[1]
    role = f"sender_{database}"
    with psycopg.connect(postgres_db, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'sender-pw-0123456789'")
        conn.execute(f'GRANT CONNECT ON DATABASE "{database}" TO {role}')
        conn.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
        conn.execute(
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON safetyplan_outbox, safetyplan_outbox_schema TO {role}"
        )
        conn.execute(f"REVOKE CREATE ON SCHEMA public FROM {role}, PUBLIC")
    url = f"postgresql://{role}:sender-pw-0123456789@127.0.0.1:{postgres.port}/{database}"
    with open_outbox(url) as box:
        entry = box.put("s1", bundle("1"), SERVER, lease_seconds=60)
        assert box.mark_delivered(entry.plan_key, [], server_url=SERVER, revision=entry.revision)
        assert box.purge("delivered") == 1
    # The first opening of a new database needs CREATE on the schema: without it, a message that says so.
    fresh = postgres.create_database(f"{database}_new").rsplit("/", 1)[1]
    with pytest.raises(ConfigError, match="CREATE on the schema") as caught:
        open_outbox(f"postgresql://{role}:sender-pw-0123456789@127.0.0.1:{postgres.port}/{fresh}")
    assert "sender-pw" not in str(caught.value)


@pytest.mark.parametrize("scheme", ["postgres", "POSTGRESQL", "PostgreSQL"])
def test_libpqs_other_scheme_and_any_case_of_it_name_the_same_outbox(postgres_db: str, scheme: str) -> None:
    with open_outbox(postgres_db) as box:
        box.put("s1", bundle("1"), SERVER)
    other = scheme + postgres_db[len("postgresql") :]
    with open_outbox(other) as box:
        assert [e.submission_id for e in box.list()] == ["s1"]
        assert box.location.startswith(scheme.lower() + "://")


def test_without_the_postgres_extra_a_url_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if psycopg were not installed
    monkeypatch.delitem(sys.modules, "fhir_safetyplan.delivery.outbox_postgres", raising=False)
    with pytest.raises(ConfigError, match=r"fhir-safetyplan\[postgres\]") as caught:
        open_outbox("postgresql://u:Hemmelig-42@127.0.0.1:1/x")
    assert "Hemmelig-42" not in str(caught.value)


def test_check_of_a_database_without_an_outbox_says_so_and_creates_nothing(
    postgres_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["outbox", "check", "--outbox", postgres_db]) == exitcodes.CONFIG
    assert "no outbox in the database" in "".join(capsys.readouterr())
    with psycopg.connect(postgres_db) as conn:
        assert conn.execute("SELECT to_regclass('safetyplan_outbox')").fetchone() == (None,)
