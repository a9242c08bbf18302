"""fhir-safetyplan: safety planning with people exposed to domestic violence, as FHIR R4.

What an integration engineer imports is named in ``__all__``; every stage is a plain function over JSON-shaped
dicts (``dict[str, Any]``), and only the client and delivery touch the network:

- build: :func:`build_bundle` (an answers document or a QuestionnaireResponse → the journal transaction
  Bundle), with a :class:`DocumentContext` (confidentiality, test Patient, :class:`CrisisCentre`, canonical
  base); :func:`respond` (answers → QuestionnaireResponse), :func:`extract_bundle` (SDC ``$extract`` alone),
  :func:`submission_of` (the submission id a Bundle carries), :class:`AnswersDocument` (the answers schema),
  :func:`build_questionnaire` (the form)
- validate: :func:`validate` (an input → OperationOutcome), :func:`validate_response` with
  :class:`ValidationOptions` (a QuestionnaireResponse against a Questionnaire), :func:`has_errors`
- deliver: :class:`FhirClient` (with :class:`BearerAuth`, :class:`BasicAuth` or :class:`SmartBackendAuth`),
  :func:`deliver` (raises what was not delivered or queued) or :func:`attempt` (always a result), an outbox
  (:func:`open_outbox`: an SQLite file or a PostgreSQL URL, an :class:`OutboxStore`; :class:`Outbox` is the
  SQLite one) and :func:`flush`, :class:`DeliveryResult` / :class:`EntryResult`
- read back: :func:`read_plan` (the patient's current plan, a :class:`SafetyPlan`), :func:`resolve_patient`
- errors: :class:`SafetyPlanError` and its family (input, configuration, server, policy, revision, outbox);
  each has a ``kind`` (:class:`Kind`), and a delivery's ``status`` is an :class:`Outcome`

Names are loaded on first use (PEP 562), so ``import fhir_safetyplan`` and ``safetyplan --help`` stay fast:
``FhirClient`` brings in requests, ``AnswersDocument`` pydantic, ``extract_bundle`` fhirpathpy, and nothing is
imported before it is asked for. Type checkers and IDEs see the real types through the ``TYPE_CHECKING`` imports.
A root name never equals a submodule's name (``extract``, ``document`` are modules), so it cannot be shadowed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fhir_safetyplan.answers import AnswersDocument as AnswersDocument
    from fhir_safetyplan.bundle import submission_of as submission_of
    from fhir_safetyplan.client import AuthError as AuthError
    from fhir_safetyplan.client import BasicAuth as BasicAuth
    from fhir_safetyplan.client import BearerAuth as BearerAuth
    from fhir_safetyplan.client import EntryResult as EntryResult
    from fhir_safetyplan.client import FhirClient as FhirClient
    from fhir_safetyplan.client import FhirError as FhirError
    from fhir_safetyplan.client import FhirHttpError as FhirHttpError
    from fhir_safetyplan.client import ServerConfigError as ServerConfigError
    from fhir_safetyplan.client import ServerIncompatible as ServerIncompatible
    from fhir_safetyplan.client import ServerRejected as ServerRejected
    from fhir_safetyplan.client import ServerUnavailable as ServerUnavailable
    from fhir_safetyplan.client import SmartBackendAuth as SmartBackendAuth
    from fhir_safetyplan.client import UnknownPatient as UnknownPatient
    from fhir_safetyplan.client import WriteConflict as WriteConflict
    from fhir_safetyplan.delivery.deliver import DeliveryResult as DeliveryResult
    from fhir_safetyplan.delivery.deliver import attempt as attempt
    from fhir_safetyplan.delivery.deliver import deliver as deliver
    from fhir_safetyplan.delivery.deliver import flush as flush
    from fhir_safetyplan.delivery.guard import RefusedByPolicy as RefusedByPolicy
    from fhir_safetyplan.delivery.outbox import Outbox as Outbox
    from fhir_safetyplan.delivery.outbox import OutboxDamaged as OutboxDamaged
    from fhir_safetyplan.delivery.outbox_rules import OutboxStore as OutboxStore
    from fhir_safetyplan.delivery.store import OutboxUnavailable as OutboxUnavailable
    from fhir_safetyplan.delivery.store import open_outbox as open_outbox
    from fhir_safetyplan.document import CrisisCentre as CrisisCentre
    from fhir_safetyplan.document import DocumentContext as DocumentContext
    from fhir_safetyplan.errors import ConfigError as ConfigError
    from fhir_safetyplan.errors import InputError as InputError
    from fhir_safetyplan.errors import SafetyPlanError as SafetyPlanError
    from fhir_safetyplan.errors import ValidationFailed as ValidationFailed
    from fhir_safetyplan.errors import has_errors as has_errors
    from fhir_safetyplan.outcomes import Kind as Kind
    from fhir_safetyplan.outcomes import Outcome as Outcome
    from fhir_safetyplan.pipeline import build_bundle as build_bundle
    from fhir_safetyplan.pipeline import extract as extract_bundle
    from fhir_safetyplan.pipeline import respond as respond
    from fhir_safetyplan.pipeline import validate as validate
    from fhir_safetyplan.questionnaire import build_questionnaire as build_questionnaire
    from fhir_safetyplan.revise import RevisionConflict as RevisionConflict
    from fhir_safetyplan.show import PlanNotFound as PlanNotFound
    from fhir_safetyplan.show import SafetyPlan as SafetyPlan
    from fhir_safetyplan.show import read_plan as read_plan
    from fhir_safetyplan.show import resolve_patient as resolve_patient
    from fhir_safetyplan.validation import ValidationOptions as ValidationOptions
    from fhir_safetyplan.validation import validate_response as validate_response

    __version__: str

#: public name -> (module, attribute there); the TYPE_CHECKING imports above say the same for type checkers
_PUBLIC: dict[str, tuple[str, str]] = {
    # build
    "build_bundle": ("fhir_safetyplan.pipeline", "build_bundle"),
    "respond": ("fhir_safetyplan.pipeline", "respond"),
    "extract_bundle": ("fhir_safetyplan.pipeline", "extract"),
    "submission_of": ("fhir_safetyplan.bundle", "submission_of"),
    "DocumentContext": ("fhir_safetyplan.document", "DocumentContext"),
    "CrisisCentre": ("fhir_safetyplan.document", "CrisisCentre"),
    "AnswersDocument": ("fhir_safetyplan.answers", "AnswersDocument"),
    "build_questionnaire": ("fhir_safetyplan.questionnaire", "build_questionnaire"),
    # validate
    "validate": ("fhir_safetyplan.pipeline", "validate"),
    "validate_response": ("fhir_safetyplan.validation", "validate_response"),
    "ValidationOptions": ("fhir_safetyplan.validation", "ValidationOptions"),
    "has_errors": ("fhir_safetyplan.errors", "has_errors"),
    # deliver
    "FhirClient": ("fhir_safetyplan.client", "FhirClient"),
    "BearerAuth": ("fhir_safetyplan.client", "BearerAuth"),
    "BasicAuth": ("fhir_safetyplan.client", "BasicAuth"),
    "SmartBackendAuth": ("fhir_safetyplan.client", "SmartBackendAuth"),
    "deliver": ("fhir_safetyplan.delivery.deliver", "deliver"),
    "attempt": ("fhir_safetyplan.delivery.deliver", "attempt"),
    "flush": ("fhir_safetyplan.delivery.deliver", "flush"),
    "Outbox": ("fhir_safetyplan.delivery.outbox", "Outbox"),
    "open_outbox": ("fhir_safetyplan.delivery.store", "open_outbox"),
    "OutboxStore": ("fhir_safetyplan.delivery.outbox_rules", "OutboxStore"),
    "DeliveryResult": ("fhir_safetyplan.delivery.deliver", "DeliveryResult"),
    "EntryResult": ("fhir_safetyplan.client", "EntryResult"),
    # read back
    "read_plan": ("fhir_safetyplan.show", "read_plan"),
    "resolve_patient": ("fhir_safetyplan.show", "resolve_patient"),
    "SafetyPlan": ("fhir_safetyplan.show", "SafetyPlan"),
    # errors, and what they mean
    "SafetyPlanError": ("fhir_safetyplan.errors", "SafetyPlanError"),
    "InputError": ("fhir_safetyplan.errors", "InputError"),
    "ValidationFailed": ("fhir_safetyplan.errors", "ValidationFailed"),
    "ConfigError": ("fhir_safetyplan.errors", "ConfigError"),
    "FhirError": ("fhir_safetyplan.client", "FhirError"),
    "FhirHttpError": ("fhir_safetyplan.client", "FhirHttpError"),
    "ServerRejected": ("fhir_safetyplan.client", "ServerRejected"),
    "UnknownPatient": ("fhir_safetyplan.client", "UnknownPatient"),
    "ServerUnavailable": ("fhir_safetyplan.client", "ServerUnavailable"),
    "ServerConfigError": ("fhir_safetyplan.client", "ServerConfigError"),
    "ServerIncompatible": ("fhir_safetyplan.client", "ServerIncompatible"),
    "AuthError": ("fhir_safetyplan.client", "AuthError"),
    "WriteConflict": ("fhir_safetyplan.client", "WriteConflict"),
    "RefusedByPolicy": ("fhir_safetyplan.delivery.guard", "RefusedByPolicy"),
    "RevisionConflict": ("fhir_safetyplan.revise", "RevisionConflict"),
    "OutboxDamaged": ("fhir_safetyplan.delivery.outbox", "OutboxDamaged"),
    "OutboxUnavailable": ("fhir_safetyplan.delivery.store", "OutboxUnavailable"),
    "PlanNotFound": ("fhir_safetyplan.show", "PlanNotFound"),
    "Kind": ("fhir_safetyplan.outcomes", "Kind"),
    "Outcome": ("fhir_safetyplan.outcomes", "Outcome"),
}

__all__ = [
    "AnswersDocument",
    "AuthError",
    "BasicAuth",
    "BearerAuth",
    "ConfigError",
    "CrisisCentre",
    "DeliveryResult",
    "DocumentContext",
    "EntryResult",
    "FhirClient",
    "FhirError",
    "FhirHttpError",
    "InputError",
    "Kind",
    "Outbox",
    "OutboxDamaged",
    "OutboxStore",
    "OutboxUnavailable",
    "Outcome",
    "PlanNotFound",
    "RefusedByPolicy",
    "RevisionConflict",
    "SafetyPlan",
    "SafetyPlanError",
    "ServerConfigError",
    "ServerIncompatible",
    "ServerRejected",
    "ServerUnavailable",
    "SmartBackendAuth",
    "UnknownPatient",
    "ValidationFailed",
    "ValidationOptions",
    "WriteConflict",
    "attempt",
    "build_bundle",
    "build_questionnaire",
    "deliver",
    "extract_bundle",
    "flush",
    "has_errors",
    "open_outbox",
    "read_plan",
    "resolve_patient",
    "respond",
    "submission_of",
    "validate",
    "validate_response",
]


def _package_version() -> str:
    # importlib.metadata costs more than the rest of `safetyplan --help`, so it is imported only when asked.
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("fhir-safetyplan")
    except PackageNotFoundError:  # running from a source tree without installation
        return "0.0.0+unknown"


def __getattr__(name: str) -> Any:
    """Load a public name (or ``__version__``) on first use and keep it (PEP 562)."""
    if name == "__version__":
        value: Any = _package_version()
    elif name in _PUBLIC:
        module, attribute = _PUBLIC[name]
        value = getattr(importlib.import_module(module), attribute)
    else:
        raise AttributeError(f"module 'fhir_safetyplan' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__, "__version__"})
