"""What a failure means is decided once: errors declare a kind, one table gives exit codes, one HTTP statuses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fhir_safetyplan import client, exitcodes, outcomes
from fhir_safetyplan.delivery.guard import RefusedByPolicy
from fhir_safetyplan.delivery.outbox import Outbox, OutboxDamaged
from fhir_safetyplan.delivery.store import open_outbox
from fhir_safetyplan.errors import ConfigError, InputError
from fhir_safetyplan.outcomes import Kind, Outcome
from fhir_safetyplan.service.statuses import ERROR_STATUSES, HTTP_STATUSES, error_status, http_status

SERVER = "http://127.0.0.1:8080/fhir"


def test_every_kind_has_a_treatment_and_every_outcome_an_exit_code_and_an_http_status() -> None:
    assert set(outcomes.KINDS) == set(Kind)
    assert set(exitcodes.EXIT_CODES) == set(Outcome) == set(HTTP_STATUSES)
    assert set(exitcodes.EXIT_CODES.values()) <= set(exitcodes.MEANINGS)  # every code is explained


def test_every_error_row_of_the_service_is_reachable_a_subclass_before_its_base() -> None:
    for i, (error, _) in enumerate(ERROR_STATUSES):
        for earlier, _ in ERROR_STATUSES[:i]:
            assert not issubclass(error, earlier), f"{error.__name__} is shadowed by {earlier.__name__}"


def test_the_service_answers_each_kind_of_error_by_its_row_and_anything_else_is_its_own_bug() -> None:
    from fhir_safetyplan.errors import ValidationFailed
    from fhir_safetyplan.show import PlanNotFound

    assert error_status(ValidationFailed("breaks the form's rules")) == 422
    assert error_status(InputError("not a plan")) == 400
    assert error_status(PlanNotFound("no plan")) == 404
    assert error_status(client.ServerRejected("upstream refused the search", 400)) == 502
    assert error_status(ConfigError("bad configuration")) is None


def test_help_lists_every_exit_code_from_the_one_table(capsys: pytest.CaptureFixture[str]) -> None:
    from fhir_safetyplan.cli import main

    with pytest.raises(SystemExit):
        main(["--help"])
    shown = " ".join(capsys.readouterr().out.split())
    for code, words in exitcodes.MEANINGS.items():
        assert f"{code} {words}" in shown


def test_the_service_answers_each_outcome_with_the_status_of_its_table() -> None:
    assert http_status("delivered") == 201 and http_status(Outcome.QUEUED) == 202
    assert http_status("conflict") == 409 and http_status(Outcome.HELD) == 502


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (InputError("x"), Kind.INPUT),
        (ConfigError("x"), Kind.CONFIG),
        (client.AuthError("x"), Kind.CONFIG),
        (client.ServerIncompatible("x"), Kind.CONFIG),
        (client.ServerConfigError("x", 401), Kind.CONFIG),
        (client.ServerRejected("x", 422), Kind.CONTENT),
        (client.UnknownPatient("x", 404, None), Kind.CONTENT),
        (client.ServerUnavailable("x", 503), Kind.UNAVAILABLE),
        (client.FhirError("x"), Kind.UNAVAILABLE),
        (client.WriteConflict("x", 409), Kind.CONFLICT),
        (RefusedByPolicy("x"), Kind.POLICY),
        (OutboxDamaged("x"), Kind.DAMAGED),
    ],
)
def test_each_error_declares_its_kind_without_multiple_inheritance(error: Exception, kind: Kind) -> None:
    assert error.kind is kind  # type: ignore[attr-defined]
    assert all(len(cls.__bases__) == 1 for cls in type(error).__mro__[:-1])


def test_only_a_servers_condition_stops_its_queue() -> None:
    stopping = {k for k in Kind if outcomes.stops_queue(k)}
    assert stopping == {Kind.UNAVAILABLE, Kind.CONFIG}


@pytest.mark.parametrize(
    ("present", "code"),
    [
        ([], exitcodes.OK),
        ([Outcome.DELIVERED], exitcodes.OK),
        ([Outcome.DELIVERED, Outcome.REJECTED], exitcodes.REJECTED),
        ([Outcome.REJECTED, Outcome.QUEUED], exitcodes.QUEUED),
        ([Outcome.QUEUED, Outcome.HELD], exitcodes.CONFIG),
        ([Outcome.REFUSED, Outcome.DAMAGED], exitcodes.CONFIG),
    ],
)
def test_a_run_with_several_outcomes_exits_with_the_first_in_the_table(
    present: list[Outcome], code: int
) -> None:
    assert exitcodes.exit_code(present) == code


def test_a_plan_without_an_outbox_is_unavailable_not_queued() -> None:
    assert outcomes.outcome_of(Kind.UNAVAILABLE, outbox=False) is Outcome.UNAVAILABLE
    assert exitcodes.EXIT_CODES[Outcome.UNAVAILABLE] == exitcodes.UNAVAILABLE


# ---- leases -----------------------------------------------------------------------------------------


def _bundle() -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "transaction", "entry": []}


def test_an_entry_claimed_by_a_live_process_is_left_alone_by_another(outbox_at: str) -> None:
    with open_outbox(outbox_at) as first, open_outbox(outbox_at) as second:
        first.put("s1", _bundle(), SERVER)
        assert first.claim("s1", SERVER) is not None
        assert second.claim("s1", SERVER) is None
        first.release("s1", SERVER)
        assert second.claim("s1", SERVER) is not None


def test_a_lease_ends_when_it_expires(outbox_at: str) -> None:
    with open_outbox(outbox_at) as first, open_outbox(outbox_at) as second:
        first.owner = "other-host:1:a"
        first.put("s1", _bundle(), SERVER)
        assert first.claim("s1", SERVER, lease_seconds=-1) is not None  # already expired
        assert second.claim("s1", SERVER) is not None


def test_a_lease_held_by_a_process_that_died_on_this_host_ends_at_once(tmp_path: Path) -> None:
    import socket

    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    owner = f"{socket.gethostname()}:{int(dead.stdout)}:x"
    path = tmp_path / "outbox.sqlite"
    with Outbox(path, owner=owner) as ghost, Outbox(path) as alive:
        ghost.put("s1", _bundle(), SERVER, lease_seconds=3600)
        assert alive.claim("s1", SERVER) is not None


def test_a_recorded_outcome_never_moves_an_entry_out_of_delivered(outbox_at: str) -> None:
    with open_outbox(outbox_at) as box:
        entry = box.put("s1", _bundle(), SERVER)
        assert box.mark_delivered("s1", [], server_url=SERVER, revision=entry.revision)
        assert box.mark_rejected("s1", "late 409", server_url=SERVER, revision=entry.revision) is False
        assert box.record_failure("s1", "late", server_url=SERVER, revision=entry.revision) is False
        assert box.get("s1").status == "delivered"  # type: ignore[union-attr]


def test_the_service_has_words_for_every_outcome_that_is_not_a_success() -> None:
    from fhir_safetyplan.service.refusals import _WORDS

    assert set(_WORDS) == set(Outcome) - {Outcome.DELIVERED, Outcome.QUEUED}
