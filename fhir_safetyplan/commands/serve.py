"""``safetyplan serve``: run the HTTP service for integration engines (FastAPI on uvicorn).

Standard library only at import time: FastAPI and uvicorn are imported when the command runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from typing import TYPE_CHECKING

from fhir_safetyplan import exitcodes
from fhir_safetyplan.commands import LEASE_HELP, seconds

if TYPE_CHECKING:
    from fhir_safetyplan.commands import Subcommands

log = logging.getLogger("fhir_safetyplan.service")


def register(sub: Subcommands) -> None:
    """Add the ``serve`` command."""
    p = sub.add_parser(
        "serve",
        help="run the HTTP service: definitions, $validate, $extract, delivery through the outbox",
        description="""
            A FHIR-style HTTP service over the same pipeline and delivery as the command line. Callers
            authenticate with a token from SAFETYPLAN_SERVICE_TOKENS or SAFETYPLAN_SERVICE_TOKENS_FILE
            (Authorization: Bearer, or X-API-Key). Upstream credentials: SAFETYPLAN_UPSTREAM_AUTH
            (none|bearer|basic|smart) and the SAFETYPLAN_* variables of 'safetyplan push'. The OpenAPI
            document is at /openapi.json.
        """,
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    p.add_argument(
        "--upstream",
        metavar="URL",
        help="FHIR base URL plans are delivered to (default $SAFETYPLAN_UPSTREAM; without one, nothing is delivered)",
    )
    p.add_argument(
        "--outbox",
        metavar="PATH|URL",
        help="outbox keeping plans the upstream cannot take now: an SQLite file, or postgresql://USER@HOST/DB "
        "shared by several replicas (default $SAFETYPLAN_OUTBOX; without one, a plan the upstream cannot take "
        "now is answered 503)",
    )
    p.add_argument(
        "--outbox-lease",
        type=seconds,
        metavar="S",
        help="seconds a claim on a queued plan lasts; a replica that dies while sending holds its plans this "
        f"long before another replica sends them (default {LEASE_HELP})",
    )
    p.add_argument(
        "--flush-interval",
        type=float,
        metavar="S",
        help="seconds between background deliveries of queued plans (default 30; 0 turns it off)",
    )
    p.add_argument("--canonical-base", metavar="URL", help="canonical base of the forms")
    p.add_argument(
        "--create-patient",
        action="store_true",
        help="add a conditional create of a minimal test Patient to each delivery: sandboxes and tests only",
    )
    p.add_argument(
        "--body-timeout",
        type=float,
        default=30.0,
        metavar="S",
        help="seconds a request body may take to arrive in full; slower ones are answered 408 (default 30)",
    )
    p.add_argument(
        "--max-requests",
        type=int,
        default=64,
        metavar="N",
        help="requests handled at once; more are answered 503 with Retry-After (default 64)",
    )
    p.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn  # noqa: F401  (needed: listening.run serves with it)

        from fhir_safetyplan.service import create_app, listening, settings_from_env
        from fhir_safetyplan.service.limits import uvicorn_options
    except ModuleNotFoundError as exc:
        sys.stderr.write(
            f"safetyplan: 'serve' needs {exc.name}: install it with pip install 'fhir-safetyplan[serve]'\n"
        )
        return exitcodes.CONFIG
    if not 0 < args.port < 65536:
        sys.stderr.write("safetyplan: --port must be between 1 and 65535\n")
        return exitcodes.USAGE
    if not (args.body_timeout > 0 and args.max_requests > 0):
        sys.stderr.write("safetyplan: --body-timeout and --max-requests must be positive\n")
        return exitcodes.USAGE
    settings = settings_from_env(
        upstream=args.upstream,
        outbox=args.outbox,
        flush_interval=args.flush_interval,
        canonical_base=args.canonical_base,
        create_patient=args.create_patient,
    )
    settings = dataclasses.replace(
        settings,
        body_timeout=args.body_timeout,
        max_requests=args.max_requests,
        outbox_lease=args.outbox_lease,
    )
    if args.host not in ("127.0.0.1", "::1", "localhost"):
        log.warning(
            "listening on %s: this is plain HTTP; put a TLS-terminating proxy in front of it", args.host
        )
    logging.getLogger("fhir_safetyplan").setLevel(min(logging.getLogger().level, logging.INFO))
    if settings.outbox is not None:
        from fhir_safetyplan.delivery.store import open_outbox

        # Before listening: an outbox that cannot be opened (a PostgreSQL server down, a wrong password, a
        # damaged file) is said once, clearly, with exit 7, instead of a failed start-up with a traceback.
        open_outbox(settings.outbox).close()
    app = create_app(settings)  # starts nothing: that is on run
    sock = listening.bind(args.host, args.port)
    # access_log=False: uvicorn's access log prints the path and query, which can carry personal data;
    # the app logs method, route template, status and duration instead.
    started = listening.run(
        app,
        sock,
        access_log=False,
        server_header=False,
        log_level="info",
        timeout_graceful_shutdown=15,
        # Malformed requests get a 400 OperationOutcome; connections and idle keep-alive time are bounded.
        **uvicorn_options(settings.max_requests),
    )
    if not started:
        sys.stderr.write("safetyplan: the service did not start (its log above says why)\n")
        return exitcodes.INTERNAL
    return exitcodes.OK
