"""FHIR R4: the one module that knows which FHIR version this package reads and writes, and the shapes of it that
differ in later versions. The rest of the code asks this module, so output in R5 later changes this module (or a
sibling with the same names) rather than edits across the package.

What is R4 here:

- the version: ``fhirVersion`` 4.0.1 of the StructureDefinitions, the FHIR package and the service's
  CapabilityStatement; the core package the FHIR package depends on; the ``fhirVersion`` a server must state
  (4.0.x) before we deliver to it;
- the models received resources are parsed and checked with: fhir.resources' R4B classes (R4B's
  QuestionnaireResponse has R4's elements) and fhirpathpy's R4 model;
- ``CarePlan.activity``: in R4 the activity's code, status and description sit in ``activity.detail``; R5 has no
  ``detail`` (``activity.plannedActivityReference`` points to a request resource, ``performedActivity`` is a
  CodeableReference — https://hl7.org/fhir/R5/careplan.html). The extraction template writes activities with
  :func:`activity_template`; the documentation, the revision and ``show`` read them with the ``activity_*``
  functions.

Not here: the form page and ``preview`` render with LHC-Forms' R4 build (``fhir/R4/lformsFHIR.min.js``), and the
FHIR package's name ends in ``.r4`` (:data:`fhir_safetyplan.codes.PACKAGE_NAME`).
"""

from __future__ import annotations

import copy
from typing import Any

from fhir_safetyplan.errors import JSON

#: the FHIR version of everything this package writes
FHIR_VERSION = "4.0.1"
#: the release's name, as messages say it
RELEASE = "R4"
#: a server speaks our FHIR version when its CapabilityStatement.fhirVersion starts with this
SERVER_VERSION_PREFIX = "4.0."
#: the core package of this FHIR version (the FHIR package's dependency)
CORE_PACKAGE = "hl7.fhir.r4.core"
#: fhirpathpy's model for this FHIR version (choice types, type names)
FHIRPATH_MODEL = "r4"


def questionnaire_response_model() -> Any:
    """The fhir.resources model class a received QuestionnaireResponse is parsed with (imported on first use)."""
    from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

    return QuestionnaireResponse


# ---- CarePlan.activity -------------------------------------------------------------------------------------


def activity_template(markup: list[JSON], coding: JSON, status: JSON, description: JSON) -> JSON:
    """A ``CarePlan.activity`` of an extraction template: its ``markup`` extensions (the templateExtractContext),
    and the code's ``coding``, the status and the description as templated primitives (``_status``,
    ``_description``)."""
    return {
        "extension": markup,
        "detail": {"code": {"coding": [coding]}, "_status": status, "_description": description},
    }


def _detail(activity: object) -> JSON:
    detail = activity.get("detail") if isinstance(activity, dict) else None
    return detail if isinstance(detail, dict) else {}


def activity_codings(activity: object) -> list[JSON]:
    """The codings of what an activity is (empty when it has none or is malformed)."""
    code = _detail(activity).get("code")
    codings = code.get("coding") if isinstance(code, dict) else None
    return [c for c in codings if isinstance(c, dict)] if isinstance(codings, list) else []


def activity_status(activity: object) -> str | None:
    """An activity's status (``not-started``, ``completed``, …), or None."""
    status = _detail(activity).get("status")
    return status if isinstance(status, str) else None


def activity_description(activity: object) -> str:
    """An activity's description ('' when it has none)."""
    description = _detail(activity).get("description")
    return "" if description is None else str(description)


def completed_activity(activity: object) -> JSON:
    """A copy of ``activity`` marked completed (an open activity of an earlier plan, now in place)."""
    return {"detail": {**copy.deepcopy(_detail(activity)), "status": "completed"}}
