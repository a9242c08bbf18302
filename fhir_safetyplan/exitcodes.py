"""Exit codes of the ``safetyplan`` command: the one table (the README documents it; engines branch on it).

The codes are named here, with what each means (:data:`MEANINGS`, which ``--help`` prints), and
:data:`EXIT_CODES` maps each delivery :class:`~fhir_safetyplan.outcomes.Outcome` to its code. What a failure
*is* (its kind and outcome) is decided in :mod:`fhir_safetyplan.outcomes`; how the command line shows it, only
here. (The service's HTTP statuses are its own table: :mod:`fhir_safetyplan.service.statuses`.)
"""

from __future__ import annotations

from collections.abc import Iterable

from fhir_safetyplan.outcomes import Kind, Outcome, outcome_of

OK = 0
#: The input was read but is not valid (answers, QuestionnaireResponse); an OperationOutcome is on stdout.
INVALID = 1
#: The command line itself was wrong (unknown option, missing argument, unreadable file name).
USAGE = 2
#: The FHIR server answered and refused the request (4xx); its OperationOutcome is on stdout.
REJECTED = 3
#: The server could not take it now; the bundle is safe in the outbox and will be delivered by ``outbox flush``.
QUEUED = 4
#: The server could not be reached (or answered 5xx) and there was no outbox to keep the bundle.
UNAVAILABLE = 5
#: Refused by policy before anything was sent, e.g. a real-looking identity number to a public sandbox.
REFUSED = 6
#: Configuration is missing or wrong (server URL, credentials, canonical base, paths), or a damaged outbox.
CONFIG = 7
#: Held for a person: the patient's plan changed on the server while this revision was on its way (someone else
#: revised it, or a newer plan is current); nothing was written.
CONFLICT = 8
#: Batch mode (``--ndjson``): the lines did not all end the same way (some succeeded, or they failed in
#: different ways); each line's result on stdout says how it ended.
PARTIAL = 9
#: Interrupted (Ctrl-C, SIGTERM); in batch mode the last stdout line says up to which input line was read.
INTERRUPTED = 130
#: A bug in this program: reported without a traceback (set SAFETYPLAN_DEBUG=1 to see one).
INTERNAL = 70

#: code -> what it means, in a few words (``safetyplan --help``; the README's table says what to do)
MEANINGS: dict[int, str] = {
    OK: "ok",
    INVALID: "invalid input",
    USAGE: "usage",
    REJECTED: "rejected by server",
    QUEUED: "queued in outbox",
    UNAVAILABLE: "server unavailable",
    REFUSED: "refused by policy",
    CONFIG: "configuration (or a damaged outbox)",
    CONFLICT: "held for a person (the patient's plan changed meanwhile)",
    PARTIAL: "batch (--ndjson): the lines ended in different ways",
    INTERNAL: "internal error",
    INTERRUPTED: "interrupted",
}

#: outcome -> exit code, in priority order: when a run has several outcomes (a flush), the first one in this
#: table that occurred gives the exit code
EXIT_CODES: dict[Outcome, int] = {
    Outcome.INVALID: INVALID,
    Outcome.CONFLICT: CONFLICT,
    Outcome.DAMAGED: CONFIG,
    Outcome.HELD: CONFIG,
    Outcome.UNAVAILABLE: UNAVAILABLE,
    Outcome.QUEUED: QUEUED,
    Outcome.REJECTED: REJECTED,
    Outcome.REFUSED: REFUSED,
    Outcome.DELIVERED: OK,
}


def summary() -> str:
    """The exit codes in one line, as ``--help`` ends."""
    return "Exit codes: " + ", ".join(f"{code} {words}" for code, words in MEANINGS.items()) + "."


def exit_code(outcomes: Iterable[Outcome]) -> int:
    """The exit code of a run with these outcomes (the highest-priority one present; none: 0)."""
    present = set(outcomes)
    return next((code for outcome, code in EXIT_CODES.items() if outcome in present), OK)


def exit_code_of_kind(kind: Kind) -> int:
    """The exit code of a command ended by an error of ``kind`` (no outbox involved)."""
    return EXIT_CODES[outcome_of(kind, outbox=False)]
