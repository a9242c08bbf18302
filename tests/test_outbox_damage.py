"""A damaged outbox is reported as such (exit 7: what, how many plans, how to get them out), and nothing that
is not our outbox file ever has its mode changed (issue 9 point 5)."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from pathlib import Path

import pytest
from test_outbox import SERVER, bundle

from fhir_safetyplan.cli import main
from fhir_safetyplan.delivery.outbox import Outbox, OutboxDamaged
from fhir_safetyplan.delivery.outbox_repair import check, export
from fhir_safetyplan.errors import ConfigError


def outbox_with(path: Path, n: int) -> None:
    with Outbox(path) as box:
        for i in range(n):
            box.put(f"s{i}", bundle(f"{i}" + "x" * 3000), SERVER)  # big rows: several pages


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_a_directory_given_as_outbox_is_refused_and_its_mode_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "shared"
    folder.mkdir(mode=0o755)
    os.chmod(folder, 0o755)
    code, _, err = run(capsys, "outbox", "list", "--outbox", str(folder))
    assert code == 7 and "is a directory" in err
    assert stat.S_IMODE(folder.stat().st_mode) == 0o755


def test_an_existing_file_that_is_not_an_outbox_is_refused_and_its_mode_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    os.chmod(notes, 0o644)
    code, _, err = run(capsys, "outbox", "flush", "--outbox", str(notes))
    assert code == 7 and "not an outbox" in err
    assert stat.S_IMODE(notes.stat().st_mode) == 0o644 and notes.read_text() == "my notes\n"


@pytest.mark.parametrize("special", ["/dev/null", "fifo"])
def test_a_device_or_a_pipe_given_as_outbox_is_refused_without_reading_it(
    special: str, tmp_path: Path
) -> None:
    path = Path(special)
    if special == "fifo":
        path = tmp_path / "pipe"
        os.mkfifo(path)
    with pytest.raises(ConfigError, match="not a regular file"):
        Outbox(path)


def test_an_sqlite_database_of_something_else_is_refused_untouched(tmp_path: Path) -> None:
    other = tmp_path / "app.sqlite"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER)")
    os.chmod(other, 0o644)
    with pytest.raises(ConfigError, match="something else"):
        Outbox(other)
    assert stat.S_IMODE(other.stat().st_mode) == 0o644


def test_our_own_outbox_with_a_wide_mode_is_still_narrowed(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    outbox_with(path, 1)
    os.chmod(path, 0o644)
    Outbox(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def _damage_page(path: Path, page: int) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size = conn.execute("PRAGMA page_size").fetchone()[0]
    with path.open("r+b") as f:
        f.seek((page - 1) * size)
        f.write(os.urandom(size))


@pytest.fixture
def damaged(tmp_path: Path) -> Path:
    """An outbox of six plans with random bytes over its page 2."""
    path = tmp_path / "outbox.sqlite"
    outbox_with(path, 6)
    _damage_page(path, 2)
    return path


def test_random_bytes_over_a_page_are_reported_as_a_damaged_outbox_exit_7_not_a_bug(
    damaged: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = damaged
    for command in (["outbox", "list"], ["outbox", "flush"]):
        code, _, err = run(capsys, *command, "--outbox", str(path))
        assert code == 7, err
        assert "is damaged" in err and "outbox check" in err and "outbox export" in err
        assert "this is a bug" not in err


def test_check_and_export_get_every_readable_plan_out_of_a_damaged_outbox(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "outbox.sqlite"
    outbox_with(path, 6)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE outbox SET bundle = 'garbage{' WHERE submission_id = 's2'")
    report = check(path)
    assert report.damaged and report.readable == {"pending": 5} and len(report.unreadable) == 1
    code, out, _ = run(capsys, "outbox", "check", "--outbox", str(path))
    assert code == 7 and json.loads(out)["readable"] == {"pending": 5}

    new = tmp_path / "rescued.sqlite"
    code, _, err = run(capsys, "outbox", "export", "--outbox", str(path), "--to", str(new))
    assert code == 0 and "outbox flush --outbox" in err
    with Outbox(new) as box:
        assert sorted(e.submission_id for e in box.pending()) == ["s0", "s1", "s3", "s4", "s5"]
    assert stat.S_IMODE(new.stat().st_mode) == 0o600  # it holds personal data too
    with pytest.raises(ConfigError, match="exists"):
        export(path, new)
    # The damaged entry holds personal data too: once its plan is resent from its source, it can go.
    with Outbox(path) as box:
        assert box.mark_damaged("s2", SERVER)
    assert run(capsys, "outbox", "purge", "--damaged", "--outbox", str(path))[0] == 0
    with Outbox(path) as box:
        assert [e.status for e in box.list()] == ["pending"] * 5


def test_a_row_with_an_unreadable_bundle_is_named_when_read_and_skipped_by_listings(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    outbox_with(path, 2)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE outbox SET bundle = 'garbage{' WHERE submission_id = 's0'")
    with Outbox(path) as box:
        assert [e.submission_id for e in box.list()] == ["s0", "s1"]
        with pytest.raises(OutboxDamaged, match="s0"):
            box.claim("s0", SERVER)
        assert box.mark_damaged("s0", SERVER)
        assert box.counts() == {"pending": 1, "delivered": 0, "rejected": 0, "damaged": 1}


def test_push_into_a_damaged_outbox_sends_nothing_and_exits_7(
    damaged: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import responses

    path = damaged
    plan = Path(__file__).resolve().parents[1] / "examples" / "01-alt-pa-plass" / "answers.json"
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        code, _, err = run(capsys, "push", str(plan), "--server", SERVER, "--outbox", str(path), "--no-check")
        assert len(rsps.calls) == 0  # not stored, so not sent
    assert code == 7 and "is damaged" in err and "this is a bug" not in err


def test_the_services_health_says_the_outbox_is_damaged_instead_of_failing(tmp_path: Path) -> None:
    from fhir_safetyplan.service.sender import Delivery
    from fhir_safetyplan.service.settings import ServiceSettings

    path = tmp_path / "outbox.sqlite"
    outbox_with(path, 6)
    assert Delivery(ServiceSettings(upstream=SERVER, outbox=path)).depth()["pending"] == 6
    for page in range(2, path.stat().st_size // 4096 + 1):  # every page but the header
        _damage_page(path, page)
    delivery = Delivery(ServiceSettings(upstream=SERVER, outbox=path))
    assert delivery.depth() == {"problem": "OutboxDamaged"}


def test_the_service_answers_503_when_its_outbox_is_damaged(damaged: Path) -> None:
    from fastapi.testclient import TestClient

    from fhir_safetyplan.service import ServiceSettings, Tokens, create_app

    token = "damage-test-token-0123456789"
    app = create_app(
        ServiceSettings(upstream=SERVER, outbox=damaged, tokens=Tokens([token]), flush_interval=0)
    )
    plan = json.loads(
        (Path(__file__).resolve().parents[1] / "examples" / "01-alt-pa-plass" / "answers.json").read_text()
    )
    with TestClient(app) as client:
        r = client.post("/QuestionnaireResponse", json=plan, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 503 and r.headers["Retry-After"]
    assert "outbox is damaged" in r.text
