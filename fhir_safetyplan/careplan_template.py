"""The SDC template-based extraction markup: the CarePlan template contained in the Questionnaire.

One activity per checklist item answered "No" (its standard help as the suggestion), one per concrete action
agreed, and one for a report of concern still to be sent (also after a refusal). Every value is a
``templateExtractValue`` expression (literals included) with no static placeholder beside it: the npm engine
merges static nested template data shallowly and keeps a placeholder whose expression finds nothing. Contexts start
at ``%resource``, because the template sits on the always-answered conversation group.
"""

from __future__ import annotations

from fhir_safetyplan import codes, fhir_r4
from fhir_safetyplan.codes import TEMPLATE_EXTRACT_CONTEXT, TEMPLATE_EXTRACT_VALUE
from fhir_safetyplan.content import Content
from fhir_safetyplan.errors import JSON
from fhir_safetyplan.form_ids import CATEGORY_CODE, CS_ANSWER, CS_DUTY, CS_PLAN, TEMPLATE_ID, Link


def careplan_template(c: Content, base: str, lang: str) -> JSON:
    """The contained CarePlan template of the Questionnaire in ``lang``."""
    cs = codes.codesystem_url(base, CS_PLAN)

    def coding(code: str, display: str | None, system: str = cs) -> JSON:
        out = {"_system": _tev(_lit(system)), "_code": _tev(_lit(code))}
        return {**out, "_display": _tev(_lit(display))} if display else out

    def activity(context: str, code: JSON, description: str, literal: bool) -> JSON:
        return fhir_r4.activity_template(
            [{"url": TEMPLATE_EXTRACT_CONTEXT, "valueString": context}],
            code,
            _tev("'not-started'"),
            _tev(_lit(description) if literal else description),
        )

    def path(*links: str) -> str:
        return "%resource" + "".join(f".item.where(linkId='{link}')" for link in links)

    activities = []
    answer_cs = codes.codesystem_url(base, CS_ANSWER)
    for ci in c.checklist:
        # linkId first, then the answer: fhirpathpy evaluates the inner where() per candidate item, so
        # narrowing by linkId before testing the answer makes this ~6x cheaper; both engines agree on it.
        context = (
            path(Link.PLAN, Link.CHECKLIST, Link.checklist_item(ci.key))
            + f".where(answer.valueCoding.where(system='{answer_cs}' and code='N').exists())"
        )
        code = coding(ci.key, ci.label.get(lang))
        activities.append(activity(context, code, ci.help.get(lang), literal=True))
    agreed = c.text("journal", field="agreed").get(lang)
    activities.append(
        activity(
            path(Link.PLAN, Link.AGREED) + ".answer",
            coding("avtalt-tiltak", agreed),
            "value",
            literal=False,
        )
    )
    # A report of concern still to be sent is tracked as a planned activity, also after a refusal.
    will_send = c.option("duty-status", "will-send")
    duty_cs = codes.codesystem_url(base, CS_DUTY)
    activities.append(
        activity(
            path(Link.DEPENDANTS, Link.DUTY)
            + f".where(answer.valueCoding.where(system='{duty_cs}' and code='{will_send.code}').exists())",
            coding(will_send.code, will_send.display.get(lang), duty_cs),
            will_send.display.get(lang),
            literal=True,
        )
    )
    title = c.text("neutral", field="careplan-title").get(lang)
    return {
        "resourceType": "CarePlan",
        "id": TEMPLATE_ID,
        # No meta.security here: dom-5 forbids labels on contained resources; they are added on extraction.
        "language": lang,  # the language of its displays, so a $extract result can be validated as it is
        "_status": _tev("'active'"),
        "_intent": _tev("'plan'"),
        # A neutral category code, without a display: lists in record systems show it next to the title.
        "category": [{"coding": [coding(CATEGORY_CODE, None)]}],
        "_title": _tev(_lit(title)),
        "subject": {"_reference": _tev("%resource.subject.reference")},
        "_created": _tev("%resource.authored"),
        "author": {"_reference": _tev("%resource.author.reference")},
        "supportingInfo": [{"_reference": _tev("'QuestionnaireResponse/' + %resource.id")}],
        "activity": activities,
    }


def _tev(expression: str) -> JSON:
    return {"extension": [{"url": TEMPLATE_EXTRACT_VALUE, "valueString": expression}]}


def _lit(value: str) -> str:
    """A FHIRPath string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
