"""Two first plans for one patient written at the same moment, as pure decisions on the plans read back
(:mod:`fhir_safetyplan.simultaneous`): every interleaving of the two senders' checks and retirements ends with one
active CarePlan and one active Flag, the newer conversation's.

The same races against the real HAPI server: tests/integration/test_simultaneous_hapi.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from _searches import stored
from test_revise import FIRST, SECOND, after, conversation, of_type, plans

from fhir_safetyplan import simultaneous
from fhir_safetyplan.content import load
from fhir_safetyplan.revise import RevisionConflict, revise

JSON = dict[str, Any]
State = dict[tuple[str, str], JSON]


def both_written(older: JSON, newer: JSON) -> State:
    """The server once both first plans went through: each at version 1, both active."""
    return {(r["resourceType"], r["id"]): r for b in (older, newer) for r in stored(b)}


def active(state: State, rtype: str) -> list[str]:
    """The submissions whose resource of this type is active."""
    return sorted(
        next(i["value"] for i in r["identifier"] if "submission" in i["system"])
        for r in state.values()
        if r["resourceType"] == rtype and r.get("status") == "active"
    )


def versions_match(state: State, sent: JSON) -> bool:
    """Whether every ``ifMatch`` of a transaction holds on this server state (HAPI refuses it otherwise)."""
    return all(
        e["request"]["ifMatch"] == f'W/"{state[tuple(e["request"]["url"].split("/"))]["meta"]["versionId"]}"'
        for e in sent["entry"]
        if "ifMatch" in e["request"]
    )


@pytest.fixture
def older() -> JSON:
    return conversation("c-older", FIRST)


@pytest.fixture
def newer() -> JSON:
    return conversation("c-newer", SECOND, safeContact={"safe": ["brev"], "unsafe": ["telefonsamtale"]})


def test_a_first_plan_alone_on_the_server_is_delivered_as_it_was(older: JSON) -> None:
    state = {(r["resourceType"], r["id"]): r for r in stored(older)}
    assert simultaneous.after_first(older, plans(state, "c-older")).kind == "alone"


def test_the_newer_of_two_first_plans_is_sent_again_as_a_revision_retiring_the_older(
    older: JSON, newer: JSON
) -> None:
    state = both_written(older, newer)
    assert simultaneous.after_first(newer, plans(state, "c-newer")).kind == "revise"
    revision = revise(newer, plans(state, "c-newer"))
    assert revision.kind == "revision" and revision.replaced == ("c-older",) and revision.guarded
    assert revision.bundle is not None
    assert active(after(state, revision.bundle), "CarePlan") == ["c-newer"]
    assert active(after(state, revision.bundle), "Flag") == ["c-newer"]


def test_the_older_of_two_first_plans_retires_itself_under_ifmatch_with_a_note_naming_the_reason(
    older: JSON, newer: JSON
) -> None:
    state = both_written(older, newer)
    decision = simultaneous.after_first(older, plans(state, "c-older"))
    assert decision.kind == "retire" and decision.newer is not None
    assert decision.newer.submission == "c-newer" and decision.bundle is not None
    entries = decision.bundle["entry"]
    own = {
        f"{r['resourceType']}/{r['id']}" for r in stored(older) if r["resourceType"] in ("CarePlan", "Flag")
    }
    assert {e["request"]["url"] for e in entries} == own  # ours only, the newer plan is not touched
    assert all(e["request"]["method"] == "PUT" and e["request"]["ifMatch"] == 'W/"1"' for e in entries)
    by_type = {e["resource"]["resourceType"]: e["resource"] for e in entries}
    assert by_type["CarePlan"]["status"] == "revoked" and by_type["Flag"]["status"] == "inactive"
    reason = load().text("revision", field="simultaneous").get("nb")
    assert by_type["CarePlan"]["note"][-1] == {"time": SECOND, "text": reason}
    assert by_type["CarePlan"]["period"]["end"] == SECOND == by_type["Flag"]["period"]["end"]
    # changed only in status, period end and the note
    original = of_type(older, "Flag")[0]["resource"]
    assert {k: v for k, v in by_type["Flag"].items() if k not in ("status", "period", "meta")} == {
        k: v for k, v in original.items() if k not in ("status", "period", "meta")
    }


def test_two_first_plans_of_the_same_moment_are_ordered_by_submission_id_the_same_on_both_senders() -> None:
    a, b = conversation("c-a", FIRST), conversation("c-b", FIRST)
    state = both_written(a, b)
    assert simultaneous.after_first(a, plans(state, "c-a")).kind == "retire"
    assert simultaneous.after_first(b, plans(state, "c-b")).kind == "revise"
    revision = revise(b, plans(state, "c-b"))
    assert revision.kind == "revision" and revision.replaced == ("c-a",)


@pytest.fixture
def crossed(older: JSON, newer: JSON) -> tuple[State, JSON, JSON]:
    """Both first plans written, then both senders' checks before either sends what it decided: the server
    state, the older's retirement and the newer's revision, neither applied yet."""
    state = both_written(older, newer)
    retirement = simultaneous.after_first(older, plans(state, "c-older")).bundle
    revision = revise(newer, plans(state, "c-newer")).bundle
    assert retirement is not None and revision is not None
    return state, retirement, revision


def landed(crossed: tuple[State, JSON, JSON], first: str) -> State:
    """The state once ``first`` of the crossed pair ("revision" or "retirement") has landed: both update the
    older plan under ifMatch on the same version, so HAPI refuses the other one (412)."""
    state, retirement, revision = crossed
    ahead, behind = (revision, retirement) if first == "revision" else (retirement, revision)
    state = after(state, ahead)
    assert not versions_match(state, behind)
    return state


def test_both_checks_before_either_retirement_the_newer_revision_first_leaves_the_newer_plan_alone(
    older: JSON, crossed: tuple[State, JSON, JSON]
) -> None:
    state = landed(crossed, "revision")
    # the older re-reads: superseded by a revision, so it was delivered (the order "older, then newer")
    assert simultaneous.after_first(older, plans(state, "c-older")).kind == "alone"
    assert revise(older, plans(state, "c-older")).kind == "already"
    assert active(state, "CarePlan") == active(state, "Flag") == ["c-newer"]


def test_both_checks_before_either_retirement_the_older_retirement_first_leaves_the_newer_plan_alone(
    newer: JSON, crossed: tuple[State, JSON, JSON]
) -> None:
    state = landed(crossed, "retirement")
    # the newer re-reads: the older is retired, so it is sent again as the first plan it was (no change)
    again = revise(newer, plans(state, "c-newer"))
    assert again.kind == "first" and again.bundle == newer
    assert simultaneous.after_first(newer, plans(state, "c-newer")).kind == "alone"
    assert active(state, "CarePlan") == active(state, "Flag") == ["c-newer"]


def test_a_resend_of_the_plan_that_retired_itself_is_held_again_and_writes_nothing(
    older: JSON, newer: JSON
) -> None:
    state = both_written(older, newer)
    retirement = simultaneous.after_first(older, plans(state, "c-older")).bundle
    assert retirement is not None
    state = after(state, retirement)
    with pytest.raises(RevisionConflict, match="arrived at the same time") as held:
        revise(older, plans(state, "c-older"))
    assert "c-newer" in str(held.value) and "A person must compare" in str(held.value)
    # ... and the newer one, resent, is delivered unchanged
    assert revise(newer, plans(state, "c-newer")).bundle == newer


def test_a_resend_of_the_older_plan_that_stopped_before_its_check_retires_it(
    older: JSON, newer: JSON
) -> None:
    # The older sender's check never ran (its answer was lost); the newer's check ran before the older wrote.
    state = both_written(older, newer)
    decision = simultaneous.after_first(older, plans(state, "c-older"))
    assert decision.kind == "retire"  # send() asks this on its first lookup too: the resend converges
    assert decision.bundle is not None
    assert active(after(state, decision.bundle), "Flag") == ["c-newer"]


def test_a_plan_superseded_in_sequence_is_not_taken_for_one_that_retired_itself(
    older: JSON, newer: JSON
) -> None:
    state = {(r["resourceType"], r["id"]): r for r in stored(older)}
    revision = revise(newer, plans(state, "c-newer")).bundle
    assert revision is not None
    state = after(state, revision)
    own = plans(state, "c-older").own
    assert own is not None and simultaneous.withdrawn(own, plans(state, "c-older")) is None
    assert revise(older, plans(state, "c-older")).kind == "already"


def test_the_check_after_a_first_plan_asks_only_whose_plans_are_active_with_no_includes() -> None:
    batch = simultaneous.check_batch({"reference": "Patient/p1"}, "https://x.example/NamingSystem/submission")
    urls = [e["request"]["url"] for e in batch["entry"]]
    assert [u.split("?")[0] for u in urls] == ["CarePlan", "Flag"]
    assert all(e["request"]["method"] == "GET" for e in batch["entry"]) and batch["type"] == "batch"
    assert all("subject=Patient/p1" in u and "_elements=identifier,status" in u for u in urls)
    assert not any("_include" in u or "_revinclude" in u for u in urls)
    assert "status=active" in urls[0]  # R4 Flag has no status search parameter: filtered by the client


def test_a_plan_retired_otherwise_is_not_taken_for_one_that_retired_itself_in_a_race(
    older: JSON, newer: JSON
) -> None:
    # Retired without the note of a race (by a person, or by a revision the lookup did not bring back).
    state = both_written(older, newer)
    for r in state.values():
        if r["resourceType"] in ("CarePlan", "Flag") and "c-older" in str(r["identifier"]):
            r["status"] = "revoked" if r["resourceType"] == "CarePlan" else "inactive"
    own = plans(state, "c-older").own
    assert own is not None and simultaneous.withdrawn(own, plans(state, "c-older")) is None
    assert revise(older, plans(state, "c-older")).kind == "already"
