"""fhir-safetyplan: safety planning with people exposed to domestic violence, as FHIR R4.

The public API is small and stable; every stage is a plain function over JSON-shaped dicts:

- :func:`fhir_safetyplan.questionnaire.build_questionnaire` — the Questionnaire (nb with nn/en, or one language)
- :func:`fhir_safetyplan.validation.validate_response` — a QuestionnaireResponse against its Questionnaire
- :func:`fhir_safetyplan.extract.extract` — SDC template-based ``$extract``
- :func:`fhir_safetyplan.bundle.build_bundle` — the journal transaction Bundle

Heavy dependencies (fhir.resources, fhirpathpy, requests) are imported lazily by the modules that need them,
so ``import fhir_safetyplan`` and ``safetyplan --help`` stay fast.
"""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

try:
    __version__ = _version("fhir-safetyplan")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
