"""``outbox check | export``, and the words ``outbox flush`` and ``outbox requeue`` end with.

``check`` reads a (possibly damaged) outbox read-only and says what is readable: exit 0 when all is, 7 when
something is damaged. ``export --to NEW`` copies every readable plan not yet delivered into a new outbox
that ``outbox flush`` then delivers.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from fhir_safetyplan import exitcodes

if TYPE_CHECKING:
    from fhir_safetyplan.commands import Subcommands
    from fhir_safetyplan.delivery.deliver import DeliveryResult
    from fhir_safetyplan.delivery.outbox_repair import Report
    from fhir_safetyplan.delivery.outbox_rules import OutboxStore


def register_repair(actions: Subcommands, add_outbox: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add ``outbox check`` and ``outbox export`` to the ``outbox`` sub-commands."""
    p = actions.add_parser(
        "check",
        help="read the outbox (file or PostgreSQL) without writing and report what is readable (exit 0 all, "
        "7 something is damaged)",
    )
    add_outbox(p)
    p.set_defaults(handler=_check)
    p = actions.add_parser(
        "export",
        help="copy every readable plan not yet delivered into a NEW outbox (then flush that one); also moves a "
        "queue between SQLite and PostgreSQL",
    )
    add_outbox(p)
    p.add_argument(
        "--to",
        metavar="NEW",
        required=True,
        help="the new outbox: a file that does not exist, or a postgresql:// URL of an empty outbox",
    )
    p.set_defaults(handler=_export)


def _report(report: Report) -> int:
    sys.stdout.write(json.dumps(report.as_dict(), ensure_ascii=False) + "\n")
    readable = sum(report.readable.values())
    sys.stderr.write(
        f"safetyplan: {report.path}: integrity {report.integrity}; {readable} entries readable, "
        f"{len(report.unreadable)} unreadable"
        + (f"; {report.exported} plan(s) exported" if report.exported else "")
        + "\n"
    )
    return exitcodes.CONFIG if report.damaged else exitcodes.OK


def _check(args: argparse.Namespace) -> int:
    from fhir_safetyplan.commands.push import existing_outbox  # a cycle: push registers these commands
    from fhir_safetyplan.delivery.outbox_transfer import check

    path = existing_outbox(args, "")
    return exitcodes.INVALID if path is None else _report(check(path))


def _export(args: argparse.Namespace) -> int:
    from fhir_safetyplan.commands.push import existing_outbox  # a cycle: push registers these commands
    from fhir_safetyplan.delivery.outbox_transfer import export
    from fhir_safetyplan.delivery.store import outbox_spec

    path = existing_outbox(args, "")
    if path is None:
        return exitcodes.INVALID
    to = outbox_spec(args.to)
    report = export(path, to)
    _report(report)
    if report.damaged and not report.readable:
        sys.stderr.write(f"safetyplan: nothing could be read from {path}; it may not be an outbox at all\n")
        return exitcodes.CONFIG
    sys.stderr.write(f"safetyplan: deliver them with: safetyplan outbox flush --outbox {to}\n")
    return exitcodes.OK


def flush_summary(results: Sequence[DeliveryResult], outbox: OutboxStore, server: str | None) -> str:
    """What a flush did and what the outbox holds now: the counts are read from the outbox, not guessed."""
    kinds = ("delivered", "rejected", "refused", "damaged", "conflict")
    done = {s: sum(r.status == s for r in results) for s in kinds}
    held_servers = {r.server_url for r in results if r.status == "held"}
    pending = outbox.counts(server)["pending"]
    held = sum(outbox.counts(s)["pending"] for s in held_servers)
    line = (
        f"safetyplan: {done['delivered']} delivered, {pending - held} still queued, {held} held, "
        f"{done['rejected'] + done['refused']} rejected, {done['conflict']} held for a person"
        + (f", {done['damaged']} damaged (set aside)" if done["damaged"] else "")
        + "\n"
    )
    for result in results:
        if result.status == "conflict":
            line += f"safetyplan: submission {result.submission_id} held for a person. {result.reason}\n"
        if result.status == "held":
            line += (
                f"safetyplan: {result.server_url} refused the configuration: {result.reason} The plans stay "
                "pending; fix the URL or credentials and flush again.\n"
            )
    if done["damaged"]:
        line += (
            "safetyplan: damaged entries were set aside; see 'safetyplan outbox check' and get the readable "
            "plans out with 'safetyplan outbox export --to NEW.sqlite'.\n"
        )
    return line


def why_not_requeued(outbox: OutboxStore, submission: str, server: str | None) -> str:
    """Why ``requeue`` changed nothing, agreeing with what ``outbox list`` shows for that submission."""
    entries = [
        e
        for e in outbox.list()
        if submission in (e.submission_id, e.plan_key) and server in (None, e.server_url)
    ]
    if not entries:
        return "no entry with that submission id (see 'safetyplan outbox list')"
    states = ", ".join(sorted({e.status for e in entries}))
    return (
        f"the entry for that submission is {states}, not rejected: only a rejected plan is requeued "
        "(pending ones are sent by 'outbox flush'; a delivered one is on the server)"
    )
