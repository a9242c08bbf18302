"""The form adapted for Helsenorge Refero: Structor's markup for a multi-select check-box list (no ``repeats``), the
rest untouched, so what Refero sends back validates against the published Questionnaire (browser: test_renderers)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from _items import items_by_link

from fhir_safetyplan.errors import ConfigError
from fhir_safetyplan.form_ids import Link
from fhir_safetyplan.questionnaire import all_questionnaires, build_questionnaire
from fhir_safetyplan.rendering import for_renderer

JSON = dict[str, Any]


@pytest.mark.parametrize("q", all_questionnaires(), ids=lambda q: q["id"])
def test_refero_gets_the_multi_select_lists_without_repeats(q: JSON) -> None:
    adapted = items_by_link(for_renderer(q, "refero"))
    assert [link for link in (Link.SAFE_CHANNELS, Link.UNSAFE_CHANNELS) if "repeats" in adapted[link]] == []
    assert all(
        items_by_link(q)[link]["repeats"] is True for link in (Link.SAFE_CHANNELS, Link.UNSAFE_CHANNELS)
    )


@pytest.mark.parametrize("q", all_questionnaires(), ids=lambda q: q["id"])
def test_everything_but_repeats_on_check_box_lists_stays_as_published(q: JSON) -> None:
    adapted = for_renderer(q, "refero")
    assert {k: v for k, v in adapted.items() if k != "item"} == {k: v for k, v in q.items() if k != "item"}
    before, after = items_by_link(q), items_by_link(adapted)
    assert list(before) == list(after)

    def own(it: JSON) -> JSON:
        return {k: v for k, v in it.items() if k != "item"}

    changed = {
        link: sorted(set(before[link]) ^ set(after[link]))
        for link in before
        if own(before[link]) != own(after[link])
    }
    assert changed == {Link.SAFE_CHANNELS: ["repeats"], Link.UNSAFE_CHANNELS: ["repeats"]}
    assert after[Link.AGREED]["repeats"] is True  # a repeating text keeps its "add another"


def test_the_published_questionnaire_is_not_changed() -> None:
    q = build_questionnaire("nb")
    for_renderer(q, "refero")
    assert q == build_questionnaire("nb")


def test_an_unknown_renderer_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="renderer 'smart-forms' has no adapted form; use one of refero"):
        for_renderer(build_questionnaire("nb"), "smart-forms")


def test_the_cli_prints_the_form_for_refero() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "fhir_safetyplan", "questionnaire", "--lang", "nn", "--renderer", "refero"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(done.stdout) == for_renderer(build_questionnaire("nn"), "refero")
