"""The database of the local HAPI FHIR server: H2 in memory (the default) or PostgreSQL.

``safetyplan server start --db postgresql://USER:PASSWORD@HOST:PORT/DATABASE`` runs HAPI on PostgreSQL, the
configuration HAPI users run in production; the database must exist (HAPI creates its tables in it on the
first start and keeps them: data survives a restart).

The password is a secret and is kept out of everything others can read: it is never on the JVM's command
line (``ps`` shows every process's arguments to every user), in the state file, in a log line or in an error
message. To keep it off ``safetyplan``'s own command line too, leave it out of the URL and name a private file
holding it (``--db-password-file``). It reaches the JVM in a private file (mode 0600, in the state directory)
that the launcher reads once at startup and deletes; ``start`` removes it too once the server is up or has
failed.

Standard library only, like :mod:`fhir_safetyplan.local_hapi`.
"""

from __future__ import annotations

import os
import re
import socket
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from fhir_safetyplan.errors import ConfigError

__all__ = ["MARKER", "PASSWORD_FILE", "HapiDatabase", "parse", "refusal_in_log"]

#: the private file in the state directory that hands the password to the launcher (deleted once read)
PASSWORD_FILE = "hapi-db-password"  # noqa: S105 (a file name, not a password)
#: how the launcher's one line about a database it cannot open begins (``Launcher.DATABASE_MARKER``)
MARKER = "safetyplan-hapi: cannot open the database"
#: what H2 in memory is called in the state file and ``server status``
IN_MEMORY = "h2 in memory"
DEFAULT_PORT = 5432
_SCHEMES = ("postgresql", "postgres")
_SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
_FORM = "postgresql://USER:PASSWORD@HOST:PORT/DATABASE"


@dataclass(frozen=True)
class HapiDatabase:
    """A PostgreSQL database for HAPI. The password is left out of the repr."""

    host: str
    port: int
    name: str
    user: str
    password: str | None = field(default=None, repr=False)
    sslmode: str | None = None

    @property
    def jdbc_url(self) -> str:
        """The JDBC URL the launcher connects to (no user, no password)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        query = f"?sslmode={self.sslmode}" if self.sslmode else ""
        return f"jdbc:postgresql://{host}:{self.port}/{urllib.parse.quote(self.name, safe='')}{query}"

    @property
    def display(self) -> str:
        """The URL without its password: safe for the state file, logs and messages."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        user = urllib.parse.quote(self.user, safe="")
        query = f"?sslmode={self.sslmode}" if self.sslmode else ""
        return f"postgresql://{user}@{host}:{self.port}/{urllib.parse.quote(self.name, safe='')}{query}"

    def launcher_args(self, password_file: Path | None = None) -> list[str]:
        """Launcher options naming the database, the user and the file with the password (never the password)."""
        args = [f"--safetyplan.jdbc-url={self.jdbc_url}", f"--safetyplan.jdbc-username={self.user}"]
        return args if password_file is None else [*args, f"--safetyplan.jdbc-password-file={password_file}"]

    def write_password(self, state_dir: Path) -> Path | None:
        """Write the password, if there is one, to a new private file in ``state_dir`` for the launcher to read
        once; its path (None without a password). An older such file is replaced."""
        if self.password is None:
            return None
        path = (state_dir / PASSWORD_FILE).resolve()
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(self.password + "\n")
        return path

    def check_reachable(self, timeout: float = 5.0) -> None:
        """Raise :class:`ConfigError` unless something accepts TCP connections at the database's host and port
        (a quick answer to a typo, before the JVM spends seconds starting)."""
        try:
            with socket.create_connection((self.host, self.port), timeout=timeout):
                return
        except OSError as exc:
            raise ConfigError(
                f"--db: nothing answers at {self.host}:{self.port} ({exc.strerror or exc}). Start PostgreSQL "
                f"there (listening on TCP), or correct the host and port in {_FORM}."
            ) from None


def redact(url: str) -> str:
    """``url`` with any password in it (user part or query) replaced by ``***``, for messages."""
    url = re.sub(r"(//[^/?#@]*?:)[^/?#]*@", r"\1***@", url)
    return re.sub(r"(?i)([?&]password=)[^&#]*", r"\1***", url)


def parse(url: str, password: str | None = None) -> HapiDatabase:
    """The database named by a ``postgresql://`` URL; :class:`ConfigError` (exit 7) saying what is wrong.

    ``password``, if given, is used instead of one in the URL (``--db-password-file``: a URL on a command line
    is seen by ``ps`` while that command runs).
    """
    shown = redact(url)
    try:
        parts = urllib.parse.urlsplit(url.strip())
    except ValueError:  # e.g. an unclosed IPv6 bracket
        raise ConfigError(f"--db {shown!r} is not a URL that can be read: write {_FORM}.") from None
    if parts.scheme.lower() not in _SCHEMES or not parts.netloc:
        raise ConfigError(
            f"--db {shown!r} is not a PostgreSQL URL: write {_FORM} (H2 in memory, the default, "
            "needs no --db)."
        )
    try:
        port = DEFAULT_PORT if parts.port is None else parts.port
    except ValueError:
        port = 0
    if not 0 < port < 65536:
        raise ConfigError(f"--db {shown!r}: the port is not a number from 1 to 65535 (write {_FORM}).")
    sslmode = _sslmode(parts.query, shown)
    host = parts.hostname
    name = urllib.parse.unquote(parts.path.lstrip("/"))
    user = urllib.parse.unquote(parts.username or "")
    missing = [what for what, value in (("host", host), ("database", name), ("user", user)) if not value]
    if missing or "/" in name:
        what = " and ".join(missing) if missing else "one database name (no '/')"
        raise ConfigError(f"--db {shown!r} needs a {what}: write {_FORM}.")
    assert host is not None  # checked above; for mypy
    if password is None and parts.password is not None:
        password = urllib.parse.unquote(parts.password)
    return HapiDatabase(host, port, name, user, password, sslmode)


def _sslmode(query: str, shown: str) -> str | None:
    options = urllib.parse.parse_qs(query, keep_blank_values=True)
    if "password" in options:
        raise ConfigError(
            f"--db {shown!r}: put the password in the URL's user part ({_FORM}), not in its query, "
            "so that it never reaches HAPI's command line."
        )
    unknown = sorted(set(options) - {"sslmode"})
    if unknown:
        raise ConfigError(f"--db {shown!r}: unknown option {', '.join(unknown)}; only sslmode is taken.")
    values = options.get("sslmode")
    if values is None:
        return None
    if len(values) != 1 or values[0] not in _SSLMODES:
        raise ConfigError(f"--db {shown!r}: sslmode must be one of {', '.join(_SSLMODES)}.")
    return values[0]


def refusal_in_log(log_text: str) -> str | None:
    """The launcher's line saying it could not open its database, if its log has one (the last such line)."""
    found = [line.strip() for line in log_text.splitlines() if line.strip().startswith(MARKER)]
    return found[-1] if found else None


def read_password_file(path: str) -> str:
    """The password in the first line of ``path`` (``--db-password-file``); :class:`ConfigError` if unreadable."""
    try:
        with open(path, encoding="utf-8") as handle:
            line = handle.readline()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--db-password-file {path}: cannot read it ({exc.__class__.__name__}).") from None
    password = line.rstrip("\r\n")
    if not password:
        raise ConfigError(f"--db-password-file {path}: its first line is empty; write the password there.")
    return password
