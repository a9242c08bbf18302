"""``safetyplan populate``: a follow-up form pre-filled from the patient's last plan (SDC ``$populate``).

``--from FILE`` works offline from an earlier QuestionnaireResponse or answers document; ``--server`` reads the
patient's current plan from the FHIR server (:mod:`fhir_safetyplan.populate_source`). The pre-filled
QuestionnaireResponse (``in-progress``) goes to stdout; what was not carried over goes to stderr, one line per
issue (linkIds and codes only: never an answer's text).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from fhir_safetyplan import codes, exitcodes
from fhir_safetyplan.commands.pipeline import emit, read_input
from fhir_safetyplan.commands.push import _add_auth, _add_patient, _add_public_hosts
from fhir_safetyplan.errors import JSON
from fhir_safetyplan.settings import settings_of

if TYPE_CHECKING:
    from fhir_safetyplan.commands import Subcommands


def register(sub: Subcommands) -> None:
    p = sub.add_parser(
        "populate",
        help="a follow-up form (in-progress QuestionnaireResponse) pre-filled from the last plan",
        description="""
            Pre-fill the current form from the patient's last plan (SDC $populate). Answers that belong to one
            conversation (informed, involvement, advice given, the duty to inform, the risk result) are asked
            again; what could not be carried over is listed on stderr.
        """,
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--from",
        dest="from_file",
        metavar="FILE",
        help="an earlier QuestionnaireResponse or answers document",
    )
    source.add_argument("--server", metavar="URL", help="FHIR R4 base URL holding the patient's current plan")
    _add_patient(p, required=False, note="with --server: ")
    p.add_argument("--lang", choices=codes.LANGUAGES, help="the form's language (default: the last plan's)")
    p.add_argument("--canonical-base", metavar="URL", help="canonical base of the forms")
    _add_auth(p)
    _add_public_hosts(p)
    p.set_defaults(handler=_populate, parser=p)


def _populate(args: argparse.Namespace) -> int:
    from fhir_safetyplan import populate as pop

    issues: list[JSON] = []
    subject: JSON | None = None
    if args.from_file is not None:
        if args.patient or args.patient_identifier:
            args.parser.error("--patient / --patient-identifier go with --server, not with --from")
        previous = pop.previous_response(read_input(args.from_file), settings_of(args).canonical_base)
    else:
        if not (args.patient or args.patient_identifier):
            args.parser.error("--server needs --patient Patient/ID or --patient-identifier SYSTEM|VALUE")
        previous, subject, found = _from_server(args)
        issues.extend(found)
    result = pop.populate(
        pop.target_questionnaire(previous, args.lang, settings_of(args).canonical_base), previous, subject
    )
    emit(result.response)
    for i in (*issues, *result.issues):
        where = f" [{i['expression'][0]}]" if i.get("expression") else ""
        sys.stderr.write(f"safetyplan: populate: {i['severity']}: {i['diagnostics']}{where}\n")
    return exitcodes.OK


def _from_server(args: argparse.Namespace) -> tuple[JSON, JSON, list[JSON]]:
    from fhir_safetyplan import show
    from fhir_safetyplan.populate import check_previous
    from fhir_safetyplan.populate_source import find_current_plan

    settings = settings_of(args)
    with settings.client(args.server, args.auth) as client:
        patient = show.find_patient(
            client, args.patient, args.patient_identifier, public_hosts=settings.public_hosts
        )
        plan = find_current_plan(client, patient)
    return check_previous(plan.response), {"reference": patient}, list(plan.issues)
