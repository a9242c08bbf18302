"""The outbox: durable, private, one entry per submission, FIFO, and intact after a crash."""

from __future__ import annotations

import os
import signal
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fhir_safetyplan.delivery.outbox import Outbox
from fhir_safetyplan.delivery.store import open_outbox
from fhir_safetyplan.errors import ConfigError, InputError

SERVER = "http://127.0.0.1:8080/fhir"
NAME = "Kari Testesen"


def bundle(tag: str) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {"resourceType": "CarePlan", "id": f"sp-{tag}", "description": NAME},
                "request": {"method": "PUT", "url": f"CarePlan/sp-{tag}"},
            }
        ],
    }


@pytest.fixture
def box(outbox_at: str):
    """An outbox of each store: SQLite, then PostgreSQL (the ``outbox_at`` fixture)."""
    with open_outbox(outbox_at) as ob:
        yield ob


def stored_bundles(box: Any) -> list[Any]:
    """The bundle column as stored, read around the store's own methods."""
    if isinstance(box, Outbox):
        return [r[0] for r in box._conn.execute("SELECT bundle FROM outbox")]
    import psycopg

    with psycopg.connect(box._url.url) as conn:
        return [r[0] for r in conn.execute("SELECT bundle FROM safetyplan_outbox")]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_outbox_file_and_its_wal_are_readable_by_the_owner_only(tmp_path: Path):
    path = tmp_path / "private" / "outbox.sqlite"
    with Outbox(path) as ob:
        ob.put("s1", bundle("1"), SERVER)
        assert mode(path) == 0o600
        assert mode(Path(f"{path}-wal")) == 0o600
    assert mode(path.parent) == 0o700


def test_an_existing_outbox_readable_by_others_is_narrowed_to_0600(tmp_path: Path):
    path = tmp_path / "outbox.sqlite"
    path.touch()
    os.chmod(path, 0o644)
    Outbox(path).close()
    assert mode(path) == 0o600


def test_outbox_uses_wal_and_full_sync(tmp_path: Path):
    with Outbox(tmp_path / "outbox.sqlite") as box:
        assert box._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert box._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_same_submission_twice_is_one_entry_with_the_latest_bundle(box: Outbox):
    first = box.put("s1", bundle("old"), SERVER)
    second = box.put("s1", bundle("new"), SERVER)
    assert first.seq == second.seq
    assert len(box.list()) == 1
    assert second.bundle is not None
    assert second.bundle["entry"][0]["resource"]["id"] == "sp-new"


def test_pending_is_first_in_first_out(box: Outbox):
    for sid in ("c", "a", "b"):
        box.put(sid, bundle(sid), SERVER)
    box.put("c", bundle("c2"), SERVER)  # an update keeps its place in the queue
    assert [e.submission_id for e in box.pending()] == ["c", "a", "b"]


def test_delivered_entries_keep_the_summary_and_drop_the_personal_data(box: Outbox):
    box.put("s1", bundle("1"), SERVER)
    summary = [{"status": "201 Created", "location": "CarePlan/sp-1/_history/1"}]
    box.mark_delivered("s1", summary)
    entry = box.get("s1")
    assert entry is not None
    assert entry.status == "delivered" and entry.delivered_at
    assert entry.bundle is None
    assert entry.response_summary == summary
    assert box.pending() == []
    assert stored_bundles(box) == [None]  # the stored text itself, not only what get() shows


def test_failures_count_attempts_and_keep_the_entry_pending(box: Outbox):
    box.put("s1", bundle("1"), SERVER)
    box.record_failure("s1", "ServerUnavailable (HTTP 503)")
    box.record_failure("s1", "ServerUnavailable")
    (entry,) = box.pending()
    assert entry.attempts == 2 and entry.last_error == "ServerUnavailable"


def test_rejected_entries_leave_the_queue_until_resubmitted(box: Outbox):
    box.put("s1", bundle("1"), SERVER)
    box.mark_rejected("s1", "ServerRejected (HTTP 422)")
    assert box.pending() == []
    assert box.list("rejected")[0].bundle is None  # a listing never reads bundles
    rejected = box.get("s1")
    assert rejected is not None and rejected.bundle is not None  # kept for review, not lost
    box.put("s1", bundle("fixed"), SERVER)
    (entry,) = box.pending()
    assert entry.attempts == 0 and entry.last_error is None


def test_remove_discards_an_entry(box: Outbox):
    box.put("s1", bundle("1"), SERVER)
    assert box.remove("s1") is True
    assert box.remove("s1") is False
    assert box.list() == []


def test_unknown_submission_is_an_input_error(box: Outbox):
    with pytest.raises(InputError, match="no submission"):
        box.mark_delivered("missing", [])


def test_entry_repr_and_listing_hold_no_personal_data(box: Outbox):
    entry = box.put("s1", bundle("1"), SERVER)
    assert NAME not in repr(entry)
    assert NAME not in str(entry.as_dict())
    assert NAME not in repr(box)


def test_an_unusable_outbox_path_is_a_config_error(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="--outbox"):
        Outbox(blocker / "outbox.sqlite")


def test_two_handles_on_one_outbox_see_each_others_writes(outbox_at: str):
    with open_outbox(outbox_at) as a, open_outbox(outbox_at) as b:
        a.put("s1", bundle("1"), SERVER)
        b.mark_delivered("s1", [])
        entry = a.get("s1")
        assert entry is not None and entry.status == "delivered"


_WRITER = """
import sys
from fhir_safetyplan.delivery.outbox import Outbox
from fhir_safetyplan.delivery.store import open_outbox
box = Outbox(sys.argv[1])
i = 0
while True:
    box.put(f"s{i}", {"resourceType": "Bundle", "type": "transaction", "entry": [], "pad": "x" * 20000}, "http://h")
    print(f"s{i}", flush=True)  # acknowledged: put() returned
    i += 1
"""


def test_every_acknowledged_put_survives_a_kill_mid_write(tmp_path: Path):
    path = tmp_path / "outbox.sqlite"
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parent.parent,
    )
    assert proc.stdout is not None
    acknowledged = [proc.stdout.readline().strip() for _ in range(40)]
    # The writer is somewhere inside its next put() now; kill it without any chance to clean up.
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL

    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    with Outbox(path) as box:
        stored = {e.submission_id for e in box.pending()}
    assert set(acknowledged) <= stored


# ---- keyed on (server, submission), compare-and-set revisions, retention -------------------------------

OTHER = "https://fhir.hospital.example/fhir"


def test_the_same_submission_for_two_servers_is_two_entries(box: Outbox):
    box.put("s1", bundle("a"), SERVER)
    box.put("s1", bundle("b"), OTHER)
    assert sorted(e.server_url for e in box.pending()) == sorted([SERVER, OTHER])
    assert [e.server_url for e in box.pending(OTHER)] == [OTHER]
    assert box.pending_servers() == [SERVER, OTHER]


def test_put_raises_the_revision_and_a_stale_result_changes_nothing(box: Outbox):
    first = box.put("s1", bundle("v1"), SERVER)
    second = box.put("s1", bundle("v2"), SERVER)
    assert second.revision == first.revision + 1
    assert box.mark_delivered("s1", [], server_url=SERVER, revision=first.revision) is False
    assert box.mark_rejected("s1", "ServerRejected", server_url=SERVER, revision=first.revision) is False
    entry = box.get("s1", SERVER)
    assert entry is not None and entry.status == "pending" and entry.bundle == bundle("v2")
    assert box.mark_delivered("s1", [], server_url=SERVER, revision=second.revision) is True


def test_requeue_makes_a_rejected_plan_pending_again(box: Outbox):
    box.put("s1", bundle("1"), SERVER)
    box.mark_rejected("s1", "ServerRejected (HTTP 422)")
    assert box.requeue("s1") == 1
    assert [e.submission_id for e in box.pending()] == ["s1"]
    assert box.requeue("s1") == 0  # only rejected entries


def test_purge_deletes_rejected_or_delivered_entries_never_pending(box: Outbox):
    for sid in ("p", "r", "d"):
        box.put(sid, bundle(sid), SERVER)
    box.mark_rejected("r", "ServerRejected (HTTP 422)")
    box.mark_delivered("d", [])
    assert box.purge("rejected", older_than_days=1) == 0  # changed just now
    assert box.purge("rejected") == 1
    assert box.purge("delivered") == 1
    assert [e.submission_id for e in box.list()] == ["p"]
    with pytest.raises(InputError):
        box.purge("pending")  # type: ignore[arg-type]


def test_counts_by_status(box: Outbox):
    box.put("a", bundle("a"), SERVER)
    box.put("b", bundle("b"), SERVER)
    box.mark_rejected("b", "x")
    assert box.counts() == {"pending": 1, "rejected": 1, "delivered": 0, "damaged": 0}


def test_an_outbox_of_the_old_schema_is_migrated_in_place(tmp_path: Path):
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE outbox (
            seq INTEGER PRIMARY KEY AUTOINCREMENT, submission_id TEXT NOT NULL UNIQUE,
            server_url TEXT NOT NULL, status TEXT NOT NULL, bundle TEXT, attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, delivered_at TEXT,
            response_summary TEXT);
        INSERT INTO outbox (submission_id, server_url, status, bundle, created_at, updated_at)
            VALUES ('s1', 'http://127.0.0.1:8080/fhir', 'pending', '{"resourceType":"Bundle"}', 't', 't');
        """
    )
    conn.close()
    os.chmod(path, 0o600)
    with Outbox(path) as ob:
        entry = ob.get("s1")
        assert entry is not None and entry.revision == 1 and entry.bundle == {"resourceType": "Bundle"}
        ob.put("s1", bundle("x"), OTHER)  # the new key: a second entry, not a replacement
        assert len(ob.list()) == 2


def test_an_outbox_from_a_newer_version_is_a_config_error(tmp_path: Path):
    path = tmp_path / "new.sqlite"
    Outbox(path).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(ConfigError, match="newer"):
        Outbox(path)


def test_an_outbox_of_schema_2_keeps_its_revisions_and_gains_leases_when_opened(tmp_path: Path):
    path = tmp_path / "v2.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE outbox (
            seq INTEGER PRIMARY KEY AUTOINCREMENT, submission_id TEXT NOT NULL, server_url TEXT NOT NULL,
            revision INTEGER NOT NULL DEFAULT 1,
            status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'rejected')), bundle TEXT,
            attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL, delivered_at TEXT, response_summary TEXT, UNIQUE (server_url, submission_id));
        INSERT INTO outbox (submission_id, server_url, revision, status, bundle, created_at, updated_at)
            VALUES ('s1', 'http://127.0.0.1:8080/fhir', 3, 'pending', '{"resourceType":"Bundle"}', 't', 't');
        PRAGMA user_version = 2;
        """
    )
    conn.close()
    with Outbox(path) as ob:
        entry = ob.claim("s1", SERVER)
        assert entry is not None and entry.revision == 3 and entry.lease_owner == ob.owner
        assert ob.mark_damaged("s1", SERVER)  # the new status is allowed by the migrated table


_OPEN_AT_ONCE = """
import sys, time
from pathlib import Path
from fhir_safetyplan.delivery.outbox import Outbox
start = float(sys.argv[2])
while time.time() < start:
    pass
with Outbox(Path(sys.argv[1])) as outbox:
    print(len(outbox.list()))
"""


def test_processes_opening_a_new_outbox_file_at_the_same_moment_all_get_it(tmp_path: Path) -> None:
    # Replicas started together on a new outbox path: one creates the file, the others open it; none is refused.
    import time

    path = tmp_path / "new" / "outbox.sqlite"
    start = str(time.time() + 1.5)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _OPEN_AT_ONCE, str(path), start],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    results = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, [err for _, err in results]
    assert [out.strip() for out, _ in results] == ["0"] * 6
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
