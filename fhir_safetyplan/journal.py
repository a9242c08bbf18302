"""The journal note (the text of the DocumentReference), line by line, in the form's language.

Statements of what was discussed and agreed — or the refusal — written from the answers only: the note states
what is in place and what is not, and what was actually agreed; it never states help the clinician did not see
(the standard help is shown in the form under the item, and is the CarePlan activity's suggestion). The agreed
code word is left out (it is in the contact agreement Flag only). The first line is neutral: some record
systems show it as a preview.

One function serves every published version: items that exist only in 1.0.0 (one question for children *or*
others, a ``boolean`` per yes/no question, the behaviour advice under the plan) are read when present.
"""

from __future__ import annotations

from fhir_safetyplan.codes import answer_code
from fhir_safetyplan.content import Content, load
from fhir_safetyplan.document import CrisisCentre
from fhir_safetyplan.errors import JSON
from fhir_safetyplan.questionnaire import Link
from fhir_safetyplan.response_answers import answers_by_link, codings, involvement_of, strings, yes_no
from fhir_safetyplan.sentences import format_date, lower_first, option_display, safe_contact_parts, sentence

Answers = dict[str, list[JSON]]

#: The answer codes of the checklist and the yes/no/unknown questions -> their name in content.toml
#: (``[answers.<name>]``), which is also their key in the journal texts (our answer CodeSystem; content 1.0.0:
#: the HL7 systems with the same codes).
_KEYS: dict[str, str] = {load().option("answers", name).code: str(name) for name in load().raw["answers"]}
_CHECKLIST_GROUPS = {"yes": "in-place", "no": "missing"}


def answer_key(a: Answers, link: str) -> str | None:
    """``yes`` / ``no`` / ``not-relevant`` / ``declined`` / ``not-asked`` for a coded answer, None when
    unanswered."""
    for coding in codings(a, link):
        key = _KEYS.get(answer_code(coding) or "")
        if key:
            return key
    return None


def journal_lines(
    qr: JSON, lang: str, content: Content | None = None, crisis_centre: CrisisCentre | None = None
) -> list[str]:
    """The human-readable journal note, line by line, in ``lang``."""
    c = content or load()

    def j(key: str) -> str:
        return c.text("journal", field=key).get(lang)

    a = answers_by_link(qr)
    lines = [f"{j('heading')} {format_date(str(qr.get('authored', '')), lang)}"]
    lines += _conversation_lines(a, lang, c)
    contact = safe_contact_parts(qr, lang, c, code_word=False)
    if contact:
        lines.append(f"{j('contact')}:")
        lines += [f"• {part}" for part in contact]
    if involvement_of(a) in ("yes", "conversation-only"):
        lines += _plan_lines(a, lang, c, crisis_centre)
    if yes_no(a, Link.ADVICE_GIVEN) or yes_no(a, Link.ADVICE_GIVEN_V11):
        lines.append(j("advice-given"))
    lines += _dependants_lines(a, lang, c)
    mental = answer_key(a, Link.MENTAL_PRESENT)
    if mental:
        lines.append(j(f"mental-{mental}"))
        lines += [f"{j('mental-adaptation')}: {sentence(s)}" for s in strings(a, Link.MENTAL_ADAPTATION)]
    lines += _risk_lines(a, lang, c)
    for coding in codings(a, Link.AVERT_STATUS):
        lines.append(f"{j('avert')}: {lower_first(option_display(c, 'avert-status', coding, lang))}.")
    lines += [f"{j('avert-note')}: {sentence(s)}" for s in strings(a, Link.AVERT_NOTE)]
    return lines


def _conversation_lines(a: Answers, lang: str, c: Content) -> list[str]:
    def j(key: str) -> str:
        return c.text("journal", field=key).get(lang)

    lines = []
    for coding in codings(a, Link.CONVERSATION_TYPE):
        kind = next(
            (n for n, o in c.raw["conversation-types"].items() if o["code"] == coding.get("code")), None
        )
        if kind:
            lines.append(j(f"conversation-{kind}"))
    alone = yes_no(a, Link.ALONE)
    if alone is not None:
        lines.append(j("alone-yes") if alone else j("alone-no"))
    lines += [
        f"{j('interpreter')}: {lower_first(option_display(c, 'interpreter', x, lang))}."
        for x in codings(a, Link.INTERPRETER)
    ]
    informed = yes_no(a, Link.INFORMED)
    if informed is not None:
        lines.append(j("informed") if informed else j("not-informed"))
    wants = involvement_of(a)
    if wants == "no":
        lines.append(j("refusal"))
        lines += [f"{j('refusal-note')}: {sentence(s)}" for s in strings(a, Link.REFUSAL_NOTE)]
        if yes_no(a, Link.REFUSAL_INFORMED):
            lines.append(j("refusal-informed"))
    elif wants == "yes":
        lines.append(j("involvement"))
    elif wants == "conversation-only":
        lines.append(j("conversation-only"))
    lines += [f"{j('existing')}: {sentence(s)}" for s in strings(a, Link.EXISTING)]
    hide = codings(a, Link.ACCESS_HIDE)
    if hide:
        hidden = any(answer_code(x) is None for x in hide)  # a Volven 9603 code, not "No"
        lines.append(j("access-hidden") if hidden else j("access-visible"))
    return lines


def _plan_lines(a: Answers, lang: str, c: Content, crisis_centre: CrisisCentre | None) -> list[str]:
    def j(key: str) -> str:
        return c.text("journal", field=key).get(lang)

    groups: dict[str, list[str]] = {
        k: [] for k in ("in-place", "missing", "not-relevant", "declined", "not-asked")
    }
    for ci in c.checklist:
        key = answer_key(a, Link.checklist_item(ci.key))
        if key:
            groups[_CHECKLIST_GROUPS.get(key, key)].append(ci.label.get(lang))
    lines = [f"{j(key)}: {', '.join(items)}." for key, items in groups.items() if items]
    missing_centre = any(
        ci.names_crisis_centre and answer_key(a, Link.checklist_item(ci.key)) == "no" for ci in c.checklist
    )
    if missing_centre and crisis_centre:
        phone = f", {crisis_centre.phone}" if crisis_centre.phone else ""
        lines.append(f"{j('crisis-centre')}: {crisis_centre.name}{phone}.")
    agreed = strings(a, Link.AGREED)
    if agreed:
        lines.append(f"{j('agreed')}:")
        lines += [f"• {sentence(s)}" for s in agreed]
    elif groups["missing"]:
        lines.append(j("no-agreed"))
    return lines


def _dependants_lines(a: Answers, lang: str, c: Content) -> list[str]:
    def j(key: str) -> str:
        return c.text("journal", field=key).get(lang)

    lines = []
    for link, prefix in (
        (Link.DEPENDANTS_PRESENT, "dependants"),
        (Link.CHILDREN, "children"),
        (Link.PERPETRATOR_CHILDREN, "perpetrator-children"),
        (Link.OTHERS, "others"),
    ):
        key = answer_key(a, link)
        if key:
            lines.append(j(f"{prefix}-{key}"))
            if link in (Link.DEPENDANTS_PRESENT, Link.CHILDREN):
                count = a.get(Link.CHILDREN_COUNT, [])
                lines += [f"{j('children-count')}: {n.get('valueInteger')}." for n in count]
    lines += [f"{j('dependants-plan')}: {sentence(s)}" for s in strings(a, Link.DEPENDANTS_PLAN)]
    for coding in codings(a, Link.DUTY):
        # a dash, not a colon: some published status displays have a colon of their own
        lines.append(f"{j('duty')} – {lower_first(option_display(c, 'duty-status', coding, lang))}.")
    lines += [f"{j('duty-note')}: {sentence(s)}" for s in strings(a, Link.DUTY_NOTE)]
    return lines


def _risk_lines(a: Answers, lang: str, c: Content) -> list[str]:
    def j(key: str) -> str:
        return c.text("journal", field=key).get(lang)

    if not yes_no(a, Link.RISK_DONE):
        return []
    parts = [option_display(c, "instruments", x, lang) for x in codings(a, Link.RISK_INSTRUMENT)]
    parts += [format_date(str(x.get("valueDate")), lang) for x in a.get(Link.RISK_DATE, [])]
    by = strings(a, Link.RISK_BY)
    if not by:  # 1.0.0 did not ask who did it, only that it was done by trained personnel
        parts.append(j("risk-by"))
    line = f"{j('risk')}: {', '.join(parts)}."
    line += "".join(f" {j('risk-performed-by')}: {sentence(s)}" for s in by)
    line += "".join(f" {j('risk-conclusion')}: {sentence(s)}" for s in strings(a, Link.RISK_CONCLUSION))
    for x in codings(a, Link.RISK_LEVEL):
        line += f" {j('risk-level')}: {lower_first(option_display(c, 'levels', x, lang))}."
    return [line]
