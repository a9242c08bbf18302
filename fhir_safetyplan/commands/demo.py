"""``safetyplan demo``: the whole flow in one command — a server, an example plan delivered, read back, printed.

Without ``--server`` it starts the local HAPI FHIR server (building it the first time), and stops it again at
the end unless ``--keep-running`` (a server that was already running from ``.safetyplan/`` is used and left
running). With ``--server https://hapi.fhir.org/baseR4`` it does the same against the public sandbox; the
examples are synthetic, and the public-sandbox guard applies as always.

Every run delivers the example for a new synthetic patient (a random Tenor-style test number, month + 80: never
a real person's), so what is already on the server never gets in its way: on a shared server (the public
sandbox, a team's test server) another plan for the example's own patient, from a later conversation, would make
the demo's plan the older one and hold it for a person.

Progress goes to stderr; the plan as read back from the server goes to stdout.
"""

from __future__ import annotations

import argparse
import random
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fhir_safetyplan import exitcodes, local_hapi
from fhir_safetyplan.bundled import examples_root
from fhir_safetyplan.commands.pipeline import read_input
from fhir_safetyplan.errors import ConfigError
from fhir_safetyplan.settings import settings_of

if TYPE_CHECKING:
    from fhir_safetyplan.commands import Subcommands

DEFAULT_EXAMPLE = "01-alt-pa-plass"


def register(sub: Subcommands) -> None:
    """Add ``demo``."""
    p = sub.add_parser(
        "demo",
        help="start the local server, deliver an example plan, read it back and print it",
        description="""
            Deliver one synthetic example plan, for a new synthetic test patient each run (created by
            conditional create), and print it as read back from the server. Without --server the local HAPI
            FHIR server is started (built with Maven the first time: needs Java 17+ and Maven) and stopped
            afterwards.
        """,
    )
    p.add_argument(
        "--server", metavar="URL", help="use this FHIR R4 server instead, e.g. https://hapi.fhir.org/baseR4"
    )
    p.add_argument(
        "--example",
        metavar="NAME",
        default=DEFAULT_EXAMPLE,
        help=f"example folder under examples/ (or its number, e.g. 06; default {DEFAULT_EXAMPLE})",
    )
    p.add_argument("--keep-running", action="store_true", help="leave the local server running afterwards")
    p.add_argument("--lang", choices=("nb", "nn", "en"), help="print in this language (default: the form's)")
    p.add_argument(
        "--state-dir",
        type=Path,
        default=Path(".safetyplan"),
        metavar="DIR",
        help="state directory of the local server (default .safetyplan)",
    )
    p.set_defaults(handler=_demo)


def find_example(name: str) -> Path:
    """The input file of example ``name`` (folder name or its leading number); ConfigError if none."""

    root = examples_root()
    folders = sorted(p for p in root.iterdir() if p.is_dir()) if root is not None else []
    matches = [p for p in folders if p.name == name] or [p for p in folders if p.name.split("-")[0] == name]
    if len(matches) != 1:
        known = ", ".join(p.name for p in folders) or "none (this installation carries no examples)"
        raise ConfigError(f"No example {name!r}; known examples: {known}.")
    for candidate in ("answers.json", "input.json"):
        if (matches[0] / candidate).is_file():
            return matches[0] / candidate
    raise ConfigError(f"The example {matches[0].name} has no answers.json or input.json.")


def _say(message: str) -> None:
    sys.stderr.write(f"==> {message}\n")
    sys.stderr.flush()


def _demo(args: argparse.Namespace) -> int:
    started_here = False
    base_url = args.server
    if base_url is None:
        toolchain = settings_of(args).toolchain()
        running = local_hapi.status(args.state_dir)
        if running is not None:
            _say(f"using the local HAPI FHIR server already running at {running.base_url}")
            base_url = running.base_url
        else:
            if local_hapi.needs_build(toolchain=toolchain):
                _say("building the local HAPI FHIR server with Maven (first time only; downloads ~350 MB)")
            _say("starting the local HAPI FHIR server on 127.0.0.1 (about 30 s)")
            info = local_hapi.start(state_dir=args.state_dir, toolchain=toolchain)
            started_here = True
            base_url = info.base_url
            _say(f"server ready at {base_url}")
    try:
        return _run(args, base_url)
    finally:
        if started_here:
            if args.keep_running:
                _say(f"leaving the server running at {base_url}; stop it with: safetyplan server stop")
            else:
                _say("stopping the local server")
                local_hapi.stop(args.state_dir)


def _run(args: argparse.Namespace, base_url: str) -> int:
    from fhir_safetyplan import show
    from fhir_safetyplan.bundle import submission_of
    from fhir_safetyplan.delivery.deliver import deliver
    from fhir_safetyplan.document import DocumentContext
    from fhir_safetyplan.pipeline import build_bundle

    settings = settings_of(args)
    path = find_example(args.example)
    _say(f"building the journal bundle of example {path.parent.name} for a new synthetic patient")
    context = DocumentContext(
        create_patient=True, crisis_centre=settings.crisis_centre, canonical_base=settings.canonical_base
    )
    bundle = build_bundle(for_new_patient(read_input(str(path))), context)
    submission = submission_of(bundle)
    assert submission
    with settings.client(base_url) as client:
        _say(f"delivering {len(bundle['entry'])} resources to {client.base_url} as one transaction")
        # No outbox: the demo's plan is synthetic and re-creatable; a failure should be seen, not queued.
        result = deliver(bundle, client, submission_id=submission, check_capabilities=True)
        if (
            result.status != "delivered"
        ):  # e.g. held for a person: the example patient's plan changed meanwhile
            sys.stderr.write(f"safetyplan: {result.status}: {result.reason}\n")
            return int(result.exit_code)
        results = result.entries
        for r in results:
            _say(f"  {r.status:<12} {r.resource_type}/{r.id} (version {r.version_id})")
        patient = next(
            (f"Patient/{r.id}" for r in results if r.resource_type == "Patient" and r.id), None
        ) or _subject_of(bundle)
        _say(f"reading the plan of {patient} back from the server")
        plan = show.read_plan(client, patient, submission)
    _say(
        f"read back {len(plan.resources())} resources: {', '.join(r['resourceType'] for r in plan.resources())}"
    )
    sys.stdout.write(show.render(plan, args.lang))
    return exitcodes.OK


def for_new_patient(doc: Any, rng: random.Random | None = None) -> Any:
    """``doc`` (an answers document or a QuestionnaireResponse) for a new synthetic patient: its FNR or D-number
    replaced by a random synthetic FNR. A document naming its patient by reference is kept as it is."""
    from fhir_safetyplan.identifiers import DNR_SYSTEM, FNR_SYSTEM

    if not isinstance(doc, dict):
        return doc
    patient, subject = doc.get("patient"), doc.get("subject")
    if isinstance(patient, dict) and ("fnr" in patient or "dnr" in patient):
        return {**doc, "patient": {"fnr": _synthetic_fnr(rng)}}
    if isinstance(subject, dict):
        ident = subject.get("identifier")
        if isinstance(ident, dict) and ident.get("system") in (FNR_SYSTEM, DNR_SYSTEM):
            fresh = {**ident, "system": FNR_SYSTEM, "value": _synthetic_fnr(rng)}
            return {**doc, "subject": {**subject, "identifier": fresh}}
    return doc


def _synthetic_fnr(rng: random.Random | None) -> str:
    """A random synthetic FNR (Tenor style) with valid check digits."""
    from fhir_safetyplan.identifiers import synthetic_fnr

    pick = rng or random.SystemRandom()
    while True:
        born = date(1950, 1, 1) + timedelta(days=pick.randrange(365 * 50))  # 1950–1999
        try:
            return synthetic_fnr(born, pick.randrange(500), style="tenor")  # 000–499: born 1900–1999
        except ValueError:  # this individual number gives no valid check digit: draw again
            continue


def _subject_of(bundle: dict[str, Any]) -> str:
    """The literal Patient reference of a bundle whose input named the patient by reference."""
    for entry in bundle.get("entry", []):
        ref = (entry.get("resource", {}).get("subject") or {}).get("reference", "")
        if isinstance(ref, str) and ref.startswith("Patient/"):
            return ref

    raise ConfigError("The example names no patient by a literal reference, so the demo cannot read it back.")
