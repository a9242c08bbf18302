"""How answers become the sentences of the record: dates as the record writes them, free text as a sentence,
option displays in the form's language, one line per answered question, and the agreed contact arrangement.

Pure; no logging of content.
"""

from __future__ import annotations

from fhir_safetyplan.content import Content, load
from fhir_safetyplan.errors import JSON
from fhir_safetyplan.form_ids import Link
from fhir_safetyplan.response_answers import answers_by_link, codings, strings


def format_date(value: str, lang: str) -> str:
    """A FHIR date(Time) as the record writes it: 20.11.2026 in Norwegian, ISO 2026-11-20 in English."""
    day = str(value)[:10]
    if lang in ("nb", "nn") and len(day) == 10 and day[4] == "-" and day[7] == "-":
        return f"{day[8:10]}.{day[5:7]}.{day[0:4]}"
    return day


def sentence(text: str) -> str:
    """Free text as a sentence of the note: trimmed, ending with a full stop unless it ends with punctuation."""
    text = text.strip()
    return text if not text or text[-1] in ".!?" else text + "."


def lower_first(text: str) -> str:
    """Lower-case the first letter when it continues a sentence ("… tilbys hjelp med: lage …"), but keep
    abbreviations and names (SMS, SARA:SV) as they are."""
    if len(text) > 1 and text[0].isupper() and not text[1].isupper():
        return text[0].lower() + text[1:]
    return text


def response_lines(qr: JSON, lang: str, content: Content | None = None) -> list[str]:
    """One line per answered question of a response: its text and the answer(s), for the narrative."""
    c = content or load()
    yes, no = c.text("journal", field="yes").get(lang), c.text("journal", field="no").get(lang)
    lines: list[str] = []

    def value(answer: JSON) -> str:
        for key, v in answer.items():
            if key == "valueBoolean":
                return yes if v else no
            if key == "valueCoding" and isinstance(v, dict):
                return str(v.get("display") or v.get("code") or "")
            if key.startswith("value"):
                return str(v)
        return ""

    def walk(items: list[JSON]) -> None:
        for it in items:
            answers = it.get("answer") or []
            if it.get("linkId") == Link.CODE_WORD:
                continue  # the code word is shown in the contact agreement (Flag) only
            if answers:
                text = it.get("text") or it.get("linkId")
                sep = " " if str(text).rstrip().endswith("?") else ": "
                lines.append(f"{text}{sep}{'; '.join(value(a) for a in answers)}")
                for a in answers:
                    walk(a.get("item") or [])
            walk(it.get("item") or [])

    walk(qr.get("item") or [])
    return lines


def option_display(c: Content, section: str, coding: JSON, lang: str) -> str:
    """The display of an answered option of content ``section`` in ``lang`` (else the coding's own)."""
    for o in c.options(section):
        if o.code == coding.get("code"):
            return o.display.get(lang)
    return str(coding.get("display") or coding.get("code"))


def safe_contact_parts(
    qr: JSON, lang: str, content: Content | None = None, *, code_word: bool = True
) -> list[str]:
    """The agreed contact arrangement as sentences (empty when nothing was agreed): how the patient may and must
    not be contacted, when, anything else agreed, the agreed code word (``code_word``: the Flag has it, the
    journal note does not) and when the agreement is to be reviewed."""
    c = content or load()

    def j(key: str) -> str:
        return c.text("journal", field=key).get(lang)

    a = answers_by_link(qr)
    parts = []
    safe = [lower_first(option_display(c, "channels", x, lang)) for x in codings(a, Link.SAFE_CHANNELS)]
    unsafe = [lower_first(option_display(c, "channels", x, lang)) for x in codings(a, Link.UNSAFE_CHANNELS)]
    if safe:
        parts.append(f"{j('contact-safe')}: {'; '.join(safe)}.")
    if unsafe:
        parts.append(f"{j('contact-unsafe')}: {'; '.join(unsafe)}.")
    parts += [f"{j('contact-times')}: {sentence(s)}" for s in strings(a, Link.SAFE_TIMES)]
    parts += [f"{j('contact-note')}: {sentence(s)}" for s in strings(a, Link.SAFE_NOTE)]
    if code_word:
        parts += [f"{j('contact-code-word')}: {sentence(s)}" for s in strings(a, Link.CODE_WORD)]
    if parts:
        review = [format_date(str(x.get("valueDate")), lang) for x in a.get(Link.SAFE_REVIEW, [])]
        parts += [f"{j('contact-review')}: {d}." for d in review]
    return parts


def safe_contact_text(qr: JSON, lang: str, content: Content | None = None) -> str:
    """:func:`safe_contact_parts` as one text ('' when nothing was agreed)."""
    return " ".join(safe_contact_parts(qr, lang, content))
