"""The test PostgreSQL cluster is real, private to the test run, and reachable on the loopback address only."""

from __future__ import annotations

import pg_cluster
import psycopg
import pytest


def test_the_cluster_answers_sql_and_listens_on_loopback_only(postgres: pg_cluster.Cluster) -> None:
    with psycopg.connect(postgres.url) as conn:
        assert conn.execute("SELECT 1 + 1").fetchone() == (2,)
        assert conn.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
        version = conn.execute("SHOW server_version_num").fetchone()
    assert version is not None and int(version[0]) >= 150000


def test_each_test_database_starts_empty(postgres_db: str) -> None:
    with psycopg.connect(postgres_db) as conn:
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
    assert tables == (0,)


def test_a_wrong_password_is_refused(postgres: pg_cluster.Cluster) -> None:
    wrong = postgres.url.replace(postgres.password, "not-the-password")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(wrong, connect_timeout=10).close()
