"""The items of a Questionnaire or QuestionnaireResponse as the tests read them, and rewritten the way the tests
of a follow-up need."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

JSON = dict[str, Any]


def every_item(items: list[JSON] | None) -> Iterator[JSON]:
    """Each item of ``items`` and, after it, those nested in it (depth first, in order)."""
    for item in items or []:
        yield item
        yield from every_item(item.get("item"))


def items_by_link(doc: JSON) -> dict[str, JSON]:
    """Every item of a Questionnaire or QuestionnaireResponse by its linkId (of repeated ones, the last)."""
    return {item["linkId"]: item for item in every_item(doc["item"])}


def answers_by_link(qr: JSON) -> dict[str, list[JSON]]:
    """The answers of each answered item of a QuestionnaireResponse, by linkId."""
    return {item["linkId"]: item["answer"] for item in every_item(qr.get("item")) if item.get("answer")}


def with_answers_of(items: list[JSON], previous: list[JSON], link_ids: set[str]) -> list[JSON]:
    """``items`` with the items ``link_ids`` of ``previous`` put back where ``previous`` has them (this
    conversation's answers, here the same as last time); an item left with neither answer nor items is dropped."""
    by_link = {i["linkId"]: i for i in items}
    out = []
    for item in previous:
        if item["linkId"] in link_ids:
            out.append(copy.deepcopy(item))
        elif item["linkId"] in by_link or "item" in item:
            own = by_link.get(item["linkId"]) or {k: v for k, v in item.items() if k != "item"}
            if "item" in item:
                own = {**own, "item": with_answers_of(own.get("item", []), item["item"], link_ids)}
            if own.get("item") or own.get("answer"):
                out.append(own)
    return out
