"""``safetyplan server start | stop | status | build``: the local HAPI FHIR server for trying things out."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from fhir_safetyplan import exitcodes
from fhir_safetyplan.local_hapi import Toolchain
from fhir_safetyplan.settings import settings_of

if TYPE_CHECKING:
    from fhir_safetyplan.commands import Subcommands

_STATE_HELP = "where the pid, port and log of the server are kept (default: .safetyplan)"


def register(sub: Subcommands) -> None:
    """Add ``server`` and its sub-commands."""
    parser = sub.add_parser(
        "server",
        help="run a local HAPI FHIR R4 server (127.0.0.1, in memory or on PostgreSQL) to push to",
        description="""
            A real HAPI FHIR 8.8.0 JPA server (R4; H2 in memory, empty at every start, or PostgreSQL with
            --db), built once with Maven from hapi/ and run with Java 17+. It listens on 127.0.0.1 only and
            has no authentication.
        """,
    )
    actions = parser.add_subparsers(dest="server_command", metavar="ACTION", parser_class=type(parser))
    parser.set_defaults(handler=_usage(parser))

    p = actions.add_parser("start", help="build if needed, start, wait until ready, print the base URL")
    p.add_argument("--port", type=_port, help="TCP port on 127.0.0.1 (default: a free one)")
    p.add_argument("--state-dir", type=Path, default=Path(".safetyplan"), metavar="DIR", help=_STATE_HELP)
    p.add_argument(
        "--timeout",
        type=float,
        default=180.0,
        metavar="SECONDS",
        help="how long to wait for it (default 180)",
    )
    p.add_argument("--no-wait", action="store_true", help="return once the process is started")
    p.add_argument(
        "--db",
        metavar="URL",
        help="keep the data in PostgreSQL: postgresql://USER:PASSWORD@HOST:PORT/DATABASE, an existing "
        "database (default: H2 in memory). The password goes to the server in a private file it reads once, "
        "never on its command line",
    )
    p.add_argument(
        "--db-password-file",
        metavar="FILE",
        help="read the --db password from the first line of FILE instead of the URL, so that it is on no "
        "command line at all",
    )
    p.set_defaults(handler=_start)

    p = actions.add_parser("stop", help="stop the server started from --state-dir")
    p.add_argument("--state-dir", type=Path, default=Path(".safetyplan"), metavar="DIR", help=_STATE_HELP)
    p.set_defaults(handler=_stop)

    p = actions.add_parser("status", help="print the base URL if running (exit 0), else say so (exit 5)")
    p.add_argument("--state-dir", type=Path, default=Path(".safetyplan"), metavar="DIR", help=_STATE_HELP)
    p.set_defaults(handler=_status)

    p = actions.add_parser("build", help="build the server jar with Maven (start does this when needed)")
    p.add_argument("--force", action="store_true", help="rebuild even if the jar is up to date")
    p.set_defaults(handler=_build)


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 1-65535, not {value}")
    return value


def _usage(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        parser.print_help(sys.stderr)
        return exitcodes.USAGE

    return handler


def _start(args: argparse.Namespace) -> int:
    from fhir_safetyplan import hapi_database, local_hapi

    if args.db_password_file and not args.db:
        sys.stderr.write(
            "safetyplan: --db-password-file goes with --db postgresql://USER@HOST:PORT/DATABASE\n"
        )
        return exitcodes.USAGE
    password = hapi_database.read_password_file(args.db_password_file) if args.db_password_file else None

    toolchain = settings_of(args).toolchain()
    already = local_hapi.status(args.state_dir)
    if already is None:
        _say_if_building(toolchain)
    info = local_hapi.start(
        port=args.port,
        state_dir=args.state_dir,
        wait=not args.no_wait,
        timeout=args.timeout,
        toolchain=toolchain,
        db=args.db,
        db_password=password,
    )
    if already is not None:
        sys.stderr.write(f"safetyplan: already running (pid {info.pid}); log: {info.log_file}\n")
    else:
        state = "started" if args.no_wait else "ready"
        sys.stderr.write(
            f"safetyplan: HAPI FHIR server {state} (pid {info.pid}, {info.database}); log: {info.log_file}\n"
        )
    sys.stdout.write(info.base_url + "\n")
    return exitcodes.OK


def _say_if_building(toolchain: Toolchain, force: bool = False) -> None:
    """Building takes a minute or more the first time; say so rather than sit silent."""
    from fhir_safetyplan import local_hapi

    if force or local_hapi.needs_build(toolchain=toolchain):
        sys.stderr.write(
            "safetyplan: building the HAPI FHIR server with Maven (the first build downloads about 380 MB; "
            f"log: {local_hapi.jar_path(toolchain=toolchain).parent / 'build.log'})\n"
        )


def _stop(args: argparse.Namespace) -> int:
    from fhir_safetyplan import local_hapi

    if local_hapi.stop(args.state_dir):
        sys.stderr.write("safetyplan: HAPI FHIR server stopped\n")
    else:
        sys.stderr.write(f"safetyplan: no HAPI FHIR server running from {args.state_dir}\n")
    return exitcodes.OK


def _status(args: argparse.Namespace) -> int:
    from fhir_safetyplan import local_hapi

    info = local_hapi.status(args.state_dir)
    if info is None:
        sys.stderr.write(f"safetyplan: no HAPI FHIR server running from {args.state_dir}\n")
        return exitcodes.UNAVAILABLE
    ready = "ready" if local_hapi.metadata_ok(info.base_url) else "starting (not answering yet)"
    sys.stderr.write(
        f"safetyplan: running, {ready} (pid {info.pid}, {info.database}); log: {info.log_file}\n"
    )
    sys.stdout.write(info.base_url + "\n")
    return exitcodes.OK


def _build(args: argparse.Namespace) -> int:
    from fhir_safetyplan import local_hapi

    toolchain = settings_of(args).toolchain()
    if args.force or local_hapi.needs_build(toolchain=toolchain):
        _say_if_building(toolchain, force=True)
    jar = local_hapi.build(force=args.force, toolchain=toolchain)
    sys.stdout.write(f"{jar}\n")
    return exitcodes.OK
