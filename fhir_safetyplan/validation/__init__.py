"""Validation of inputs: a QuestionnaireResponse against its Questionnaire, and the rules this form adds.

- :mod:`.response` — :func:`validate_response` / :func:`assert_valid` (what the HL7 validator checks, plus the
  journal's protections), with :mod:`.header` (status, canonical, Norwegian identifiers) and
  :mod:`.enable_when` (condition semantics);
- :mod:`.index` — what validation needs from one Questionnaire, indexed once and cached;
- :mod:`.primitives` — R4 primitive formats and answer value[x] shapes;
- :mod:`.text` — text-safety rules for free text (control characters, bidi overrides, markup, length);
- :mod:`.documentation` — R4 structure of a received response and what this form's documentation needs.
"""

from __future__ import annotations

from fhir_safetyplan.validation.documentation import documentation_issues, structure_issues
from fhir_safetyplan.validation.index import QuestionnaireIndex, index_questionnaire
from fhir_safetyplan.validation.options import ValidationOptions
from fhir_safetyplan.validation.primitives import ALLOWED_ANSWER_TYPES, MAX_DEPTH
from fhir_safetyplan.validation.response import assert_valid, validate_response

__all__ = [
    "ALLOWED_ANSWER_TYPES",
    "MAX_DEPTH",
    "QuestionnaireIndex",
    "ValidationOptions",
    "assert_valid",
    "documentation_issues",
    "index_questionnaire",
    "structure_issues",
    "validate_response",
]
