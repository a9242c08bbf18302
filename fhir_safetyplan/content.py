"""The clinical content, loaded from ``data/content.toml`` (the one declarative source a clinician can review).

This module only gives the TOML a typed shape and checks it is complete (every text in nb, nn and en);
it adds no clinical content of its own.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from functools import cache
from importlib import resources
from typing import Any

from fhir_safetyplan.codes import LANGUAGES


@dataclass(frozen=True)
class Text:
    """One text in bokmål, nynorsk and English."""

    nb: str
    nn: str
    en: str
    #: False when the item this text asks is not pre-filled from the last plan (``carry = false`` on its table
    #: or on a table above it in content.toml): it belongs to one conversation.
    carry: bool = True

    def get(self, lang: str) -> str:
        """The text in ``lang`` (nb, nn or en)."""
        value: str = getattr(self, lang)
        return value


@dataclass(frozen=True)
class Option:
    """An answer option: a code in a code system, with its display in three languages."""

    system: str | None  # None: our own CodeSystem, whose URL depends on the canonical base
    code: str
    display: Text
    #: the version from which the code is no longer offered (kept in the CodeSystem for earlier responses)
    retired: str | None = None
    #: the version that first offers it (None: every version)
    since: str | None = None
    #: what an answers document may write for it (``words``; none: its code)
    words: tuple[str, ...] = ()

    def offered_in(self, version: str) -> bool:
        """True when the form of ``version`` offers this option."""
        return (self.since is None or _version(self.since) <= _version(version)) and (
            self.retired is None or _version(version) < _version(self.retired)
        )


@dataclass(frozen=True)
class ChecklistItem:
    """One of the ten points of the guidance, and the help offered when it is not in place."""

    key: str
    #: the short name used in the CarePlan and the journal note
    label: Text
    text: Text
    help: Text
    #: when not in place, the journal note names the local crisis centre (``names-crisis-centre``)
    names_crisis_centre: bool = False


@dataclass(frozen=True)
class Content:
    """All clinical content of the form (read-only: its texts and options are built once and then reused)."""

    raw: dict[str, Any]
    checklist: tuple[ChecklistItem, ...]
    #: what :meth:`text`, :meth:`option` and :meth:`options` built, by their arguments (the flow asks for the same
    #: few dozen texts thousands of times in a batch; each is checked and built once)
    _built: dict[tuple[Any, ...], Any] = field(default_factory=dict, compare=False, repr=False)

    def text(self, *path: str, field: str = "text") -> Text:
        """A text by its path in the TOML, e.g. ``text("conversation", "informed")``."""
        key = ("text", field, *path)
        found: Text | None = self._built.get(key)
        if found is None:
            node: Any = self.raw
            carry = True
            for part in path:
                node = node[part]
                carry = carry and node.get("carry", True) is not False
            found = self._built[key] = replace(_text(node[field], ".".join((*path, field))), carry=carry)
        return found

    def options(self, section: str) -> tuple[Option, ...]:
        """The answer options of a section (``answers``, ``channels``, ``duty-status``, ``instruments``, ``levels``)."""
        key = ("options", section)
        found: tuple[Option, ...] | None = self._built.get(key)
        if found is None:
            found = self._built[key] = tuple(self.option(section, k) for k in self.raw[section])
        return found

    def option(self, section: str, name: str) -> Option:
        """One answer option by its name in the TOML, e.g. ``option("answers", "no")``."""
        key = ("option", section, name)
        found: Option | None = self._built.get(key)
        if found is None:
            v = self.raw[section][name]
            found = self._built[key] = Option(
                system=v.get("system"),
                code=v["code"],
                display=_text(v["display"], f"{section}.{name}"),
                retired=v.get("retired"),
                since=v.get("since"),
                words=tuple(v.get("words", ())),
            )
        return found

    def codes(self, section: str, version: str) -> tuple[str, ...]:
        """The codes of a section's options that the form of ``version`` offers, in content order."""
        return tuple(o.code for o in self.options(section) if o.offered_in(version))

    def words(self, section: str, version: str, *codes: str) -> tuple[str, ...]:
        """The words an answers document may write for the options of ``section`` with these ``codes`` (all when
        none are named) that the form of ``version`` offers: every option's first word, then every second word,
        and so on (the order JSON Schema enums list them in)."""
        chosen = [
            o.words or (o.code,)
            for o in self.options(section)
            if o.offered_in(version) and (not codes or o.code in codes)
        ]
        longest = max((len(w) for w in chosen), default=0)
        return tuple(w[i] for i in range(longest) for w in chosen if i < len(w))

    def answer_codes(self) -> dict[str, str]:
        """Every word an answers document may write for an answer of the ``answers`` set -> its code."""
        return {w: o.code for o in self.options("answers") for w in (o.words or (o.code,))}


class ContentError(ValueError):
    """The content file is incomplete (a developer error, caught by the tests)."""


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("."))


def _text(node: Any, where: str) -> Text:
    if not isinstance(node, dict) or any(
        not isinstance(node.get(lang), str) or not node[lang].strip() for lang in LANGUAGES
    ):
        raise ContentError(f"content.toml: {where} must have non-empty nb, nn and en texts")
    return Text(nb=node["nb"], nn=node["nn"], en=node["en"])


@cache
def load() -> Content:
    """The content, parsed once per process."""
    data = resources.files("fhir_safetyplan").joinpath("data/content.toml").read_bytes()
    raw = tomllib.loads(data.decode("utf-8"))
    items = []
    seen: set[str] = set()
    for i, entry in enumerate(raw["checklist"]):
        key = entry["key"]
        if key in seen or not key.replace("-", "").isalnum():
            raise ContentError(f"content.toml: checklist[{i}].key {key!r} is duplicated or not a plain code")
        seen.add(key)
        items.append(
            ChecklistItem(
                key=key,
                label=_text(entry["label"], f"checklist.{key}.label"),
                text=replace(
                    _text(entry["text"], f"checklist.{key}.text"), carry=entry.get("carry", True) is not False
                ),
                help=_text(entry["help"], f"checklist.{key}.help"),
                names_crisis_centre=entry.get("names-crisis-centre", False) is True,
            )
        )
    return Content(raw=raw, checklist=tuple(items))
