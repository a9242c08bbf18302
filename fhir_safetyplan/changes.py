"""What changed between two safety plans: the one computation behind the journal note of a revision and
``safetyplan changes OLD NEW``.

Generic over the form: it walks the Questionnaire's items (their linkIds, texts and answer options, in the form's
language), never a list of item keys. Safe-contact changes come first (the items of the safe-contact group), then
every other answered item whose answers differ, in the form's order, each as *before → now*. Items the form hides
(``questionnaire-hidden``), display items and groups are not compared.

Pure: no network, no clock, no logging of content.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from fhir_safetyplan import codes
from fhir_safetyplan.content import Content, load
from fhir_safetyplan.errors import JSON, ConfigError
from fhir_safetyplan.form_ids import Link
from fhir_safetyplan.questionnaire import questionnaire_for
from fhir_safetyplan.response_answers import answers_by_link
from fhir_safetyplan.sentences import format_date

HIDDEN = "http://hl7.org/fhir/StructureDefinition/questionnaire-hidden"


@dataclass(frozen=True)
class Change:
    """One item whose answers differ: its question in the form's language, and the answers before and now."""

    link_id: str
    text: str
    before: tuple[str, ...]
    now: tuple[str, ...]
    #: the item belongs to the safe-contact part of the form (listed first)
    safe_contact: bool


@dataclass(frozen=True)
class _Item:
    link_id: str
    text: str
    options: dict[tuple[str, str], str]
    safe_contact: bool


def _items(questionnaire: JSON | None) -> Iterator[_Item]:
    """The answerable, visible items of a Questionnaire in document order."""

    def walk(items: Any, in_contact: bool) -> Iterator[_Item]:
        for it in items if isinstance(items, list) else []:
            if not isinstance(it, dict) or not isinstance(it.get("linkId"), str):
                continue
            contact = in_contact or it["linkId"] == Link.SAFE_CONTACT
            hidden = any(
                isinstance(e, dict) and e.get("url") == HIDDEN and e.get("valueBoolean") is True
                for e in it.get("extension") or []
            )
            if it.get("type") not in ("group", "display") and not hidden:
                options = {
                    (str(o["valueCoding"].get("system")), str(o["valueCoding"].get("code"))): str(
                        o["valueCoding"].get("display") or o["valueCoding"].get("code")
                    )
                    for o in it.get("answerOption") or []
                    if isinstance(o, dict) and isinstance(o.get("valueCoding"), dict)
                }
                yield _Item(it["linkId"], str(it.get("text") or it["linkId"]), options, contact)
            yield from walk(it.get("item"), contact)

    yield from walk((questionnaire or {}).get("item"), False)


def form_in(response: JSON, lang: str, canonical_base: str | None = None) -> JSON | None:
    """The Questionnaire a response answers, in ``lang`` (the single-language form of the same version), else
    the one it names, else None."""

    canonical = response.get("questionnaire")
    if not isinstance(canonical, str):
        return None
    if canonical_base is None and "/Questionnaire/" in canonical:
        canonical_base = canonical.rsplit("/Questionnaire/", 1)[0]  # the base the response was made with
    try:
        named = questionnaire_for(canonical, canonical_base)
    except ConfigError:  # an unusable canonical base: no texts, the linkIds still say which item
        return None
    if named is None:
        return None
    base = str(named["url"]).rsplit("/Questionnaire/", 1)[0]
    translated = questionnaire_for(
        f"{codes.questionnaire_url(base, lang)}|{named['version']}", canonical_base
    )
    return translated or named


def _value(answer: JSON, item: _Item | None, lang: str, c: Content) -> tuple[str, str]:
    """(comparison key, display) of one answer."""

    for key, v in answer.items():
        if not key.startswith("value"):
            continue
        if key == "valueCoding" and isinstance(v, dict):
            pair = (str(v.get("system")), str(v.get("code")))
            shown = (item.options.get(pair) if item else None) or str(v.get("display") or v.get("code"))
            return f"{pair[0]}|{pair[1]}", shown
        if key == "valueBoolean":
            return f"b:{v}", c.text("journal", field="yes" if v else "no").get(lang)
        if key in ("valueDate", "valueDateTime"):
            return f"d:{v}", format_date(str(v), lang)
        return f"{key}:{v}", str(v).strip()
    return "", ""


def changes(old: JSON, new: JSON, lang: str, canonical_base: str | None = None) -> list[Change]:
    """Every item whose answers differ between response ``old`` and response ``new``: safe contact first."""

    c = load()
    seen: dict[str, _Item] = {}
    for form in (form_in(new, lang, canonical_base), form_in(old, lang, canonical_base)):
        for item in _items(form):
            seen.setdefault(item.link_id, item)
    before, now = answers_by_link(old), answers_by_link(new)
    # Items answered but not in either form (another version) are compared too, under their linkId.
    for link in (*now, *before):
        if link not in seen:
            seen[link] = _Item(link, link, {}, False)
    out: list[Change] = []
    for item in seen.values():
        old_values = [_value(a, item, lang, c) for a in before.get(item.link_id, [])]
        new_values = [_value(a, item, lang, c) for a in now.get(item.link_id, [])]
        if sorted(k for k, _ in old_values) != sorted(k for k, _ in new_values):
            out.append(
                Change(
                    item.link_id,
                    item.text,
                    tuple(d for _, d in old_values),
                    tuple(d for _, d in new_values),
                    item.safe_contact,
                )
            )
    return sorted(out, key=lambda ch: not ch.safe_contact)  # stable: the form's order within each part


def lines(found: list[Change], lang: str, since: str | None = None) -> list[str]:
    """The changes as lines of the journal note: a heading (with the previous plan's date), then one line per
    item, ``question: before → now``; one line saying nothing changed when nothing did."""

    c = load()

    def r(key: str) -> str:
        return c.text("revision", field=key).get(lang)

    when = f" ({format_date(since, lang)})" if since else ""
    if not found:
        return [f"{r('no-changes')}{when}."]
    none = f"({r('not-answered')})"
    out = [f"{r('changes')}{when}:"]
    for ch in found:
        text = ch.text.rstrip().rstrip(":")
        sep = " " if text.endswith("?") else ": "
        out.append(f"• {text}{sep}{'; '.join(ch.before) or none} → {'; '.join(ch.now) or none}")
    return out
