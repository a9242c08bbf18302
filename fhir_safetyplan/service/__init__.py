"""``safetyplan serve``: a small FHIR-style HTTP service for integration engines.

The public API:

- :func:`create_app` ``(settings: ServiceSettings | None = None) -> fastapi.FastAPI`` — the ASGI app
- :class:`ServiceSettings`, :func:`settings_from_env` — what the operator configures
- :class:`Tokens` — callers' tokens, compared in constant time

Endpoints: ``GET /metadata``, ``GET /Questionnaire[/{id}]``, ``POST /QuestionnaireResponse/$validate``,
``POST /QuestionnaireResponse/$extract``, ``POST /QuestionnaireResponse``, ``GET /healthz``,
``GET /openapi.json``. Importing this package imports FastAPI: only ``safetyplan serve`` does.
"""

from fhir_safetyplan.service.app import create_app
from fhir_safetyplan.service.settings import ServiceSettings, Tokens, settings_from_env

__all__ = ["ServiceSettings", "Tokens", "create_app", "settings_from_env"]
