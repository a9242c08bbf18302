"""``safetyplan server start --db postgresql://…``: the URL is read strictly, and the password reaches the
server process through its environment only, never its command line, the state file or a message.

The server is the Python stand-in of ``tests/test_server_cli.py`` (``_server_command`` is the seam), which here
also does what the launcher does with the password file (read it once, delete it) and writes down what it got; HAPI on a real PostgreSQL is ``tests/integration/test_hapi_postgres.py``.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_server_cli import STAND_IN, _use_command

from fhir_safetyplan import exitcodes, hapi_database, local_hapi
from fhir_safetyplan.cli import main
from fhir_safetyplan.errors import ConfigError

SECRET = "s3cr3t-pa55"

#: the stand-in HAPI of test_server_cli; before it serves, it does what the launcher does with the password file
#: (reads it once, deletes it) and writes down (in the file its second argument names) its argv, the password and
#: the file's mode
RECORDING_STAND_IN = (
    r"""
import json, os, sys
record = sys.argv[2]
given = [a.split("=", 1)[1] for a in sys.argv if a.startswith("--safetyplan.jdbc-password-file=")]
password = mode = None
if given:
    mode = oct(os.stat(given[0]).st_mode & 0o777)
    with open(given[0]) as secret:
        password = secret.readline().rstrip("\n")
    os.unlink(given[0])
with open(record, "w") as out:
    json.dump({"argv": sys.argv, "password": password, "mode": mode}, out)
"""
    + STAND_IN
)

#: what the launcher does when PostgreSQL refuses it: one line, exit 7 (Launcher.java)
REFUSED_STAND_IN = (
    "import sys; print('Caused by: org.postgresql.util.PSQLException: FATAL: ...'); "
    "print('safetyplan-hapi: cannot open the database jdbc:postgresql://127.0.0.1:5432/hapi as user hapi: "
    'FATAL: password authentication failed for user "hapi"\'); sys.exit(7)'
)


@pytest.fixture
def listening() -> Iterator[int]:
    """A port on 127.0.0.1 that accepts TCP connections (as PostgreSQL's would), for the reachability check."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield int(server.getsockname()[1])


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "state"
    yield path
    local_hapi.stop(path, timeout=5)


def _start(state_dir: Path, db: str, *more: str) -> int:
    """``safetyplan server start`` on ``db``; its exit code."""
    return main(["server", "start", "--state-dir", str(state_dir), "--db", db, *more])


@pytest.fixture
def recording(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """``server start`` runs RECORDING_STAND_IN; the file where it writes down what it got (none: not started)."""
    record = tmp_path / "seen.json"
    _use_command(monkeypatch, RECORDING_STAND_IN, str(record))
    return record


@pytest.fixture
def refusing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """``server start`` runs REFUSED_STAND_IN: the launcher the database turns away."""
    _use_command(monkeypatch, REFUSED_STAND_IN, str(tmp_path / "unused"))


# ------------------------------------------------------------------------------------------- the URL


def test_a_postgresql_url_becomes_a_jdbc_url_and_a_user_with_the_password_kept_apart() -> None:
    db = hapi_database.parse(f"postgresql://hapi:{SECRET}@db.example:6543/fhir?sslmode=require")
    assert db.jdbc_url == "jdbc:postgresql://db.example:6543/fhir?sslmode=require"
    assert db.launcher_args(Path("/state/hapi-db-password")) == [
        "--safetyplan.jdbc-url=jdbc:postgresql://db.example:6543/fhir?sslmode=require",
        "--safetyplan.jdbc-username=hapi",
        "--safetyplan.jdbc-password-file=/state/hapi-db-password",
    ]
    assert db.password == SECRET
    assert db.display == "postgresql://hapi@db.example:6543/fhir?sslmode=require"
    assert SECRET not in repr(db)


def test_percent_encoded_parts_are_decoded_the_default_port_is_5432_and_ipv6_hosts_keep_brackets() -> None:
    db = hapi_database.parse("postgres://h%40pi:p%2Fw%3A@[::1]/my%20db")
    assert (db.user, db.password, db.host, db.port, db.name) == ("h@pi", "p/w:", "::1", 5432, "my db")
    assert db.jdbc_url == "jdbc:postgresql://[::1]:5432/my%20db"


def test_a_password_given_apart_wins_over_the_url_and_a_url_may_have_none(tmp_path: Path) -> None:
    assert hapi_database.parse("postgresql://hapi:other@h/db", SECRET).password == SECRET
    no_password = hapi_database.parse("postgresql://hapi@h/db")
    assert no_password.password is None and no_password.write_password(tmp_path) is None


@pytest.mark.parametrize(
    ("url", "says"),
    [
        (f"mysql://hapi:{SECRET}@h/db", "is not a PostgreSQL URL"),
        (f"jdbc:postgresql://h/db?user=hapi&password={SECRET}", "is not a PostgreSQL URL"),
        ("/var/lib/hapi", "is not a PostgreSQL URL"),
        (f"postgresql://hapi:{SECRET}@h:99999/db", "the port is not a number"),
        (f"postgresql://hapi:{SECRET}@h:0/db", "the port is not a number"),
        (f"postgresql://hapi:{SECRET}@h:x/db", "the port is not a number"),
        (f"postgresql://hapi:{SECRET}@[::1/db", "not a URL that can be read"),
        (f"postgresql://hapi:{SECRET}@h/", "needs a database"),
        (f"postgresql://:{SECRET}@h/db", "needs a user"),
        (f"postgresql://hapi:{SECRET}@h/db/more", "one database name"),
        (f"postgresql://hapi@h/db?password={SECRET}", "not in its query"),
        (f"postgresql://hapi:{SECRET}@h/db?currentSchema=x", "unknown option currentSchema"),
        (f"postgresql://hapi:{SECRET}@h/db?sslmode=maybe", "sslmode must be one of"),
    ],
)
def test_a_bad_url_is_a_config_error_saying_what_is_wrong_and_never_the_password(url: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says) as caught:
        hapi_database.parse(url)
    assert SECRET not in str(caught.value)
    assert caught.value.exit_code == exitcodes.CONFIG


# ------------------------------------------------------------------------------------------- starting


def test_start_hands_the_password_over_in_a_private_file_read_once_and_records_the_url_without_it(
    recording: Path, state_dir: Path, listening: int
) -> None:
    url = f"postgresql://hapi:{SECRET}@127.0.0.1:{listening}/fhir"

    info = local_hapi.start(state_dir=state_dir, timeout=30, db=url)

    seen = json.loads(recording.read_text())
    assert seen["password"] == SECRET and seen["mode"] == "0o600"
    assert SECRET not in " ".join(seen["argv"])
    assert not (state_dir / hapi_database.PASSWORD_FILE).exists()
    assert f"--safetyplan.jdbc-url=jdbc:postgresql://127.0.0.1:{listening}/fhir" in seen["argv"]
    assert SECRET not in Path(f"/proc/{info.pid}/cmdline").read_text()
    assert info.database == f"postgresql://hapi@127.0.0.1:{listening}/fhir"
    assert SECRET not in (state_dir / local_hapi.STATE_FILE).read_text()
    assert local_hapi.status(state_dir) == info


def test_cli_reads_the_password_from_a_file_and_never_prints_it(
    recording: Path, state_dir: Path, tmp_path: Path, listening: int, capsys: pytest.CaptureFixture[str]
) -> None:
    secret_file = tmp_path / "pw"
    secret_file.write_text(SECRET + "\n")
    db = f"postgresql://hapi@127.0.0.1:{listening}/fhir"
    assert _start(state_dir, db, "--db-password-file", str(secret_file)) == exitcodes.OK
    assert json.loads(recording.read_text())["password"] == SECRET
    assert main(["server", "status", "--state-dir", str(state_dir)]) == exitcodes.OK
    out = capsys.readouterr()
    assert db in out.err and SECRET not in out.out + out.err


@pytest.mark.usefixtures("recording")
def test_starting_again_on_another_database_is_refused_while_one_runs(
    state_dir: Path, listening: int
) -> None:
    local_hapi.start(state_dir=state_dir, timeout=30, db=f"postgresql://hapi@127.0.0.1:{listening}/a")
    with pytest.raises(ConfigError, match="already running"):
        local_hapi.start(state_dir=state_dir, timeout=30)


def test_a_database_nobody_listens_on_is_a_config_error_before_the_server_starts(
    recording: Path, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as closed:
        port = closed.getsockname()[1]
    assert _start(state_dir, f"postgresql://u:{SECRET}@127.0.0.1:{port}/x") == exitcodes.CONFIG
    err = capsys.readouterr().err
    assert f"nothing answers at 127.0.0.1:{port}" in err and SECRET not in err
    assert not recording.exists()  # no server process was started


@pytest.mark.usefixtures("refusing")
def test_a_database_that_refuses_the_server_exits_7_with_postgresqls_reason_not_a_stack_trace(
    state_dir: Path, listening: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _start(state_dir, f"postgresql://hapi:{SECRET}@127.0.0.1:{listening}/hapi") == exitcodes.CONFIG
    err = capsys.readouterr().err
    assert (
        "could not open its database: cannot open the database jdbc:postgresql://127.0.0.1:5432/hapi" in err
    )
    assert 'password authentication failed for user "hapi"' in err
    assert "PSQLException" not in err and SECRET not in err
    assert local_hapi.status(state_dir) is None


def test_a_password_file_without_db_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["server", "start", "--state-dir", str(tmp_path), "--db-password-file", "pw"]) == exitcodes.USAGE
    )
    assert "--db-password-file goes with --db" in capsys.readouterr().err


def test_an_unreadable_or_empty_password_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read it"):
        hapi_database.read_password_file(str(tmp_path / "missing"))
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigError, match="first line is empty"):
        hapi_database.read_password_file(str(tmp_path / "empty"))
