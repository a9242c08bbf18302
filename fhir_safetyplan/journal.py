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

from dataclasses import dataclass

from fhir_safetyplan.codes import answer_code
from fhir_safetyplan.content import Content, load
from fhir_safetyplan.document import CrisisCentre
from fhir_safetyplan.errors import JSON
from fhir_safetyplan.form_ids import Link
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


@dataclass(frozen=True)
class _Note:
    """The answers a note is written from, its language and content: the journal's texts, and the lines each
    kind of answer becomes."""

    a: Answers
    lang: str
    c: Content

    def __call__(self, key: str) -> str:
        """The journal text ``key`` in the note's language."""
        return self.c.text("journal", field=key).get(self.lang)

    def notes(self, key: str, link: str) -> list[str]:
        """``<text>: <sentence>`` for each free-text answer to ``link``."""
        return [f"{self(key)}: {sentence(s)}" for s in strings(self.a, link)]

    def chosen(self, key: str, link: str, section: str, sep: str = ":") -> list[str]:
        """``<text><sep> <option>.`` for each coded answer to ``link`` (its options are content's ``section``)."""
        return [
            f"{self(key)}{sep} {lower_first(option_display(self.c, section, coding, self.lang))}."
            for coding in codings(self.a, link)
        ]


def journal_lines(
    qr: JSON, lang: str, content: Content | None = None, crisis_centre: CrisisCentre | None = None
) -> list[str]:
    """The human-readable journal note, line by line, in ``lang``."""
    j = _Note(answers_by_link(qr), lang, content or load())
    a = j.a
    lines = [f"{j('heading')} {format_date(str(qr.get('authored', '')), lang)}"]
    lines += _conversation_lines(j)
    contact = safe_contact_parts(qr, lang, j.c, code_word=False)
    if contact:
        lines.append(f"{j('contact')}:")
        lines += [f"• {part}" for part in contact]
    if involvement_of(a) in ("yes", "conversation-only"):
        lines += _plan_lines(j, crisis_centre)
    if yes_no(a, Link.ADVICE_GIVEN) or yes_no(a, Link.ADVICE_GIVEN_V11):
        lines.append(j("advice-given"))
    lines += _dependants_lines(j)
    mental = answer_key(a, Link.MENTAL_PRESENT)
    if mental:
        lines.append(j(f"mental-{mental}"))
        lines += j.notes("mental-adaptation", Link.MENTAL_ADAPTATION)
    lines += _risk_lines(j)
    lines += j.chosen("avert", Link.AVERT_STATUS, "avert-status")
    lines += j.notes("avert-note", Link.AVERT_NOTE)
    return lines


def _conversation_lines(j: _Note) -> list[str]:
    a = j.a
    lines = []
    for coding in codings(a, Link.CONVERSATION_TYPE):
        kind = next(
            (n for n, o in j.c.raw["conversation-types"].items() if o["code"] == coding.get("code")), None
        )
        if kind:
            lines.append(j(f"conversation-{kind}"))
    alone = yes_no(a, Link.ALONE)
    if alone is not None:
        lines.append(j("alone-yes") if alone else j("alone-no"))
    lines += j.chosen("interpreter", Link.INTERPRETER, "interpreter")
    informed = yes_no(a, Link.INFORMED)
    if informed is not None:
        lines.append(j("informed") if informed else j("not-informed"))
    wants = involvement_of(a)
    if wants == "no":
        lines.append(j("refusal"))
        lines += j.notes("refusal-note", Link.REFUSAL_NOTE)
        if yes_no(a, Link.REFUSAL_INFORMED):
            lines.append(j("refusal-informed"))
    elif wants == "yes":
        lines.append(j("involvement"))
    elif wants == "conversation-only":
        lines.append(j("conversation-only"))
    lines += j.notes("existing", Link.EXISTING)
    hide = codings(a, Link.ACCESS_HIDE)
    if hide:
        hidden = any(answer_code(x) is None for x in hide)  # a Volven 9603 code, not "No"
        lines.append(j("access-hidden") if hidden else j("access-visible"))
    return lines


def _plan_lines(j: _Note, crisis_centre: CrisisCentre | None) -> list[str]:
    a, c = j.a, j.c
    groups: dict[str, list[str]] = {
        k: [] for k in ("in-place", "missing", "not-relevant", "declined", "not-asked")
    }
    for ci in c.checklist:
        key = answer_key(a, Link.checklist_item(ci.key))
        if key:
            groups[_CHECKLIST_GROUPS.get(key, key)].append(ci.label.get(j.lang))
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


def _dependants_lines(j: _Note) -> list[str]:
    a = j.a
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
    lines += j.notes("dependants-plan", Link.DEPENDANTS_PLAN)
    # a dash, not a colon: some published status displays have a colon of their own
    lines += j.chosen("duty", Link.DUTY, "duty-status", sep=" –")
    lines += j.notes("duty-note", Link.DUTY_NOTE)
    return lines


def _risk_lines(j: _Note) -> list[str]:
    a = j.a
    if not yes_no(a, Link.RISK_DONE):
        return []
    parts = [option_display(j.c, "instruments", x, j.lang) for x in codings(a, Link.RISK_INSTRUMENT)]
    parts += [format_date(str(x.get("valueDate")), j.lang) for x in a.get(Link.RISK_DATE, [])]
    if not strings(
        a, Link.RISK_BY
    ):  # 1.0.0 did not ask who did it, only that it was done by trained personnel
        parts.append(j("risk-by"))
    # one line: what was used and when, then who, the conclusion and the level
    return [
        " ".join(
            [
                f"{j('risk')}: {', '.join(parts)}.",
                *j.notes("risk-performed-by", Link.RISK_BY),
                *j.notes("risk-conclusion", Link.RISK_CONCLUSION),
                *j.chosen("risk-level", Link.RISK_LEVEL, "levels"),
            ]
        )
    ]
