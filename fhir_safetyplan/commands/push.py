"""``safetyplan push | outbox list | outbox flush | show``: delivering plans to a FHIR server and reading them back.

Credentials never come from the command line (argv is visible to every user of the machine): ``--auth`` names
the kind, and the secrets come from ``SAFETYPLAN_*`` environment variables or files they name (see
:func:`fhir_safetyplan.client.auth_from_env`).

Credentials are scoped to one server: ``outbox flush --auth`` needs ``--server`` (unless every pending plan
is for one server) and then sends only that server's plans.

``push`` exit codes: 0 delivered, 1 invalid input (our OperationOutcome on stdout), 3 rejected by the server
(its OperationOutcome on stdout; also when no Patient on the server has the plan's identifier), 4 queued in the
outbox, 5 unavailable and no outbox, 6 refused by policy (public sandbox guard), 7 configuration (wrong URL,
credentials refused: a queued plan stays pending) or a damaged outbox, 8 held for a person (the patient's plan
changed on the server meanwhile, so this one is not current there: nothing of it was written, or, when two first
plans for the patient arrived at the same moment, it was written and at once retired in favour of the newer). They come from the one table in :mod:`fhir_safetyplan.outcomes`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fhir_safetyplan import exitcodes
from fhir_safetyplan.commands import LEASE_HELP, seconds
from fhir_safetyplan.commands.batch import add_ndjson
from fhir_safetyplan.commands.outbox_tools import flush_summary, register_repair, why_not_requeued
from fhir_safetyplan.commands.pipeline import add_document_options, add_input, context_from, emit, read_input
from fhir_safetyplan.delivery.guard import guard_public_server
from fhir_safetyplan.errors import ConfigError
from fhir_safetyplan.settings import DEFAULT_OUTBOX, settings_of

if TYPE_CHECKING:
    from fhir_safetyplan.commands import Subcommands
    from fhir_safetyplan.delivery.deliver import DeliveryResult
    from fhir_safetyplan.delivery.outbox_rules import OutboxStore
    from fhir_safetyplan.delivery.store import OutboxSpec

# The client's AUTH_KINDS, repeated so that --help need not import requests (a test keeps them equal).
_AUTH_KINDS = ("none", "bearer", "basic", "smart")
_AUTH_HELP = (
    "authentication (default none); secrets only from the environment: bearer SAFETYPLAN_BEARER_TOKEN[_FILE], "
    "basic SAFETYPLAN_BASIC_USER + SAFETYPLAN_BASIC_PASSWORD[_FILE], smart SAFETYPLAN_SMART_TOKEN_URL, "
    "SAFETYPLAN_SMART_CLIENT_ID, SAFETYPLAN_SMART_KEY_FILE"
)


def _add_server(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument(
        "--server",
        metavar="URL",
        required=required,
        help="FHIR R4 base URL, e.g. http://127.0.0.1:8080/fhir or https://hapi.fhir.org/baseR4",
    )


def _add_auth(p: argparse.ArgumentParser) -> None:
    p.add_argument("--auth", choices=_AUTH_KINDS, default="none", help=_AUTH_HELP)


def _add_outbox(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--outbox",
        metavar="PATH|URL",
        help=f"outbox: an SQLite file, or a PostgreSQL database postgresql://USER@HOST:PORT/DB shared by "
        f"several processes (password in ~/.pgpass, not the URL) (default: $SAFETYPLAN_OUTBOX or {DEFAULT_OUTBOX})",
    )


def _add_public_hosts(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--public-host",
        metavar="HOST",
        action="append",
        default=[],
        help="treat HOST as a public test server too (repeatable; hapi.fhir.org always is; "
        "also $SAFETYPLAN_PUBLIC_HOSTS)",
    )


def register(sub: Subcommands) -> None:
    """Add ``push``, ``outbox list|flush|requeue|purge`` (and the repair tools) and ``show``."""
    _register_push(sub)
    _register_outbox(sub)
    _register_show(sub)


def _register_push(sub: Subcommands) -> None:
    """``push``: deliver one plan."""
    p = sub.add_parser(
        "push",
        help="deliver a plan to a FHIR server as one idempotent transaction (via the outbox)",
        description="""
            Build the journal transaction Bundle from FILE and deliver it. The bundle is stored in the outbox
            before it is sent and kept until the server acknowledges it, so a plan is never lost: if the
            server cannot take it now, it waits for 'safetyplan outbox flush'. Sending the same submission
            again never duplicates anything on the server.
        """,
        epilog=exitcodes.summary() + " Rejected by the server includes: no Patient there has the plan's "
        "identifier; held for a person: this plan is not current on the server (nothing of it written, or, when two "
        "first plans arrived at once, written and at once retired in favour of the newer).",
    )
    add_input(p)
    add_document_options(p)
    _add_server(p)
    _add_auth(p)
    _add_outbox(p)
    p.add_argument(
        "--no-outbox",
        action="store_true",
        help="send directly without storing the plan first (if the server is down, exit 5 and nothing kept)",
    )
    _add_public_hosts(p)
    p.add_argument(
        "--no-check",
        action="store_true",
        help="skip checking the server's CapabilityStatement (FHIR R4, types and interactions) first",
    )
    add_ndjson(p, workers=True)
    p.set_defaults(handler=_push)


def _register_outbox(sub: Subcommands) -> None:
    """``outbox`` and its actions."""
    outbox = sub.add_parser(
        "outbox", help="plans waiting for delivery: list | flush | requeue | purge | check | export"
    )
    actions = outbox.add_subparsers(dest="outbox_command", metavar="ACTION", parser_class=type(outbox))
    outbox.set_defaults(handler=lambda args: _usage(outbox))
    _register_outbox_list(actions)
    _register_outbox_flush(actions)
    _register_outbox_requeue(actions)
    _register_outbox_purge(actions)

    register_repair(actions, _add_outbox)


def _register_outbox_list(actions: Subcommands) -> None:
    """``outbox list``."""
    p = actions.add_parser(
        "list", help="one JSON line per submission (ids, server, status, attempts, times; no personal data)"
    )
    _add_outbox(p)
    p.add_argument(
        "--status", choices=("pending", "delivered", "rejected", "damaged"), help="only this status"
    )
    p.set_defaults(handler=_outbox_list)


def _register_outbox_flush(actions: Subcommands) -> None:
    """``outbox flush``."""
    p = actions.add_parser(
        "flush",
        help="deliver pending plans, oldest first; exit 0 all delivered, 4 some still queued, 3 some rejected, "
        "7 the server refused the configuration (credentials, URL: the plans stay pending) or a damaged "
        "entry was set aside",
    )
    _add_outbox(p)
    _add_server(p, required=False)
    _add_auth(p)
    _add_public_hosts(p)
    p.add_argument(
        "--lease",
        type=seconds,
        metavar="S",
        help="seconds each claim on a plan lasts while it is sent; a flush that dies holds its plans this long "
        f"before another process sends them (default {LEASE_HELP}; an SQLite outbox also frees them at once when "
        "the process is gone from this machine)",
    )
    p.set_defaults(handler=_outbox_flush)


def _register_outbox_requeue(actions: Subcommands) -> None:
    """``outbox requeue``."""
    p = actions.add_parser("requeue", help="make a rejected plan pending again (after fixing the cause)")
    _add_outbox(p)
    p.add_argument(
        "submission",
        metavar="SUBMISSION",
        help="the submission id, or the plan key when one submission id names several patients' plans "
        "(both in 'outbox list')",
    )
    _add_server(p, required=False)
    p.set_defaults(handler=_outbox_requeue)


def _register_outbox_purge(actions: Subcommands) -> None:
    """``outbox purge``."""
    p = actions.add_parser(
        "purge", help="delete rejected or delivered entries (rejected ones hold personal data); never pending"
    )
    _add_outbox(p)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--rejected", action="store_const", const="rejected", dest="purge_status")
    which.add_argument("--delivered", action="store_const", const="delivered", dest="purge_status")
    which.add_argument("--damaged", action="store_const", const="damaged", dest="purge_status")
    p.add_argument("--older-than", metavar="DAYS", type=float, help="only entries last changed before that")
    p.set_defaults(handler=_outbox_purge)


def _register_show(sub: Subcommands) -> None:
    """``show``: read a patient's plan back."""
    p = sub.add_parser(
        "show",
        help="print the current safety plan of a patient from a FHIR server, in the form's language",
        description="""
            Find the current safety plan of a patient (the one whose CarePlan or safety Flag is active; its
            CarePlan, Flag, journal note and QuestionnaireResponse) and print the dates of the earlier plans,
            what is in place, the agreed help, the safe-contact instructions and the journal note. Exit 1 when
            the patient has no plan.
        """,
    )
    _add_server(p)
    _add_patient(p, required=True)
    p.add_argument("--submission", metavar="ID", help="this submission's plan instead of the current one")
    p.add_argument("--lang", choices=("nb", "nn", "en"), help="language (default: the form's)")
    p.add_argument("--json", action="store_true", help="print the plan's resources as a JSON Bundle")
    _add_auth(p)
    _add_public_hosts(p)
    p.set_defaults(handler=_show)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return exitcodes.USAGE


def summary(result: DeliveryResult, outbox: OutboxSpec | None) -> dict[str, Any]:
    """The JSON summary ``push`` prints: status, submission id, server and each entry's type/id/version."""
    out: dict[str, Any] = {
        "status": result.status,
        "submissionId": result.submission_id,
        "server": result.server_url,
        "entries": [
            {
                k: v
                for k, v in {
                    "resourceType": e.resource_type,
                    "id": e.id,
                    "versionId": e.version_id,
                    "location": e.location,
                    "status": e.status,
                }.items()
                if v is not None
            }
            for e in result.entries
        ],
    }
    if outbox is not None:
        out["outbox"] = str(outbox)
    if result.plan_key:
        out["planKey"] = result.plan_key  # the outbox entry's key: the submission scoped by the patient
    if result.reason:
        out["reason"] = result.reason
    return out


def _push(args: argparse.Namespace) -> int:
    if args.ndjson:
        from fhir_safetyplan.commands.batch_push import push_lines

        return push_lines(args)
    from fhir_safetyplan.bundle import submission_of
    from fhir_safetyplan.delivery.deliver import attempt
    from fhir_safetyplan.delivery.store import open_outbox
    from fhir_safetyplan.pipeline import build_bundle

    # Everything that can fail without the network comes first: input, configuration, policy.
    settings = settings_of(args)
    bundle = build_bundle(read_input(args.file), context_from(args))
    submission = submission_of(bundle)
    assert submission, "build_bundle always sets the submission identifier"
    with settings.client(args.server, args.auth) as client:
        guard_public_server(bundle, client.base_url, settings.public_hosts)
        path = None if args.no_outbox else settings.outbox_spec()
        with contextlib.ExitStack() as stack:
            outbox = None if path is None else stack.enter_context(open_outbox(path))
            result = attempt(
                bundle,
                client,
                outbox=outbox,
                submission_id=submission,
                public_hosts=settings.public_hosts,
                check_capabilities=not args.no_check,
            )
            return _report(result, path)


#: what ``push`` adds on stderr for an outcome (``{reason}``, ``{path}``); the exit code is the outcome's
_PUSH_NOTES = {
    "queued": "the server could not take the plan now ({reason}); it is safe in the outbox {path}. "
    "Deliver it later with: safetyplan outbox flush --outbox {path}",
    "unavailable": "{reason} Nothing was kept (--no-outbox).",
    "rejected": "rejected by the server: {reason}",
    "held": "configuration: {reason}",
    "refused": "{reason}",
    "damaged": "{reason}",
    "conflict": "held for a person. {reason}",
}


def _report(result: DeliveryResult, path: OutboxSpec | None) -> int:
    if result.status in ("delivered", "queued", "conflict"):
        emit(summary(result, path))
    elif result.outcome is not None:
        emit(result.outcome)
    note = _PUSH_NOTES.get(str(result.status))
    if note:
        sys.stderr.write("safetyplan: " + note.format(reason=result.reason, path=path) + "\n")
    if result.status == "held" and path is not None:
        sys.stderr.write(f"safetyplan: the plan stays pending in the outbox {path} until this is fixed.\n")
    if result.status == "conflict" and path is not None:
        sys.stderr.write(
            f"safetyplan: it is kept in the outbox {path}; after review: safetyplan outbox requeue "
            f"{result.plan_key or result.submission_id}\n"
        )
    return result.exit_code


def existing_outbox(args: argparse.Namespace, missing: str) -> OutboxSpec | None:
    """The outbox of this command, or None (having said ``no outbox at PATH{missing}``) when a file outbox is
    absent. A PostgreSQL URL is returned as it is: opening it says whether the database can be used."""
    path = settings_of(args).outbox_spec()
    if not isinstance(path, Path) or path.exists():
        return path
    sys.stderr.write(f"safetyplan: no outbox at {path}{missing}\n")
    return None


def _outbox_list(args: argparse.Namespace) -> int:
    from fhir_safetyplan.delivery.store import open_outbox

    path = existing_outbox(args, " (nothing was ever queued there)")
    if path is None:
        return exitcodes.OK
    with open_outbox(path) as outbox:
        for entry in outbox.list(args.status):
            sys.stdout.write(json.dumps(entry.as_dict(), ensure_ascii=False) + "\n")
    return exitcodes.OK


def _flush_server(args: argparse.Namespace, outbox: OutboxStore) -> str | None:
    """The one server this flush may send to, or None for all (only without credentials)."""
    if args.server:
        from fhir_safetyplan.client import check_base_url

        return check_base_url(args.server)  # the same normalisation as the entries' server_url
    if args.auth == "none":
        return None
    servers = outbox.pending_servers()
    if len(servers) > 1:
        raise ConfigError(
            f"The outbox holds plans for {len(servers)} servers; --auth {args.auth} credentials belong to one. "
            "Name it with --server URL (plans for other servers are left for their own flush)."
        )
    return servers[0] if servers else None


def _outbox_flush(args: argparse.Namespace) -> int:
    from fhir_safetyplan.delivery.deliver import flush
    from fhir_safetyplan.delivery.store import open_outbox

    path = existing_outbox(args, "; nothing to deliver")
    if path is None:
        return exitcodes.OK
    settings = settings_of(args)
    auth = settings.auth(args.auth)  # checked once, before anything is sent
    with open_outbox(path, lease_seconds=args.lease) as outbox:
        server = _flush_server(args, outbox)
        results = flush(
            outbox,
            lambda url: settings.client(url, auth),
            public_hosts=settings.public_hosts,
            server_url=server,
        )
        for result in results:
            line = {k: v for k, v in summary(result, None).items() if k != "outcome"}
            sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")
        sys.stderr.write(flush_summary(results, outbox, server))
    return exitcodes.exit_code(r.status for r in results)


def _outbox_requeue(args: argparse.Namespace) -> int:
    from fhir_safetyplan.client import check_base_url
    from fhir_safetyplan.delivery.store import open_outbox

    path = existing_outbox(args, "")
    if path is None:
        return exitcodes.INVALID
    with open_outbox(path) as outbox:
        server = check_base_url(args.server) if args.server else None  # as the entries' server was kept
        n = outbox.requeue(args.submission, server)
        if n == 0:
            sys.stderr.write(f"safetyplan: {why_not_requeued(outbox, args.submission, server)}\n")
            return exitcodes.INVALID
    sys.stderr.write(f"safetyplan: {n} entry(ies) pending again; deliver with 'safetyplan outbox flush'\n")
    return exitcodes.OK


def _outbox_purge(args: argparse.Namespace) -> int:
    from fhir_safetyplan.delivery.store import open_outbox

    path = existing_outbox(args, "; nothing to purge")
    if path is None:
        return exitcodes.OK
    with open_outbox(path) as outbox:
        n = outbox.purge(args.purge_status, args.older_than)
    sys.stderr.write(f"safetyplan: {n} {args.purge_status} entry(ies) deleted\n")
    return exitcodes.OK


def _add_patient(p: argparse.ArgumentParser, *, required: bool, note: str = "") -> None:
    """``--patient`` / ``--patient-identifier``, one of them (``note`` says when they apply)."""
    who = p.add_mutually_exclusive_group(required=required)
    who.add_argument("--patient", metavar="Patient/ID", help=f"{note}the patient's id on the server")
    who.add_argument(
        "--patient-identifier",
        metavar="SYSTEM|VALUE",
        help=f"{note}the patient's identifier, e.g. {'urn:oid:2.16.578.1.12.4.1.4.1'}|<FNR>",
    )


def _show(args: argparse.Namespace) -> int:
    from fhir_safetyplan import show

    settings = settings_of(args)
    with settings.client(args.server, args.auth) as client:
        patient = show.find_patient(
            client, args.patient, args.patient_identifier, public_hosts=settings.public_hosts
        )
        plan = show.read_plan(client, patient, args.submission)
    if args.json:
        emit(
            {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [{"resource": r} for r in plan.resources()],
            }
        )
    else:
        sys.stdout.write(show.render(plan, args.lang))
    return exitcodes.OK
