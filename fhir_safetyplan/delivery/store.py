"""The outbox's guarantees, its entries, and :func:`open_outbox`: a file path (SQLite) or a PostgreSQL URL.

Two stores keep plans until the FHIR server has acknowledged them, with the same states, keys and guarantees:

- :class:`fhir_safetyplan.delivery.outbox.Outbox`: one SQLite file, the embedded default (one machine);
- :class:`fhir_safetyplan.delivery.outbox_postgres.PostgresOutbox`: a PostgreSQL database shared by several
  processes on several hosts (service replicas, flushers).

Both are :class:`fhir_safetyplan.delivery.outbox_rules.OutboxStore`, the one interface: callers are typed against
what a store does, not how. The rules both stores keep (finding a plan, the listings, recording outcomes
compare-and-set) are written once in it; the mechanics stay in each store, in its database's idiom. SQLite
serialises writers with one file lock and can tell at once that a lease holder on this host has died (its pid is
gone); PostgreSQL locks rows (``FOR UPDATE SKIP LOCKED``), keeps time by the database's clock and can only let a
lease expire, because its holders run on other hosts. :func:`~fhir_safetyplan.delivery.deliver.deliver`,
:func:`~fhir_safetyplan.delivery.deliver.flush`, the service and the ``outbox`` commands are typed against
:class:`OutboxStore` alone. The tests run one set of behaviour tests against both. ``Outbox`` keeps its name (and
``Outbox(path)`` its meaning) so every caller of the SQLite store works unchanged.

The rules both keep: states ``pending`` / ``delivered`` / ``rejected`` / ``damaged``; one entry per (server, plan
key) (:func:`~fhir_safetyplan.delivery.outbox_keys.plan_key`); every ``put`` raises the revision and an outcome is
recorded only for the revision that was sent (compare-and-set) and only on a pending entry, so nothing ever
leaves ``delivered`` except a new revision; a sender claims (leases) an entry before it sends it, and a lease ends
with its outcome, on release, or when it expires.

**A database URL may hold a password.** :class:`OutboxUrl` keeps it out of ``str``/``repr``, and every message,
log line and listing names the outbox by :func:`redact` (the URL without its password).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from fhir_safetyplan.delivery.outbox_sqlite import OutboxDamaged
from fhir_safetyplan.errors import JSON, ConfigError

if TYPE_CHECKING:
    from fhir_safetyplan.delivery.outbox_rules import OutboxStore

__all__ = [
    "LEASE_SECONDS",
    "STATUSES",
    "OutboxEntry",
    "OutboxUnavailable",
    "OutboxUrl",
    "Status",
    "open_outbox",
    "outbox_spec",
    "redact",
]

Status = Literal["pending", "delivered", "rejected", "damaged"]
STATUSES: tuple[Status, ...] = ("pending", "delivered", "rejected", "damaged")
#: how long a claim lasts unless its outcome is recorded first (SQLite: or its holder on this machine dies)
LEASE_SECONDS = 300.0
#: the longest failure reason kept on an entry
REASON_MAX = 500
#: the URL schemes of a PostgreSQL outbox (libpq's own two)
POSTGRES_SCHEMES = ("postgresql", "postgres")
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


class OutboxUnavailable(ConfigError):
    """A database outbox that cannot be reached or used now (down, refused, privileges): nothing was stored."""


@dataclass(frozen=True)
class OutboxEntry:
    """One submission in the outbox. ``bundle`` (personal data) is left out of the repr."""

    seq: int
    submission_id: str
    server_url: str
    status: Status
    attempts: int
    last_error: str | None
    created_at: str
    updated_at: str
    delivered_at: str | None
    #: per-entry server answers after delivery: status, location, type, id, version (no personal data)
    response_summary: list[JSON] | None
    #: the transaction Bundle while it is not yet delivered; None once the server has it
    bundle: JSON | None = field(default=None, repr=False)
    #: raised by every put; results are recorded only for the revision that was sent
    revision: int = 1
    #: who is sending it now (``host:pid:nonce``) and until when (ISO time, UTC); None when nobody
    lease_owner: str | None = None
    lease_until: str | None = None
    #: the entry's key: the submission scoped by the patient (:func:`fhir_safetyplan.delivery.outbox_keys.plan_key`)
    plan_key: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary for listings: everything except the bundle."""
        return {
            "seq": self.seq,
            "submissionId": self.submission_id,
            "planKey": self.plan_key,
            "revision": self.revision,
            "server": self.server_url,
            "status": self.status,
            "attempts": self.attempts,
            "lastError": self.last_error,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "deliveredAt": self.delivered_at,
            "response": self.response_summary,
        }


#: the columns every store selects, in this order, for :func:`entry_from_row`
COLUMNS = (
    "seq, submission_id, server_url, status, attempts, last_error, created_at, updated_at, "
    "delivered_at, response_summary, bundle, revision, lease_owner, lease_until, plan_key"
)


def _json_or_damaged(text: str | None, submission_id: str, what: str) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise OutboxDamaged(
            f"The outbox entry for submission {submission_id} is damaged: its {what} cannot be read. It is set "
            "aside (status damaged); 'safetyplan outbox check' lists such entries."
        ) from None


def entry_from_row(r: Any) -> OutboxEntry:
    """An entry from a row of :data:`COLUMNS` (times already as ISO text)."""
    return OutboxEntry(
        seq=r[0],
        submission_id=r[1],
        server_url=r[2],
        status=r[3],
        attempts=r[4],
        last_error=r[5],
        created_at=r[6],
        updated_at=r[7],
        delivered_at=r[8],
        response_summary=_json_or_damaged(r[9], r[1], "server's answer"),
        bundle=_json_or_damaged(r[10], r[1], "bundle"),
        revision=r[11],
        lease_owner=r[12],
        lease_until=r[13],
        plan_key=r[14],
    )


# ---- naming and opening an outbox ------------------------------------------------------------------


def redact(url: str) -> str:
    """``url`` without its password (in the user part or as a ``password`` query parameter)."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, hosts = netloc.rpartition("@")
            netloc = f"{userinfo.partition(':')[0]}@{hosts}"
        query = urlencode(
            [(k, "***" if k.lower() == "password" else v) for k, v in parse_qsl(parts.query, True)]
        )
        shown = urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
        return shown if netloc else shown.replace(":", "://", 1)  # postgresql:// (all defaults) stays a URL
    except ValueError:
        return f"{url.partition('://')[0]}://(a URL that cannot be read)"


@dataclass(frozen=True)
class OutboxUrl:
    """A PostgreSQL outbox URL. ``str``/``repr`` leave out its password; ``url`` is the whole URL."""

    url: str = field(repr=False)

    def __str__(self) -> str:
        return redact(self.url)

    def __repr__(self) -> str:
        return f"OutboxUrl({redact(self.url)!r})"


#: what ``--outbox`` / ``SAFETYPLAN_OUTBOX`` name: an SQLite file, or a PostgreSQL database
OutboxSpec = Path | OutboxUrl


#: values that read as "no outbox" but would be a file name: refused (see :func:`outbox_spec`)
_NO_OUTBOX_WORDS = frozenset({"none", "off", "no", "false", "0", "null", "disabled", "-"})


def outbox_spec(value: str | os.PathLike[str] | OutboxUrl) -> OutboxSpec:
    """What ``value`` names: a PostgreSQL URL (``postgresql://`` or ``postgres://``) or an SQLite file path.

    Raises :class:`~fhir_safetyplan.errors.ConfigError` (exit 7) for any other URL scheme, instead of taking
    ``mysql://…`` for a file path and making folders named after it, and for a word that reads as "no outbox"
    (``none``, ``off``, …), instead of keeping plans in a file of that name.
    """
    if isinstance(value, OutboxUrl | Path):
        return value
    text = os.fspath(value)
    if text.strip().lower() in _NO_OUTBOX_WORDS:
        raise ConfigError(
            f"--outbox / SAFETYPLAN_OUTBOX: {text.strip()!r} is not a way to turn the outbox off (it would be "
            "an SQLite file of that name). Without an outbox: leave out --outbox and SAFETYPLAN_OUTBOX (push: "
            f"--no-outbox). A file really named so: ./{text.strip()}."
        )
    found = _URL.match(text.strip())
    if found is None:
        return Path(text)
    scheme = found.group(1).lower()
    if scheme in POSTGRES_SCHEMES:  # libpq knows the scheme in lower case only
        return OutboxUrl(scheme + text.strip()[len(scheme) :])
    raise ConfigError(
        f"--outbox / SAFETYPLAN_OUTBOX: {found.group(1)}:// is not an outbox this version can use. Give a "
        "file path for an SQLite outbox (e.g. .safetyplan/outbox.sqlite) or a PostgreSQL URL "
        "(postgresql://USER@HOST:5432/DATABASE)."
    )


def open_outbox(
    value: str | os.PathLike[str] | OutboxUrl, *, lease_seconds: float | None = None
) -> OutboxStore:
    """Open (creating it if needed) the outbox that ``value`` names: an SQLite file or a PostgreSQL URL."""
    spec = outbox_spec(value)
    lease = LEASE_SECONDS if lease_seconds is None else lease_seconds
    if isinstance(spec, OutboxUrl):
        try:
            from fhir_safetyplan.delivery.outbox_postgres import PostgresOutbox
        except ModuleNotFoundError as exc:
            raise ConfigError(
                f"A PostgreSQL outbox ({spec}) needs {exc.name}: install it with "
                "pip install 'fhir-safetyplan[postgres]'."
            ) from None
        return PostgresOutbox(spec, lease_seconds=lease)
    from fhir_safetyplan.delivery.outbox import Outbox

    return Outbox(spec, lease_seconds=lease)
