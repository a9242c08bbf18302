"""Fixtures shared by the unit and integration tests: a real PostgreSQL cluster (``tests/pg_cluster.py``).

One cluster per pytest session, started only when a test asks for it. When ``CI`` is set, a cluster that cannot
start fails the test (PostgreSQL is part of what CI installs); elsewhere the test is skipped with the reason.
Each test that needs a clean database takes ``postgres_db``: a new database of its own in the shared cluster.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pg_cluster
import pytest
from _needs import unavailable


@pytest.fixture(scope="session")
def postgres() -> Iterator[pg_cluster.Cluster]:
    """A running PostgreSQL cluster on 127.0.0.1 (a free port), removed at the end of the session."""
    try:
        cluster = pg_cluster.start()
    except pg_cluster.PostgresUnavailable as exc:
        unavailable("a test on PostgreSQL", f"no PostgreSQL here: {exc}")
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def postgres_db(postgres: pg_cluster.Cluster) -> str:
    """The URL of a new, empty database for this test alone."""
    return postgres.create_database(f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture(params=["sqlite", "postgresql"])
def outbox_at(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a behaviour test's outbox is: an SQLite file, then a new PostgreSQL database. Both stores keep the
    same rules, so each such test runs against both (``open_outbox`` takes either)."""
    if request.param == "sqlite":
        return str(tmp_path / "outbox.sqlite")
    url: str = request.getfixturevalue("postgres_db")
    return url
