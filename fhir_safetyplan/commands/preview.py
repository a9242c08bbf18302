"""``safetyplan preview``: our Questionnaire in LHC-Forms on 127.0.0.1, to fill in once and see what it makes.

The page is the service's ``/form`` (the same app as ``safetyplan serve``, with a one-time token handed to
the page in the URL's fragment). "Check" shows the problems next to their questions, or the journal note,
the CarePlan's activities and the safe-contact Flag. Nothing is delivered unless ``--server`` is given; then
the page offers a separate "deliver" that goes through the normal delivery path, outbox included.

Standard library only at import time: FastAPI and uvicorn are imported when the command runs.
"""

from __future__ import annotations

import argparse
import logging
import secrets
import sys
from typing import TYPE_CHECKING

from fhir_safetyplan import bundled, codes, exitcodes, local_hapi
from fhir_safetyplan.commands.push import _add_auth, _add_outbox
from fhir_safetyplan.settings import settings_of

if TYPE_CHECKING:
    from fhir_safetyplan.commands import Subcommands
    from fhir_safetyplan.service.settings import ServiceSettings

log = logging.getLogger("fhir_safetyplan.service")


def register(sub: Subcommands) -> None:
    """Add the ``preview`` command."""

    p = sub.add_parser(
        "preview",
        help="the form in a browser page on 127.0.0.1: fill it in, check it, see the journal note",
        description="""
            Serve the Questionnaire, rendered by LHC-Forms (from this machine, never a CDN), on 127.0.0.1 and
            print the page's address. 'Check' validates the answers and shows what they would become: the
            journal note, the CarePlan's activities and the safe-contact Flag. The patient and clinician are
            synthetic. Nothing is delivered unless --server is given; then the page has a separate 'deliver'
            button, through the outbox like 'safetyplan push'. Needs the 'serve' extra.
        """,
    )
    p.add_argument(
        "--lang", choices=("nb", "nn", "en"), default="nb", help="language to open in (default nb)"
    )
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    p.add_argument(
        "--server", metavar="URL", help="FHIR R4 base URL the page may deliver to (default: no delivery)"
    )
    _add_auth(p)
    _add_outbox(p)
    p.add_argument(
        "--create-patient",
        action="store_true",
        help="deliver with a conditional create of a minimal test Patient: sandboxes and tests only",
    )
    p.set_defaults(handler=_preview)


def _settings(args: argparse.Namespace, token: str) -> ServiceSettings:
    from fhir_safetyplan.client import check_base_url
    from fhir_safetyplan.service.settings import ServiceSettings, Tokens

    settings = settings_of(args)
    upstream = check_base_url(args.server) if args.server else None
    return ServiceSettings(
        upstream=upstream,
        outbox=settings.outbox_spec() if upstream else None,
        tokens=Tokens([token]),
        canonical_base=codes.canonical_base(settings.canonical_base),
        create_patient=bool(args.create_patient),
        form_delivers=upstream is not None,
        public_hosts=settings.public_hosts,
        crisis_centre=settings.crisis_centre,
        upstream_auth=settings.auth(args.auth) if upstream else None,
    )


def _preview(args: argparse.Namespace) -> int:
    try:
        import uvicorn  # noqa: F401  (needed: listening.run serves with it)

        from fhir_safetyplan.service import create_app, listening
    except ModuleNotFoundError as exc:
        sys.stderr.write(
            f"safetyplan: 'preview' needs {exc.name}: install the 'serve' extra, e.g. "
            "pip install 'fhir_safetyplan-<version>-py3-none-any.whl[serve]'\n"
        )
        return exitcodes.CONFIG

    if not 0 <= args.port < 65536:
        sys.stderr.write("safetyplan: --port must be between 1 and 65535 (or 0: a free one)\n")
        return exitcodes.USAGE
    if bundled.lforms_root() is None:
        sys.stderr.write(
            "safetyplan: LHC-Forms is not installed: in a clone run scripts/setup.sh (npm ci in "
            "tools/form-preview); or install fhir-safetyplan from a wheel built after that\n"
        )
        return exitcodes.CONFIG
    token = secrets.token_urlsafe(32)
    app = create_app(_settings(args, token))  # starts nothing: that is on run
    sock = listening.bind(local_hapi.HOST, args.port)
    port = sock.getsockname()[1]
    # The token travels in the fragment: browsers never send it to the server, so no log can hold it.
    sys.stderr.write(
        f"Form preview: http://{local_hapi.HOST}:{port}/form?lang={args.lang}#token={token}\n"
        f"{'Deliver goes to ' + app.state.settings.upstream if args.server else 'Nothing is delivered.'} "
        "Stop with Ctrl-C.\n"
    )
    sys.stderr.flush()
    if not listening.run(app, sock, access_log=False, server_header=False, log_level="warning"):
        sys.stderr.write("safetyplan: the preview did not start (its log above says why)\n")
        return exitcodes.INTERNAL
    return exitcodes.OK
