"""Talking to a FHIR R4 server: the client, authentication, retry policy and errors.

This module states the whole public API (each name re-exported once, as ``X as X``); everything in ``_*``
modules is private.

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

from fhir_safetyplan.client._capabilities import DELIVERY_REQUIREMENTS as DELIVERY_REQUIREMENTS
from fhir_safetyplan.client._credentials import AUTH_KINDS as AUTH_KINDS
from fhir_safetyplan.client._credentials import DEFAULT_SMART_SCOPE as DEFAULT_SMART_SCOPE
from fhir_safetyplan.client._credentials import BasicAuth as BasicAuth
from fhir_safetyplan.client._credentials import BearerAuth as BearerAuth
from fhir_safetyplan.client._credentials import SmartBackendAuth as SmartBackendAuth
from fhir_safetyplan.client._credentials import auth_from_env as auth_from_env
from fhir_safetyplan.client._errors import AuthError as AuthError
from fhir_safetyplan.client._errors import BatchEntryRejected as BatchEntryRejected
from fhir_safetyplan.client._errors import FhirError as FhirError
from fhir_safetyplan.client._errors import FhirHttpError as FhirHttpError
from fhir_safetyplan.client._errors import ServerConfigError as ServerConfigError
from fhir_safetyplan.client._errors import ServerIncompatible as ServerIncompatible
from fhir_safetyplan.client._errors import ServerRejected as ServerRejected
from fhir_safetyplan.client._errors import ServerUnavailable as ServerUnavailable
from fhir_safetyplan.client._errors import UnknownPatient as UnknownPatient
from fhir_safetyplan.client._errors import WriteConflict as WriteConflict
from fhir_safetyplan.client._factory import ClientFactory as ClientFactory
from fhir_safetyplan.client._retry import NO_RETRY as NO_RETRY
from fhir_safetyplan.client._retry import RetryPolicy as RetryPolicy
from fhir_safetyplan.client._retry import default_policy as default_policy
from fhir_safetyplan.client._session import FHIR_JSON as FHIR_JSON
from fhir_safetyplan.client._session import FhirClient as FhirClient
from fhir_safetyplan.client._session import check_base_url as check_base_url
from fhir_safetyplan.client._transaction import EntryResult as EntryResult
from fhir_safetyplan.client._transaction import entry_results as entry_results
from fhir_safetyplan.client._transaction import is_idempotent_transaction as is_idempotent_transaction
