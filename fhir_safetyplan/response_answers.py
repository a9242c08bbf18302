"""What a QuestionnaireResponse answered, read by linkId: answer lists, codings, yes/no, free text, the
involvement chosen and the access labels asked for.

Defensive: also used on responses that have not passed validation yet. Pure; no logging.
"""

from __future__ import annotations

from typing import Any

from fhir_safetyplan import codes
from fhir_safetyplan.codes import answer_code
from fhir_safetyplan.content import load
from fhir_safetyplan.errors import JSON
from fhir_safetyplan.form_ids import Link


def answers_by_link(qr: JSON) -> dict[str, list[JSON]]:
    """Every answer list in a QuestionnaireResponse, by linkId (nested items included)."""
    out: dict[str, list[JSON]] = {}

    # Defensive: also used to check responses that have not passed validation yet.
    def walk(items: Any, depth: int) -> None:
        if not isinstance(items, list) or depth > 50:
            return
        for it in items:
            if not isinstance(it, dict):
                continue
            answers = it.get("answer")
            if isinstance(answers, list) and isinstance(it.get("linkId"), str):
                out[it["linkId"]] = [a for a in answers if isinstance(a, dict)]
                for a in out[it["linkId"]]:
                    walk(a.get("item"), depth + 1)
            walk(it.get("item"), depth + 1)

    walk(qr.get("item"), 0)
    return out


def codings(answers: dict[str, list[JSON]], link: str) -> list[JSON]:
    """The codings answered to ``link``."""
    return [a["valueCoding"] for a in answers.get(link, []) if "valueCoding" in a]


def yes_no(answers: dict[str, list[JSON]], link: str) -> bool | None:
    """True/False for a Y/N (or boolean) answer, None when unanswered or declined."""
    for a in answers.get(link, []):
        if "valueBoolean" in a:
            return bool(a["valueBoolean"])
        code = answer_code(a.get("valueCoding"))
        if code in ("Y", "N"):
            return code == "Y"
    return None


def strings(answers: dict[str, list[JSON]], link: str) -> list[str]:
    """The free texts answered to ``link``."""
    return [str(a["valueString"]) for a in answers.get(link, []) if "valueString" in a]


def involvement_of(answers: dict[str, list[JSON]]) -> str | None:
    """``yes`` (services involved), ``conversation-only`` (a safety plan, no other services now), ``no`` (a
    refusal), or None when unanswered."""
    for coding in codings(answers, Link.INVOLVEMENT):
        code = answer_code(coding)
        if code in ("Y", "N"):
            return "yes" if code == "Y" else "no"
        if coding.get("code") == load().option("involvement", "conversation-only").code:
            return "conversation-only"
    return None


def access_labels(answers: dict[str, list[JSON]]) -> list[JSON]:
    """The Volven 9603 codes chosen for hiding the documents from electronic access (empty when not chosen)."""
    return [
        {"system": str(x["system"]), "code": str(x["code"])}
        for x in codings(answers, Link.ACCESS_HIDE)
        if x.get("system") == codes.VOLVEN_ACCESS and isinstance(x.get("code"), str)
    ]
