"""Talking to a FHIR R4 server: the client, authentication, retry policy and errors.

This module states the whole public API; everything in ``_*`` modules is private.

- :class:`FhirClient` — one configured ``requests.Session`` for one server base URL:
  ``capabilities()``, ``check_capabilities()``, ``transaction()``, ``read()``, ``search()``,
  ``create()``, ``update()``, ``validate()``
- :func:`check_base_url` — the one check and normaliser of a server base URL (http(s), host, no query, no
  userinfo, no trailing slash)
- :class:`ClientFactory` — the one way clients are made (auth, timeouts, retries), by the CLI and the service
- :func:`is_idempotent_transaction`, :func:`entry_results` / :class:`EntryResult` — pure Bundle helpers
- auth (``requests.auth.AuthBase``): :class:`BearerAuth`, :class:`BasicAuth`, :class:`SmartBackendAuth`,
  :func:`auth_from_env`
- retry policy: :class:`RetryPolicy`, :func:`default_policy`, :data:`NO_RETRY`
- errors: :class:`FhirError` → :class:`FhirHttpError` → :class:`ServerRejected` (exit 3, the content) /
  :class:`ServerUnavailable` (exit 5) / :class:`ServerConfigError` (exit 7: credentials, redirects, not a
  FHIR base); :class:`ServerIncompatible`, :class:`AuthError` (exit 7); :class:`UnknownPatient` (a
  ServerRejected: no Patient has the plan's identifier), :class:`WriteConflict` (a racing write: send again)
- what each error means is its ``kind``; :mod:`fhir_safetyplan.outcomes` maps kinds to outcomes and codes

Importing this package imports ``requests``: the CLI imports it only in commands that talk to a server.
"""

from fhir_safetyplan.client._capabilities import DELIVERY_REQUIREMENTS
from fhir_safetyplan.client._credentials import (
    AUTH_KINDS,
    DEFAULT_SMART_SCOPE,
    BasicAuth,
    BearerAuth,
    SmartBackendAuth,
    auth_from_env,
)
from fhir_safetyplan.client._errors import (
    AuthError,
    BatchEntryRejected,
    FhirError,
    FhirHttpError,
    ServerConfigError,
    ServerIncompatible,
    ServerRejected,
    ServerUnavailable,
    UnknownPatient,
    WriteConflict,
)
from fhir_safetyplan.client._factory import ClientFactory
from fhir_safetyplan.client._retry import NO_RETRY, RetryPolicy, default_policy
from fhir_safetyplan.client._session import FHIR_JSON, FhirClient, check_base_url
from fhir_safetyplan.client._transaction import EntryResult, entry_results, is_idempotent_transaction

__all__ = [
    "AUTH_KINDS",
    "DEFAULT_SMART_SCOPE",
    "DELIVERY_REQUIREMENTS",
    "FHIR_JSON",
    "NO_RETRY",
    "AuthError",
    "BasicAuth",
    "BatchEntryRejected",
    "BearerAuth",
    "ClientFactory",
    "EntryResult",
    "FhirClient",
    "FhirError",
    "FhirHttpError",
    "RetryPolicy",
    "ServerConfigError",
    "ServerIncompatible",
    "ServerRejected",
    "ServerUnavailable",
    "SmartBackendAuth",
    "UnknownPatient",
    "WriteConflict",
    "auth_from_env",
    "check_base_url",
    "default_policy",
    "entry_results",
    "is_idempotent_transaction",
]
