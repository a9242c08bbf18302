"""A real, temporary PostgreSQL cluster for tests and benchmarks: ``initdb`` + ``pg_ctl`` on 127.0.0.1.

Debian's PostgreSQL (``scripts/setup.sh`` installs it where missing) keeps its programs in
``/usr/lib/postgresql/<major>/bin``; they are found there or on ``PATH``. ``initdb`` refuses to run as root, so as
root the cluster belongs to the ``postgres`` system user (``runuser -u postgres --``); as anyone else it belongs
to that user. The server listens on 127.0.0.1 only, on a free port, with a Unix socket in its own directory,
password authentication (scram-sha-256) for one superuser, and is stopped and removed by :meth:`Cluster.stop`.

``durable=False`` (the default for tests) turns off ``fsync``: the tests kill clients and servers, never
PostgreSQL itself, and a cluster that syncs every commit to disk only makes a 2-core CI slower. Benchmarks use
``durable=True`` (PostgreSQL's defaults) so that their figures are those of a production configuration.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

SUPERUSER = "safetyplan"
_OS_USER = "postgres"


class PostgresUnavailable(RuntimeError):
    """PostgreSQL's programs are missing or the cluster would not start (the message says which and why)."""


def binary(name: str) -> str:
    """The path of PostgreSQL program ``name`` (``initdb``, ``pg_ctl``): PATH first, then Debian's directory."""
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True):
        return candidate
    raise PostgresUnavailable(
        f"PostgreSQL's {name} was not found on PATH or in /usr/lib/postgresql/*/bin: "
        "run 'bash scripts/setup.sh' (it installs Debian's postgresql) or install PostgreSQL 15 or later"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_owner(argv: list[str]) -> list[str]:
    """``argv`` run as the cluster's owner: the ``postgres`` system user when we are root."""
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", _OS_USER, "--", *argv]


def _run(argv: list[str], what: str) -> None:
    done = subprocess.run(_as_owner(argv), capture_output=True, text=True, check=False, timeout=120)
    if done.returncode != 0:
        raise PostgresUnavailable(
            f"{what} failed (exit {done.returncode}): {(done.stderr or done.stdout)[-2000:]}"
        )


@dataclass
class Cluster:
    """A running temporary cluster. :attr:`url` names its first database, ``safetyplan``."""

    root: Path
    port: int
    password: str

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        return self.root / "postgresql.log"

    def url_of(self, database: str) -> str:
        """The ``postgresql://`` URL of ``database`` in this cluster, as the superuser."""
        return f"postgresql://{SUPERUSER}:{self.password}@127.0.0.1:{self.port}/{database}"

    @property
    def url(self) -> str:
        return self.url_of("safetyplan")

    def create_database(self, name: str) -> str:
        """Create database ``name`` (letters, digits, underscores) and return its URL."""
        if not name.replace("_", "").isalnum():
            raise ValueError(f"database name {name!r}: use letters, digits and underscores")
        import psycopg

        with psycopg.connect(self.url_of("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url_of(name)

    def stop(self) -> None:
        """Stop the server (fast shutdown) and remove its directory."""
        if self.data_dir.exists():
            subprocess.run(
                _as_owner([binary("pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"]),
                capture_output=True,
                check=False,
                timeout=120,
            )
        shutil.rmtree(self.root, ignore_errors=True)


def start(*, durable: bool = False) -> Cluster:
    """Make and start a new cluster in a fresh directory under the system temp directory."""
    root = Path(tempfile.mkdtemp(prefix="safetyplan-pg-"))
    password = secrets.token_hex(16)
    (root / "socket").mkdir()
    pwfile = root / "pwfile"
    pwfile.write_text(password + "\n")
    if os.geteuid() == 0:
        shutil.chown(root, _OS_USER)
        shutil.chown(root / "socket", _OS_USER)
        shutil.chown(pwfile, _OS_USER)
    cluster = Cluster(root=root, port=free_port(), password=password)
    try:
        _run(
            [
                binary("initdb"),
                "-D",
                str(cluster.data_dir),
                "-U",
                SUPERUSER,
                f"--pwfile={pwfile}",
                "--auth-host=scram-sha-256",
                "--auth-local=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
            ],
            "initdb",
        )
        options = [
            "-c listen_addresses=127.0.0.1",
            f"-c port={cluster.port}",
            f"-c unix_socket_directories={root / 'socket'}",
            "-c max_connections=200",
        ]
        if not durable:
            options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        _run(
            [
                binary("pg_ctl"),
                "-D",
                str(cluster.data_dir),
                "-l",
                str(cluster.log_file),
                "-o",
                " ".join(options),
                "-w",
                "-t",
                "60",
                "start",
            ],
            "pg_ctl start",
        )
        pwfile.unlink()
        cluster.create_database("safetyplan")
    except BaseException:
        log = cluster.log_file.read_text(errors="replace")[-2000:] if cluster.log_file.exists() else ""
        cluster.stop()
        if log:
            raise PostgresUnavailable(f"the PostgreSQL cluster did not start; its log ends:\n{log}") from None
        raise
    return cluster
