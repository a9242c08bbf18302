"""The one way FhirClients are made, for the command line and the service alike."""

from __future__ import annotations

from dataclasses import dataclass, field

from requests.auth import AuthBase

from fhir_safetyplan.client._retry import NO_RETRY
from fhir_safetyplan.client._session import DEFAULT_RETRIES, DEFAULT_TIMEOUT, FhirClient


@dataclass(frozen=True)
class ClientFactory:
    """How to reach FHIR servers: credentials, timeouts and retries, fixed once from the settings.

    ``factory(base_url)`` is a client for delivery and reading; :meth:`probe` one for a quick look
    (``/metadata`` for a health check) that waits briefly and never retries.
    """

    auth: AuthBase | None = field(default=None, repr=False)
    #: (connect, read) seconds for every request
    timeout: tuple[float, float] = DEFAULT_TIMEOUT
    #: how often a safe request is repeated after a transient failure
    retries: int = DEFAULT_RETRIES

    def __call__(self, base_url: str) -> FhirClient:
        return FhirClient(base_url, auth=self.auth, timeout=self.timeout, retries=self.retries)

    def probe(self, base_url: str, seconds: float) -> FhirClient:
        """A client that waits at most ``seconds`` for connect and read, and never retries."""
        return FhirClient(base_url, auth=self.auth, timeout=(seconds, seconds), retries=NO_RETRY)
