"""``safetyplan changes OLD NEW``: what changed between two plans, as the journal note of a revision says it.

Both files are validated first (a QuestionnaireResponse or an answers document each); an invalid one exits 1 with
its OperationOutcome. The text is the same :mod:`fhir_safetyplan.changes` writes into the note: safe-contact
changes first, then each item before → now, in the newer form's language (``--lang`` to choose). The printed text
is personal data for the clinician's screen: it is never logged.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from fhir_safetyplan import exitcodes
from fhir_safetyplan.commands.pipeline import read_input
from fhir_safetyplan.settings import settings_of

if TYPE_CHECKING:
    from fhir_safetyplan.commands import Subcommands


def register(sub: Subcommands) -> None:
    """Add ``changes``."""
    p = sub.add_parser(
        "changes",
        help="what changed between two plans (safe contact first, then each item before → now)",
        description="""
            Compare two plans (QuestionnaireResponse or answers document each) and print what changed from OLD
            to NEW, as the journal note of a revision says it. Exit 0, or 1 when a file is not valid.
        """,
    )
    p.add_argument("old", metavar="OLD", help="the earlier plan (JSON file; - for stdin)")
    p.add_argument("new", metavar="NEW", help="the later plan (JSON file)")
    p.add_argument("--lang", choices=("nb", "nn", "en"), help="language (default: NEW's form language)")
    p.add_argument(
        "--canonical-base",
        metavar="URL",
        help="canonical base of the forms (default: $SAFETYPLAN_CANONICAL_BASE or https://safetyplan.example/fhir)",
    )
    p.set_defaults(handler=_changes)


def _changes(args: argparse.Namespace) -> int:
    from fhir_safetyplan import changes, codes
    from fhir_safetyplan.document import DocumentContext
    from fhir_safetyplan.pipeline import prepare

    if args.old == "-" and args.new == "-":
        sys.stderr.write("safetyplan: only one of OLD and NEW can be standard input\n")
        return exitcodes.USAGE
    base = settings_of(args).canonical_base
    context = DocumentContext(canonical_base=base)
    old = prepare(read_input(args.old), context)
    new = prepare(read_input(args.new), context)
    lang = args.lang or str(new.questionnaire.get("language") or "nb")
    lang = lang if lang in codes.LANGUAGES else "nb"
    found = changes.changes(old.response, new.response, lang, base)
    since = old.response.get("authored")
    sys.stdout.write("\n".join(changes.lines(found, lang, since if isinstance(since, str) else None)) + "\n")
    return exitcodes.OK
