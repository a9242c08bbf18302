"""The items of a QuestionnaireResponse, rewritten the way the tests of a follow-up need."""

from __future__ import annotations

import copy
from typing import Any

JSON = dict[str, Any]


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
