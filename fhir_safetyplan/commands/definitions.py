"""``safetyplan questionnaire | profiles | package``: the definitions, for people building forms and servers."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from fhir_safetyplan import exitcodes
from fhir_safetyplan.settings import settings_of
from fhir_safetyplan.versions import KNOWN_VERSIONS


def register(sub: Any) -> None:
    p = sub.add_parser(
        "questionnaire",
        help="print the Questionnaire JSON",
        description="Print the Questionnaire. Default: bokmål with nynorsk and English translation "
        "extensions; --lang gives the form in one language.",
    )
    p.add_argument("--lang", choices=("nb", "nn", "en"), help="one language only (id sikkerhetsplan-<lang>)")
    p.add_argument(
        "--version",
        choices=KNOWN_VERSIONS,
        help="a published version (default: the current one); earlier versions are printed as published",
    )
    p.add_argument(
        "--canonical-base",
        metavar="URL",
        help="canonical base URL (default: $SAFETYPLAN_CANONICAL_BASE or https://safetyplan.example/fhir)",
    )
    p.add_argument(
        "--renderer",
        choices=("refero",),
        help="the form adapted for this renderer (refero: multi-select lists as Helsenorge marks them; "
        "its responses validate against the Questionnaire itself)",
    )
    p.set_defaults(handler=_questionnaire)

    p = sub.add_parser("profiles", help="write every conformance resource as DIR/<ResourceType>-<id>.json")
    p.add_argument("--out", required=True, type=Path, metavar="DIR")
    p.add_argument("--canonical-base", metavar="URL")
    p.set_defaults(handler=_profiles)

    p = sub.add_parser("package", help="write the FHIR package (.tgz) and print its path")
    p.add_argument("--out", required=True, type=Path, metavar="DIR")
    p.add_argument("--canonical-base", metavar="URL")
    p.set_defaults(handler=_package)


def _questionnaire(args: argparse.Namespace) -> int:
    from fhir_safetyplan.conformance import dumps
    from fhir_safetyplan.questionnaire import build_questionnaire

    questionnaire = build_questionnaire(args.lang, settings_of(args).canonical_base, args.version)
    if args.renderer:
        from fhir_safetyplan.rendering import for_renderer

        questionnaire = for_renderer(questionnaire, args.renderer)
    sys.stdout.write(dumps(questionnaire))
    return exitcodes.OK


def _profiles(args: argparse.Namespace) -> int:
    from fhir_safetyplan.conformance import write_profiles

    paths = write_profiles(args.out, settings_of(args).canonical_base)
    for path in paths:
        sys.stdout.write(f"{path}\n")
    return exitcodes.OK


def _package(args: argparse.Namespace) -> int:
    from fhir_safetyplan.package import write_package

    sys.stdout.write(f"{write_package(args.out, settings_of(args).canonical_base)}\n")
    return exitcodes.OK
