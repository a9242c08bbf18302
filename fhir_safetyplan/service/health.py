"""The upstream's health for ``GET /healthz``: looked at most every ``health_cache_seconds``.

``/healthz`` needs no token, so it must not be a way to make the service hit the upstream: the answer is cached
on the app's state. Only the upstream's scheme and host are shown.
"""

from __future__ import annotations

import threading
import time
from urllib.parse import urlsplit

from starlette.datastructures import State

from fhir_safetyplan.delivery.deliver import reason_of
from fhir_safetyplan.errors import JSON, SafetyPlanError
from fhir_safetyplan.service.settings import ServiceSettings

_lock = threading.Lock()


def upstream_health(settings: ServiceSettings, state: State) -> JSON:
    """The upstream's reachability (cached on ``state``): configured, host, reachable, latency, the problem."""
    if settings.upstream is None:
        return {"configured": False}
    with _lock:
        cached: tuple[float, JSON] | None = getattr(state, "upstream_health", None)
        if cached is not None and time.monotonic() - cached[0] < settings.health_cache_seconds:
            return cached[1]
        out = _probe(settings, settings.upstream)
        state.upstream_health = (time.monotonic(), out)
        return out


def _probe(settings: ServiceSettings, upstream: str) -> JSON:
    started = time.monotonic()
    try:
        client = settings.new_client(upstream, probe=True)
        try:
            client.capabilities()
        finally:
            if settings.client_factory is None:  # a factory's clients belong to the factory
                client.close()
        reachable, problem = True, None
    except SafetyPlanError as err:
        reachable, problem = False, reason_of(err)
    parts = urlsplit(upstream)
    out: JSON = {
        "configured": True,
        "host": f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else ""),
        "reachable": reachable,
        "latencyMs": round(1000 * (time.monotonic() - started), 1),
    }
    if problem:
        out["problem"] = problem
    return out
