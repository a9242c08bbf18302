"""What became of a plan, decided in one place: the kinds of failure and the outcomes they lead to.

Every error this package raises declares its :class:`Kind` (what went wrong, not how to show it). Delivery
turns a kind into an :class:`Outcome` with :func:`outcome_of` (:data:`KINDS`: one row a kind), and the
outcome alone decides the rest. How an outcome is shown is each front end's one table:

- :data:`fhir_safetyplan.exitcodes.EXIT_CODES` — the ``safetyplan`` command's exit code (in priority order:
  when a run has several outcomes, a flush, the first one in the table that occurred gives the exit code);
- :data:`fhir_safetyplan.service.statuses.HTTP_STATUSES` — the HTTP status the service answers;

and ``stops_queue`` (in :data:`KINDS`) whether a failure is the server's (stop sending to it) or one plan's
(set that plan aside, send the next).

A new outcome is one row in :data:`KINDS` (the kind that leads to it, and what its outbox entry becomes),
one in the exit-code table and one in the HTTP-status table (a test checks that none is missing).

This module imports nothing from the package, so errors, delivery, the CLI and the service can all use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal


class Kind(StrEnum):
    """What kind of failure an error is (declared by each error class as ``kind``)."""

    #: the input itself is wrong; nothing was sent anywhere
    INPUT = "input"
    #: the server judged this plan's content (400/409/412/422 with an OperationOutcome, unknown patient)
    CONTENT = "content"
    #: our configuration: URL, credentials, server capabilities; true for every plan bound to that server
    CONFIG = "config"
    #: the server cannot take anything now: no answer, 429, 5xx
    UNAVAILABLE = "unavailable"
    #: this plan met a concurrent write of itself (a racing identical PUT): send it again later
    CONFLICT = "conflict"
    #: not sent, by policy (a real-looking identity number bound for a public server)
    POLICY = "policy"
    #: the outbox (a row or the file) is damaged
    DAMAGED = "damaged"
    #: the patient's plan on the server changed meanwhile (:mod:`fhir_safetyplan.revise`): a person decides
    REVISION_CONFLICT = "revision-conflict"


class Outcome(StrEnum):
    """What became of one plan (the ``status`` that ``push``, ``outbox flush`` and the service report)."""

    DELIVERED = "delivered"
    #: kept in the outbox; sent by the next flush
    QUEUED = "queued"
    #: the server could not take it and there was no outbox: nothing was kept
    UNAVAILABLE = "unavailable"
    #: kept pending in the outbox until the configuration (URL, credentials) is fixed
    HELD = "held"
    #: the server refused the content; kept (as rejected) for review and ``outbox requeue``
    REJECTED = "rejected"
    #: not sent, by policy
    REFUSED = "refused"
    #: the outbox row could not be read; set aside (``outbox check`` / ``outbox export``)
    DAMAGED = "damaged"
    #: the input is not valid; nothing was sent or stored
    INVALID = "invalid"
    #: held for a person: the patient's plan changed on the server meanwhile, so this one is not current there
    #: (nothing of it written, or the older of two simultaneous first plans, retired at once); kept as rejected
    CONFLICT = "conflict"


@dataclass(frozen=True)
class Treatment:
    """How a kind of failure is treated: the outcome with and without an outbox, its reach, and what the
    outbox entry becomes (``pending``: an attempt is counted and it is sent again; ``rejected``: it leaves
    the queue, kept for review; ``damaged``: set aside)."""

    with_outbox: Outcome
    without_outbox: Outcome
    #: True: the server's condition, so its queue stops; False: this plan's, so the next one is sent
    stops_queue: bool
    entry: Literal["pending", "rejected", "damaged"]


#: kind of failure -> treatment (one row a kind)
KINDS: dict[Kind, Treatment] = {
    Kind.INPUT: Treatment(Outcome.INVALID, Outcome.INVALID, stops_queue=False, entry="rejected"),
    Kind.CONTENT: Treatment(Outcome.REJECTED, Outcome.REJECTED, stops_queue=False, entry="rejected"),
    Kind.CONFIG: Treatment(Outcome.HELD, Outcome.HELD, stops_queue=True, entry="pending"),
    Kind.UNAVAILABLE: Treatment(Outcome.QUEUED, Outcome.UNAVAILABLE, stops_queue=True, entry="pending"),
    Kind.CONFLICT: Treatment(Outcome.QUEUED, Outcome.UNAVAILABLE, stops_queue=False, entry="pending"),
    Kind.POLICY: Treatment(Outcome.REFUSED, Outcome.REFUSED, stops_queue=False, entry="rejected"),
    Kind.DAMAGED: Treatment(Outcome.DAMAGED, Outcome.DAMAGED, stops_queue=False, entry="damaged"),
    Kind.REVISION_CONFLICT: Treatment(
        Outcome.CONFLICT, Outcome.CONFLICT, stops_queue=False, entry="rejected"
    ),
}


def outcome_of(kind: Kind, *, outbox: bool = True) -> Outcome:
    """The outcome of a failure of ``kind`` (``outbox``: whether the plan was stored before sending)."""
    treatment = KINDS[kind]
    return treatment.with_outbox if outbox else treatment.without_outbox


def stops_queue(kind: Kind) -> bool:
    """True when a failure of ``kind`` is the server's, so nothing more is sent to it in this round."""
    return KINDS[kind].stops_queue
