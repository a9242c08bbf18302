"""The ``safetyplan`` command line: argument parsing, error reporting and exit codes.

Every failure a user can cause ends as a clear message (and, where it helps, an OperationOutcome on stdout)
with a documented exit code; never as a traceback. Set ``SAFETYPLAN_DEBUG=1`` to see tracebacks of bugs.
The configuration is read once, here, into :class:`fhir_safetyplan.settings.Settings` (``args.settings``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

from fhir_safetyplan import exitcodes, settings
from fhir_safetyplan.errors import ConfigError, SafetyPlanError

# Sub-command groups, in the order `--help` lists them. A group missing from the install is skipped.
_COMMAND_MODULES = (
    "fhir_safetyplan.commands.definitions",
    "fhir_safetyplan.commands.pipeline",
    "fhir_safetyplan.commands.push",
    "fhir_safetyplan.commands.populate",
    "fhir_safetyplan.commands.changes",
    "fhir_safetyplan.commands.server",
    "fhir_safetyplan.commands.demo",
    "fhir_safetyplan.commands.serve",
    "fhir_safetyplan.commands.preview",
)


class _Version(argparse.Action):
    """``--version``: the package's version, looked up only when asked (importlib.metadata is slow to import)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        super().__init__(option_strings, dest=dest, default=argparse.SUPPRESS, nargs=0, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        from fhir_safetyplan import __version__  # lazy in the package root: importlib.metadata is slow

        sys.stdout.write(f"{parser.prog} {__version__}\n")
        parser.exit()


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on usage errors, as we document; we only make the message say what to do."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog}: error: {message}\nTry '{self.prog} --help'.\n")
        raise SystemExit(exitcodes.USAGE)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (all sub-commands)."""
    parser = _Parser(
        prog="safetyplan",
        description="""
            Safety planning with people exposed to domestic violence (NKVTS guidance) as FHIR R4:
            Questionnaire definitions, QuestionnaireResponse validation, SDC extraction to a CarePlan, journal
            documentation, and delivery to a HAPI FHIR server.
        """,
        epilog=exitcodes.summary(),
    )
    parser.add_argument("--version", action=_Version, help="show the version and exit")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="log progress to stderr (never personal data)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``safetyplan``; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # urllib3 logs whole URLs at DEBUG, query included (a search by identity number would be printed). Our
    # client logs requests itself without query values, so the HTTP stack stays at WARNING even with -vv.
    for noisy in ("urllib3", "requests", "charset_normalizer"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return exitcodes.USAGE

    args.settings = configured = settings.for_command(args)
    try:
        code: int = handler(args)
        return code
    except ConfigError as exc:
        sys.stderr.write(f"safetyplan: configuration: {exc}\n")
        return exc.exit_code
    except SafetyPlanError as exc:
        sys.stdout.write(json.dumps(exc.outcome, ensure_ascii=False, indent=2) + "\n")
        sys.stderr.write(f"safetyplan: {exc}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("safetyplan: interrupted\n")
        return exitcodes.INTERRUPTED
    except BrokenPipeError:
        return exitcodes.OK
    except Exception as exc:  # a bug: say so plainly, no traceback unless asked
        if configured.debug:
            raise
        sys.stderr.write(
            f"safetyplan: internal error ({type(exc).__name__}); this is a bug. "
            "Re-run with SAFETYPLAN_DEBUG=1 for details and report it (without personal data).\n"
        )
        return exitcodes.INTERNAL


if __name__ == "__main__":
    raise SystemExit(main())
