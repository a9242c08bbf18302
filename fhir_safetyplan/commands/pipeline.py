"""``safetyplan respond | validate | extract | bundle | schema``: the pure flow, file in, JSON out.

FILE may be an answers document or a QuestionnaireResponse (told apart by content), or ``-`` for stdin.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fhir_safetyplan import exitcodes
from fhir_safetyplan.commands import batch
from fhir_safetyplan.commands.batch import add_ndjson, opened
from fhir_safetyplan.errors import has_errors
from fhir_safetyplan.jsoninput import MAX_INPUT_BYTES, parse_json
from fhir_safetyplan.settings import settings_of

if TYPE_CHECKING:
    from fhir_safetyplan.commands import Subcommands
    from fhir_safetyplan.document import DocumentContext


#: what adds options to a command's parser
Adder = Callable[[argparse.ArgumentParser], None]


def add_input(p: argparse.ArgumentParser) -> None:
    """The FILE argument and the options every input-reading command shares."""
    p.add_argument(
        "file", metavar="FILE", help="answers document or QuestionnaireResponse (JSON); - for stdin"
    )
    p.add_argument(
        "--canonical-base",
        metavar="URL",
        help="canonical base of the forms (default: "
        "$SAFETYPLAN_CANONICAL_BASE or https://safetyplan.example/fhir)",
    )


def add_document_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--confidentiality",
        choices=("R", "V"),
        help="confidentiality label for a QuestionnaireResponse input (default R; an answers document "
        "says its own)",
    )
    p.add_argument(
        "--create-patient",
        action="store_true",
        help="add a conditional create of a minimal test Patient (identifier only): sandboxes and tests",
    )


#: the commands that read one FILE: name, help, handler, the options beyond FILE's
_FILE_COMMANDS: tuple[tuple[str, str, Callable[[argparse.Namespace], int], tuple[Adder, ...]], ...]


def register(sub: Subcommands) -> None:
    for name, summary, handler, options in _FILE_COMMANDS:
        p = sub.add_parser(name, help=summary)
        add_input(p)
        for add in options:
            add(p)
        p.set_defaults(handler=handler)

    p = sub.add_parser("schema", help="print the JSON Schema of the answers document")
    p.add_argument(
        "--version", choices=("1.0.0", "1.1.0"), default="1.0.0", help="the document shape (default: 1.0.0)"
    )
    p.set_defaults(handler=_schema)


def read_input(name: str) -> Any:
    """Read and parse FILE (or stdin for ``-``); errors are InputError / usage errors, never tracebacks."""
    with opened(name) as stream:
        raw = stream.read(MAX_INPUT_BYTES + 1)
    return parse_json(raw, "standard input" if name == "-" else Path(name).name)


def context_from(args: argparse.Namespace) -> DocumentContext:
    """The documentation context of a command: its options and its settings (crisis centre, canonical base)."""
    from fhir_safetyplan.document import DocumentContext

    settings = settings_of(args)
    return DocumentContext(
        confidentiality=getattr(args, "confidentiality", None) or "R",
        create_patient=bool(getattr(args, "create_patient", False)),
        crisis_centre=settings.crisis_centre,
        canonical_base=settings.canonical_base,
    )


def emit(resource: Any) -> None:
    sys.stdout.write(json.dumps(resource, ensure_ascii=False, indent=2) + "\n")


def _respond(args: argparse.Namespace) -> int:
    from fhir_safetyplan.pipeline import respond

    emit(respond(read_input(args.file), settings_of(args).canonical_base))
    return exitcodes.OK


def _validate(args: argparse.Namespace) -> int:
    if args.ndjson:
        return batch.validate_lines(args)
    from fhir_safetyplan.pipeline import validate

    outcome = validate(read_input(args.file), settings_of(args).canonical_base)
    if has_errors(outcome):
        emit(outcome)
        return exitcodes.INVALID
    if any(i.get("severity") == "warning" for i in outcome.get("issue", [])):
        emit(outcome)
    return exitcodes.OK


def _extract(args: argparse.Namespace) -> int:
    from fhir_safetyplan.pipeline import extract

    emit(extract(read_input(args.file), context_from(args)))
    return exitcodes.OK


def _bundle(args: argparse.Namespace) -> int:
    if args.ndjson:
        return batch.bundle_lines(args)
    from fhir_safetyplan.pipeline import build_bundle

    emit(build_bundle(read_input(args.file), context_from(args)))
    return exitcodes.OK


def _schema(args: argparse.Namespace) -> int:
    from fhir_safetyplan.answers import AnswersDocument

    if args.version == "1.1.0":
        from fhir_safetyplan import answers_v110

        emit(answers_v110.AnswersDocument.model_json_schema(by_alias=True))
        return exitcodes.OK
    emit(AnswersDocument.model_json_schema(by_alias=True))
    return exitcodes.OK


_FILE_COMMANDS = (
    ("respond", "answers document → QuestionnaireResponse", _respond, ()),
    (
        "validate",
        "validate against the Questionnaire: exit 0 valid, 1 + OperationOutcome",
        _validate,
        (add_ndjson,),
    ),
    ("extract", "the SDC $extract transaction Bundle (CarePlan)", _extract, ()),
    (
        "bundle",
        "the complete journal transaction Bundle (QR, CarePlan, Flag, note, Provenance)",
        _bundle,
        (add_document_options, add_ndjson),
    ),
)
