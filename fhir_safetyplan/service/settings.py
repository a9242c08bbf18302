"""What the operator configures for ``safetyplan serve``: upstream, outbox, callers' tokens, limits.

Secrets (the callers' tokens) come from the environment or a file, never from the command line; the
upstream FHIR server's credentials come from :func:`fhir_safetyplan.client.auth_from_env`.

Environment:

- ``SAFETYPLAN_SERVICE_TOKENS``: callers' tokens, separated by commas or white space;
  ``SAFETYPLAN_SERVICE_TOKENS_FILE``: a file with one token per line (``#`` starts a comment). Both may be set.
- ``SAFETYPLAN_SERVICE_ALLOW_ANONYMOUS=1``: let callers without a token use the POST operations
  (a closed network behind an engine that cannot send a header; never on an open network).
- ``SAFETYPLAN_UPSTREAM``, ``SAFETYPLAN_OUTBOX``, ``SAFETYPLAN_FLUSH_INTERVAL``: defaults for
  ``--upstream``, ``--outbox``, ``--flush-interval``.
- ``SAFETYPLAN_UPSTREAM_AUTH``: none | bearer | basic | smart (the rest as for ``safetyplan push``).
- ``SAFETYPLAN_CONFIDENTIALITY`` (R | V) for QuestionnaireResponse inputs, ``SAFETYPLAN_CANONICAL_BASE``,
  ``SAFETYPLAN_PUBLIC_HOSTS`` and ``SAFETYPLAN_CRISIS_CENTRE_NAME`` / ``_PHONE`` as for the command line
  (read with the same functions, :mod:`fhir_safetyplan.settings`).

This module and :mod:`fhir_safetyplan.settings` are the only ones that read the environment; everything the
service does afterwards takes its values from the :class:`ServiceSettings` built here.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from fhir_safetyplan.errors import ConfigError
from fhir_safetyplan.jsoninput import MAX_INPUT_BYTES

if TYPE_CHECKING:
    from requests.auth import AuthBase

    from fhir_safetyplan.client import FhirClient
    from fhir_safetyplan.delivery.store import OutboxUrl
    from fhir_safetyplan.document import CrisisCentre

#: tokens shorter than this are refused: a guessable token is no authentication
MIN_TOKEN_LENGTH = 16
_TRUE = frozenset({"1", "true", "yes", "on"})


class Tokens:
    """The callers' tokens, kept only as SHA-256 digests and compared in constant time.

    Comparing digests (all 32 bytes long) with :func:`hmac.compare_digest`, against every configured token
    without stopping at a match, makes the time taken independent of how much of a token was right and of
    which token matched.
    """

    def __init__(self, tokens: Iterable[str] = ()) -> None:
        self._digests = tuple(hashlib.sha256(t.encode("utf-8")).digest() for t in tokens)

    def __len__(self) -> int:
        return len(self._digests)

    def __repr__(self) -> str:
        return f"Tokens(<{len(self._digests)} configured>)"

    def accepts(self, presented: str | None) -> bool:
        """True when ``presented`` is one of the configured tokens."""
        if not presented or not self._digests:
            return False
        digest = hashlib.sha256(presented.encode("utf-8", "surrogatepass")).digest()
        found = False
        for known in self._digests:
            found |= hmac.compare_digest(digest, known)
        return found


@dataclass(frozen=True)
class ServiceSettings:
    """Everything :func:`fhir_safetyplan.service.create_app` needs; see the module docs for the environment."""

    #: base URL of the FHIR server plans are delivered to; None: no delivery (POST /QuestionnaireResponse 501)
    upstream: str | None = None
    #: the durable outbox (an SQLite file, or a PostgreSQL database shared by replicas); None: a plan that
    #: cannot be delivered now is answered 503, not kept
    outbox: Path | OutboxUrl | None = None
    #: seconds a replica's claim on a queued plan lasts: a replica that dies mid-send holds its plans this long
    #: before another takes them (on PostgreSQL only the expiry tells; on SQLite a dead local holder is seen at once);
    #: None: the outbox's default (:data:`fhir_safetyplan.delivery.store.LEASE_SECONDS`)
    outbox_lease: float | None = None
    #: seconds between background deliveries of queued plans (0 or less: no background flusher)
    flush_interval: float = 30.0
    #: at most this many queued plans are sent per background round, so a round is bounded in time
    flush_batch: int = 50
    tokens: Tokens = field(default_factory=Tokens)
    allow_anonymous: bool = False
    max_body_bytes: int = MAX_INPUT_BYTES
    canonical_base: str | None = None
    confidentiality: Literal["R", "V"] = "R"
    #: add a conditional create of a minimal test Patient (sandboxes and tests only)
    create_patient: bool = False
    #: the /form page may deliver (POST /form/deliver): only ``safetyplan preview --server`` turns it on; the page
    #: sets a synthetic patient, so on ``serve`` it checks but never delivers into the upstream
    form_delivers: bool = False
    #: hosts beyond hapi.fhir.org where real identity numbers are refused (SAFETYPLAN_PUBLIC_HOSTS)
    public_hosts: tuple[str, ...] = ()
    #: the local crisis centre the journal note names (SAFETYPLAN_CRISIS_CENTRE_NAME / _PHONE)
    crisis_centre: CrisisCentre | None = None
    #: authentication to the upstream server; None: none
    upstream_auth: AuthBase | None = field(default=None, repr=False)
    #: (connect, read) seconds for delivery; a caller waits at most about this long plus retries
    upstream_timeout: tuple[float, float] = (3.0, 30.0)
    upstream_retries: int = 2
    #: seconds /healthz waits for the upstream's /metadata
    health_timeout: float = 2.0
    #: builds the FHIR client for a server URL (tests replace it); default: :class:`FhirClient` as configured
    client_factory: Callable[[str], FhirClient] | None = field(default=None, repr=False)
    #: seconds /healthz reuses its last look at the upstream (so /healthz cannot be used to hammer it)
    health_cache_seconds: float = 5.0
    #: seconds a request body may take to arrive in full; a slower one is answered 408 (service/limits.py)
    body_timeout: float = 30.0
    #: requests in progress at once; more are answered 503 with Retry-After (uvicorn bounds connections above)
    max_requests: int = 64

    def new_client(self, base_url: str, *, probe: bool = False) -> FhirClient:
        """The service's FhirClient: ``client_factory`` if set, else one from the one factory
        (:class:`fhir_safetyplan.client.ClientFactory`) with the upstream auth, timeouts and retries
        (``probe``: the short health timeout and no retries)."""
        if self.client_factory is not None:
            return self.client_factory(base_url)
        from fhir_safetyplan.client import ClientFactory

        factory = ClientFactory(self.upstream_auth, self.upstream_timeout, self.upstream_retries)
        return factory.probe(base_url, self.health_timeout) if probe else factory(base_url)


def _flag(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "").strip().lower() in _TRUE


def read_tokens(env: Mapping[str, str]) -> Tokens:
    """The callers' tokens from ``SAFETYPLAN_SERVICE_TOKENS`` and/or ``SAFETYPLAN_SERVICE_TOKENS_FILE``."""
    found = [t for t in re.split(r"[,\s]+", env.get("SAFETYPLAN_SERVICE_TOKENS", "")) if t]
    file = env.get("SAFETYPLAN_SERVICE_TOKENS_FILE", "").strip()
    if file:
        try:
            text = Path(file).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"SAFETYPLAN_SERVICE_TOKENS_FILE names a file that cannot be read ({exc.strerror}): {file}"
            ) from None
        for line in text.splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                found.append(line)
    short = sum(1 for t in found if len(t) < MIN_TOKEN_LENGTH)
    if short:
        # Never show the token: say which rule it breaks and how to make a good one.
        raise ConfigError(
            f"{short} service token(s) are shorter than {MIN_TOKEN_LENGTH} characters; use long random "
            "tokens, e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))'."
        )
    return Tokens(found)


def settings_from_env(
    env: Mapping[str, str] | None = None,
    *,
    upstream: str | None = None,
    outbox: str | os.PathLike[str] | None = None,
    flush_interval: float | None = None,
    canonical_base: str | None = None,
    create_patient: bool | None = None,
) -> ServiceSettings:
    """Settings from the environment, with explicit arguments (from the command line) taking precedence."""
    from fhir_safetyplan import codes, settings
    from fhir_safetyplan.delivery.store import outbox_spec

    env = os.environ if env is None else env
    upstream = upstream or env.get("SAFETYPLAN_UPSTREAM") or None
    outbox_path = outbox or env.get("SAFETYPLAN_OUTBOX") or None
    if flush_interval is None:
        raw = env.get("SAFETYPLAN_FLUSH_INTERVAL", "").strip()
        try:
            flush_interval = float(raw) if raw else 30.0
        except ValueError:
            raise ConfigError("SAFETYPLAN_FLUSH_INTERVAL must be a number of seconds.") from None
    confidentiality = env.get("SAFETYPLAN_CONFIDENTIALITY", "R").strip().upper() or "R"
    if confidentiality not in ("R", "V"):
        raise ConfigError("SAFETYPLAN_CONFIDENTIALITY must be R (restricted) or V (very restricted).")
    auth: AuthBase | None = None
    if upstream:
        from fhir_safetyplan.client import auth_from_env, check_base_url

        try:
            upstream = check_base_url(upstream)  # the one normaliser of server URLs
        except ConfigError as err:
            raise ConfigError(f"{err} Check --upstream / SAFETYPLAN_UPSTREAM.") from None

        auth = auth_from_env(env.get("SAFETYPLAN_UPSTREAM_AUTH", "none") or "none", env)
    return ServiceSettings(
        upstream=upstream,
        outbox=outbox_spec(outbox_path) if outbox_path else None,
        flush_interval=flush_interval,
        tokens=read_tokens(env),
        allow_anonymous=_flag(env, "SAFETYPLAN_SERVICE_ALLOW_ANONYMOUS"),
        canonical_base=codes.canonical_base(settings.canonical_base(env, canonical_base)),
        public_hosts=settings.public_hosts(env),
        crisis_centre=settings.crisis_centre(env),
        confidentiality="V" if confidentiality == "V" else "R",
        create_patient=bool(create_patient),
        upstream_auth=auth,
    )
