"""``Questionnaire/$populate`` and ``Questionnaire/{id}/$populate`` (SDC 4.0 operation, Parameters in and out).

In: ``questionnaire`` (one of our forms: the resource, its canonical ``url|version``, or a Reference), ``subject``
(a Reference), and ``context`` with ``name`` = the form's previous-response launch context (``previousResponse``)
and ``content`` = that QuestionnaireResponse. Without such a context, and with an upstream configured, the
subject's current plan is read from the upstream (as ``safetyplan populate --server`` does). Out: Parameters with
``response`` (the in-progress QuestionnaireResponse) and ``issues`` (what was not carried over). Errors are
OperationOutcomes with 4xx; the same token, size limit and media types as the other operations.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from fhir_safetyplan import codes
from fhir_safetyplan import populate as pop
from fhir_safetyplan.content import load
from fhir_safetyplan.errors import JSON
from fhir_safetyplan.populate_source import find_current_plan
from fhir_safetyplan.population import context_name
from fhir_safetyplan.questionnaire import questionnaire_for, shared_questionnaire
from fhir_safetyplan.service.fhirio import HttpError, fhir_response, negotiate, read_json
from fhir_safetyplan.service.openapi import (
    ERRORS,
    OUTCOME,
    RESOURCE,
    described,
    example_populate,
    request_body,
)
from fhir_safetyplan.service.routes import _FORMAT, _settings, _work, operation

router = APIRouter()

_BODY = request_body(
    "SDC $populate input Parameters: 'questionnaire' (resource, canonical or Reference; optional at instance "
    "level), 'subject' (Reference) and 'context' (name 'previousResponse', content the previous "
    "QuestionnaireResponse).",
    RESOURCE,
    {"previous": {"summary": "A previous plan", "value": example_populate()}},
)
_RESPONSES: dict[int | str, JSON] = {
    200: described("Parameters with 'response' (in-progress QuestionnaireResponse) and 'issues'."),
    404: described("The Questionnaire, or (from the upstream) the patient's plan, was not found.", OUTCOME),
    **ERRORS,
}


def _bad(message: str, code: str = "invalid") -> HttpError:
    return HttpError(400, message, code=code)


def _params(body: Any) -> list[JSON]:
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise _bad("$populate takes a Parameters resource (SDC): 'questionnaire', 'subject', 'context'.")
    params = body.get("parameter", [])
    if not isinstance(params, list) or not all(isinstance(p, dict) for p in params):
        raise _bad("Parameters.parameter must be a list of parameters.", "structure")
    return params


def _our_form(value: Any, base: str | None) -> JSON:
    """Our shared Questionnaire named by a canonical, a ``Questionnaire/<id>`` reference, a resource or an id."""

    if isinstance(value, dict):
        canonical = f"{value.get('url', '')}|{value.get('version', '')}" if "url" in value else None
        value = canonical or value.get("reference") or value.get("id")
    if isinstance(value, str):
        ident = value.removeprefix("Questionnaire/")
        for lang in (None, *codes.LANGUAGES):
            if ident == codes.questionnaire_id(lang):
                return shared_questionnaire(lang, base)
        found = questionnaire_for(value, base)
        if found is not None:
            return found
    raise HttpError(
        404,
        "Not one of this service's forms: give the questionnaire as its url|version, Questionnaire/<id> or "
        "the resource (GET /Questionnaire lists them).",
        code="not-found",
    )


def _parse(params: list[JSON], form_id: str | None) -> tuple[Any, JSON | None, JSON | None]:
    """(questionnaire value or None, subject, previous response) from the input parameters."""

    name = context_name(load())
    questionnaire: Any = form_id
    subject: JSON | None = None
    previous: JSON | None = None
    for p in params:
        pname = p.get("name")
        if pname == "questionnaire" and form_id is None:
            questionnaire = next(
                (
                    p[k]
                    for k in ("resource", "valueCanonical", "valueUri", "valueString", "valueReference")
                    if k in p
                ),
                None,
            )
        elif pname == "subject":
            if not isinstance(p.get("valueReference"), dict):
                raise _bad('\'subject\' must be a valueReference, e.g. {"reference": "Patient/123"}.')
            subject = p["valueReference"]
        elif pname == "context":
            given = p.get("part")
            parts = (
                {q.get("name"): q for q in given if isinstance(q, dict)} if isinstance(given, list) else {}
            )
            if parts.get("name", {}).get("valueString") != name:
                continue  # other launch contexts (patient, user) add nothing to this form
            content = parts.get("content", {})
            if not isinstance(content.get("resource"), dict):
                raise _bad(
                    f"context '{name}' must carry the previous QuestionnaireResponse as 'content' resource."
                )
            previous = content["resource"]
    return questionnaire, subject, previous


def _populate(body: Any, form_id: str | None, request: Request) -> JSON:
    settings = _settings(request)
    base = settings.canonical_base
    questionnaire_value, subject, previous = _parse(_params(body), form_id)
    issues: list[JSON] = []
    if previous is None:
        previous, found = _from_upstream(request, subject)
        issues.extend(found)
        subject = subject or previous.get("subject")
    previous = pop.check_previous(previous)
    if questionnaire_value is None:
        questionnaire = pop.target_questionnaire(previous, None, base)
    else:
        questionnaire = _our_form(questionnaire_value, base)
    result = pop.populate(questionnaire, previous, subject)
    return pop.Populated(result.response, (*issues, *result.issues)).parameters()


def _from_upstream(request: Request, subject: JSON | None) -> tuple[JSON, list[JSON]]:
    settings = _settings(request)
    reference = (subject or {}).get("reference")
    if not settings.upstream:
        raise _bad(
            "No previous response given (context 'previousResponse') and no upstream to read it from.",
            "required",
        )
    if not isinstance(reference, str) or not reference.startswith("Patient/"):
        raise _bad(
            "To read the current plan from the upstream, give 'subject' as a Patient/<id> reference.",
            "required",
        )
    # Not found (404), or the upstream failing us (502): the app's one mapping answers it.
    plan = find_current_plan(request.app.state.delivery.client(settings.upstream), reference)
    return plan.response, list(plan.issues)


@operation(
    router,
    "/Questionnaire/$populate",
    "SDC $populate: a follow-up form pre-filled from the previous response (or the upstream's plan)",
    _BODY,
    _RESPONSES,
)
async def populate_type(request: Request, format_: str | None = _FORMAT) -> Response:
    """SDC ``$populate`` at type level: the form is the ``questionnaire`` parameter (or the previous one's)."""
    media = negotiate(request)
    body = await read_json(request, _settings(request).max_body_bytes)
    return fhir_response(await _work(_populate, body, None, request), media_type=media)


@operation(
    router,
    "/Questionnaire/{id}/$populate",
    "SDC $populate of one form (sikkerhetsplan, -nb, -nn, -en)",
    _BODY,
    _RESPONSES,
)
async def populate_instance(
    request: Request,
    id: str = Path(
        description="sikkerhetsplan (multilingual), sikkerhetsplan-nb, -nn or -en",
        max_length=64,
        pattern=r"^[A-Za-z0-9\-.]{1,64}$",
        examples=["sikkerhetsplan-nb"],
    ),
    format_: str | None = _FORMAT,
) -> Response:
    """SDC ``$populate`` at instance level: the form is the one in the path."""
    media = negotiate(request)
    body = await read_json(request, _settings(request).max_body_bytes)
    _our_form(id, _settings(request).canonical_base)  # 404 before any work
    return fhir_response(await _work(_populate, body, id, request), media_type=media)
