"""Exit codes of the ``safetyplan`` command (documented in the README; integration engines branch on them)."""

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
#: Configuration is missing or wrong (server URL, credentials, canonical base, paths).
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
