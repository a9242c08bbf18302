"""``validate --ndjson``, ``bundle --ndjson``, ``push --ndjson``: the command-line part of batch mode.

One input per line of FILE (``-``: stdin), one JSON result per line on stdout, in input order, each written
and flushed as soon as it is known (the input and the outputs are never held: memory stays flat however long
the input). Blank lines are skipped (they have no result line; the summary on stderr counts and numbers them).
The rules, the exit code and the line reading are :mod:`fhir_safetyplan.batch`; the concurrent sending of
``push --ndjson`` is :mod:`fhir_safetyplan.delivery.batch_send`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from fhir_safetyplan import exitcodes
from fhir_safetyplan.batch import (
    Line,
    Result,
    Stopper,
    Tally,
    content_lines,
    failed,
    internal,
    interrupted_outcome,
    parse_line,
    with_line,
)
from fhir_safetyplan.errors import JSON, InputError, SafetyPlanError, has_errors

#: ``push --ndjson`` sends on this many threads unless ``--workers`` says otherwise
DEFAULT_WORKERS = 4
MAX_WORKERS = 32
#: at most this many results (per worker) wait to be written in input order
WINDOW_PER_WORKER = 8


def add_ndjson(p: argparse.ArgumentParser, *, workers: bool = False) -> None:
    """``--ndjson`` (and for ``push`` ``--workers N``): the one line each command's registration adds."""
    p.add_argument(
        "--ndjson",
        action="store_true",
        help="batch: FILE holds one input per line; one JSON result per line on stdout, in input order "
        "(blank lines skipped; a summary on stderr; exit 0 all good, the single-input code when every line "
        "failed alike, 9 when they ended differently)",
    )
    if workers:
        p.add_argument(
            "--workers",
            metavar="N",
            type=_workers,
            default=DEFAULT_WORKERS,
            help=f"with --ndjson: send on N threads (default {DEFAULT_WORKERS}); one patient's plans are "
            "always sent one after the other, in input order",
        )


def _workers(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if not 1 <= n <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"give a whole number from 1 to {MAX_WORKERS}")
    return n


class Output:
    """Result lines to stdout: compact JSON, one a line, flushed at once. When the reader goes away (``| head``)
    :attr:`closed` is set and every later write is dropped: the caller stops reading input and says so on
    stderr, and the end of the process does not complain about the pipe."""

    def __init__(self) -> None:
        sys.stdout.flush()
        self._out: IO[bytes] | None = getattr(sys.stdout, "buffer", None)
        self.closed = False

    def write(self, result: JSON) -> bool:
        """Write one result line; False when stdout is gone (now or before)."""
        if self.closed:
            return False
        text = json.dumps(result, ensure_ascii=False, separators=(",", ":")) + "\n"
        try:
            if self._out is None:
                sys.stdout.write(text)
                sys.stdout.flush()
            else:
                self._out.write(text.encode("utf-8"))
                self._out.flush()
        except BrokenPipeError:
            self.closed = True
            _stdout_to_devnull()
            return False
        return True


def _stdout_to_devnull() -> None:
    """What is still buffered for a closed stdout goes nowhere (else flushing it at exit fails again)."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (a test's capture)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


@contextmanager
def opened(name: str) -> Iterator[IO[bytes]]:
    """FILE as a binary stream (stdin for ``-``); an unreadable FILE is a usage error (exit 2)."""
    if name == "-":
        yield sys.stdin.buffer
        return
    try:
        stream = Path(name).open("rb")  # closed by the with below
    except OSError as exc:
        sys.stderr.write(f"safetyplan: cannot read {name}: {exc.strerror}\n")
        raise SystemExit(exitcodes.USAGE) from None
    with stream:
        yield stream


#: what a command does with one line: (its result, its status, its single-input exit code)
Handler = Callable[[Line], Result]


def run_lines(args: argparse.Namespace, command: str, handle: Handler) -> int:
    """The batch loop of ``validate`` / ``bundle``: each non-blank line through ``handle``, its result written
    at once; the summary on stderr; the exit code of the whole (:meth:`Tally.exit_code`)."""
    tally, out = Tally(command), Output()
    with opened(args.file) as stream, Stopper() as stopper:
        for line in content_lines(stream, stopper, tally):
            result, status, code = _one(line, handle)
            tally.add(line.number, status, code)
            if not out.write(result):
                break  # stdout is gone (``| head``): nobody would see the rest
        tally.output_closed = out.closed
        tally.interrupted = stopper.stopped.is_set() or out.closed
    if tally.interrupted:
        out.write(interrupted_outcome(tally, ""))
    sys.stderr.write(f"safetyplan: {tally.summary()}\n")
    return tally.exit_code()


def _one(line: Line, handle: Handler) -> Result:
    try:
        return handle(line)
    except SafetyPlanError as err:
        return failed(line.number, err, "invalid" if isinstance(err, InputError) else str(err.kind))
    except Exception as exc:  # a bug on one line never stops the others
        return internal(line.number, exc)


def validate_lines(args: argparse.Namespace) -> int:
    """``validate --ndjson``: each line's OperationOutcome (``line N: No problems found.`` when valid)."""
    from fhir_safetyplan.pipeline import validate
    from fhir_safetyplan.settings import settings_of

    base = settings_of(args).canonical_base  # once: the same for every line

    def handle(line: Line) -> Result:
        outcome = with_line(line.number, validate(parse_line(line), base))
        if has_errors(outcome):
            return outcome, "invalid", exitcodes.INVALID
        return outcome, "valid", exitcodes.OK

    return run_lines(args, "validate", handle)


def bundle_lines(args: argparse.Namespace) -> int:
    """``bundle --ndjson``: each line's journal transaction Bundle, exactly as ``bundle`` makes it."""
    from fhir_safetyplan.commands.pipeline import context_from
    from fhir_safetyplan.pipeline import build_bundle

    context = context_from(args)  # once: the same options for every line

    def handle(line: Line) -> Result:
        return build_bundle(parse_line(line), context), "bundled", exitcodes.OK

    return run_lines(args, "bundle", handle)
