"""Batch mode: one input per line in (NDJSON), one result per line out, in input order.

The library part of ``validate --ndjson``, ``bundle --ndjson`` and ``push --ndjson``
(:mod:`fhir_safetyplan.commands.batch` is the command-line part, :mod:`fhir_safetyplan.delivery.batch_send`
the concurrent sending):

- :func:`read_lines` streams the input a line at a time: blank lines are reported as such, and a line longer
  than :data:`~fhir_safetyplan.jsoninput.MAX_INPUT_BYTES` is refused without being held in memory (what is
  past the limit is read in small pieces and dropped);
- :func:`parse_line` reads one line with the one JSON parser (:func:`fhir_safetyplan.jsoninput.parse_json`:
  size, duplicate keys, huge integers, lone surrogates), its errors naming the line;
- :func:`line_outcome` is the OperationOutcome of a line that failed, every issue naming its line number;
- :class:`Tally` counts what became of the lines and gives the exit code and the summary line (counts only,
  never personal data).

Exit code of a batch (:meth:`Tally.exit_code`): 0 when every line succeeded (also for an input without a
single plan); the single-input command's code when every line failed and all in the same way (all invalid: 1;
all queued because the server is down: 4, ...); otherwise :data:`~fhir_safetyplan.exitcodes.PARTIAL` (9): the
lines ended in different ways, and each line's result says how; 130 when interrupted.
"""

from __future__ import annotations

import signal
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import FrameType, TracebackType
from typing import IO, Any

from fhir_safetyplan import exitcodes
from fhir_safetyplan.errors import JSON, InputError, SafetyPlanError, issue, one_issue
from fhir_safetyplan.jsoninput import MAX_INPUT_BYTES, parse_json

__all__ = [
    "Interrupted",
    "Line",
    "Result",
    "Stopper",
    "Tally",
    "content_lines",
    "failed",
    "internal",
    "internal_outcome",
    "interrupted_outcome",
    "line_outcome",
    "parse_line",
    "read_lines",
    "with_line",
]

#: what is past the size limit on a too-long line is read (and dropped) in pieces of this size
_SKIP_CHUNK = 64 * 1024
#: at most this many blank line numbers are listed in the summary
_MAX_LISTED = 10


@dataclass(frozen=True)
class Line:
    """One line of the input: its number (from 1), its bytes (without the line end), and whether it is blank
    or was longer than the limit (then ``data`` is empty: it was not kept)."""

    number: int
    data: bytes
    blank: bool = False
    too_long: bool = False


def read_lines(stream: IO[bytes], limit: int = MAX_INPUT_BYTES) -> Iterator[Line]:
    """The lines of ``stream``, one at a time; never more than ``limit`` + 1 bytes of one line in memory."""
    number = 0
    while True:
        raw = stream.readline(limit + 1)
        if not raw:
            return
        number += 1
        if raw.endswith(b"\n"):
            text = raw[:-1]
        elif len(raw) > limit:
            _skip_rest(stream)
            yield Line(number, b"", too_long=True)
            continue
        else:
            text = raw  # the last line, without a line end
        if text.endswith(b"\r"):
            text = text[:-1]
        yield Line(number, text, blank=not text.strip() or text.strip() == b"\xef\xbb\xbf")


def _skip_rest(stream: IO[bytes]) -> None:
    while True:
        piece = stream.readline(_SKIP_CHUNK)
        if not piece or piece.endswith(b"\n"):
            return


def parse_line(line: Line) -> Any:
    """The JSON value of ``line``; :class:`~fhir_safetyplan.errors.InputError` naming the line when refused."""
    if line.too_long:
        text = (
            f"line {line.number} is longer than {MAX_INPUT_BYTES} bytes, the limit of one input; it was not "
            "read. Put one plan on each line (a plan is a few kB)."
        )
        raise InputError(text, one_issue("error", "too-costly", text))
    try:
        return parse_json(line.data, f"line {line.number}")
    except InputError as err:
        # A line has no line breaks: the "line 1 column N" of its JSON is column N of the line.
        for found in err.outcome.get("issue", []):
            text = str(found.get("diagnostics", ""))
            found["diagnostics"] = text.replace(" at line 1 column ", " at column ")
        raise


def line_outcome(number: int, err: SafetyPlanError) -> JSON:
    """The OperationOutcome of line ``number`` that failed with ``err``: every issue says its line."""
    return with_line(number, err.outcome)


def with_line(number: int, outcome: JSON) -> JSON:
    """``outcome`` with every issue's diagnostics starting with ``line N:`` (once)."""
    prefix = f"line {number}"
    issues = []
    for found in outcome.get("issue") or [issue("error", "processing", "failed")]:
        text = str(found.get("diagnostics") or "")
        if not text.startswith(prefix + " ") and not text.startswith(prefix + ":"):
            text = f"{prefix}: {text}" if text else prefix
        issues.append({**found, "diagnostics": text})
    return {**outcome, "resourceType": "OperationOutcome", "issue": issues}


def internal_outcome(number: int, exc: BaseException) -> JSON:
    """The OperationOutcome of a line that met a bug (the error's type only: its message may hold data)."""
    text = (
        f"line {number}: internal error ({type(exc).__name__}); this is a bug. The other lines were processed; "
        "report it (without personal data) and send this line again once fixed."
    )
    return one_issue("fatal", "exception", text)


#: one line's result: what is written for it, its status in the summary, the single-input command's exit code
Result = tuple[JSON, str, int]


def failed(number: int, err: SafetyPlanError, status: str) -> Result:
    """The result of line ``number`` that failed with ``err`` (counted as ``status``)."""
    return line_outcome(number, err), status, err.exit_code


def internal(number: int, exc: BaseException) -> Result:
    """The result of line ``number`` that met a bug: the other lines go on."""
    return internal_outcome(number, exc), "internal-error", exitcodes.INTERNAL


def interrupted_outcome(tally: Tally, after: str) -> JSON:
    """The last result line of an interrupted batch: up to which line the input was read (``after``: what the
    command adds about where the lines went)."""
    last = tally.last_line
    text = (
        f"interrupted: the input was read up to line {last} and every line up to there has its result "
        f"above{after}; nothing after line {last} was read. Send the rest again from line {last + 1}."
    )
    return one_issue("error", "incomplete", text)


def content_lines(stream: IO[bytes], stopper: Stopper, tally: Tally) -> Iterator[Line]:
    """The lines of ``stream`` that have content, until the end or a stop signal; every line read is counted
    in ``tally`` (a blank one as skipped)."""
    for line in stopper.lines(read_lines(stream)):
        tally.seen(line.number)
        if line.blank:
            tally.skip_blank(line.number)
        else:
            yield line


@dataclass
class Tally:
    """What became of the lines of one batch: counts by outcome and by exit code, and the blank lines."""

    command: str
    by_status: Counter[str] = field(default_factory=Counter)
    by_code: Counter[int] = field(default_factory=Counter)
    blank: list[int] = field(default_factory=list)
    last_line: int = 0
    interrupted: bool = False
    #: stdout was closed by its reader (``| head``): the batch stopped there
    output_closed: bool = False

    def add(self, number: int, status: str, code: int) -> None:
        """Line ``number`` ended as ``status`` (with the single-input command's exit ``code``)."""
        self.by_status[status] += 1
        self.by_code[code] += 1

    def seen(self, number: int) -> None:
        """Line ``number`` was read (the last one read is what an interrupted batch names)."""
        self.last_line = max(self.last_line, number)

    def skip_blank(self, number: int) -> None:
        if len(self.blank) < _MAX_LISTED:
            self.blank.append(number)
        self.by_status["blank"] += 1

    @property
    def lines(self) -> int:
        """How many non-blank lines have a result."""
        return sum(self.by_code.values())

    def exit_code(self) -> int:
        """0 all succeeded; the one code when every line failed alike; :data:`exitcodes.PARTIAL` otherwise."""
        if self.interrupted:
            return exitcodes.INTERRUPTED
        codes = set(self.by_code)
        if not codes or codes == {exitcodes.OK}:
            return exitcodes.OK
        if len(codes) == 1:
            return codes.pop()
        return exitcodes.PARTIAL

    def summary(self) -> str:
        """One line for stderr: counts only."""
        statuses = ", ".join(f"{n} {s}" for s, n in sorted(self.by_status.items()) if s != "blank")
        text = f"{self.command} --ndjson: {self.lines} line(s) with a result ({statuses or 'none'})"
        blanks = self.by_status["blank"]
        if blanks:
            listed = ", ".join(map(str, self.blank)) + (", ..." if blanks > len(self.blank) else "")
            text += f"; {blanks} blank line(s) skipped (line {listed}: no result line for them)"
        if self.output_closed:
            text += "; stdout was closed, so no result after that was written"
        if self.interrupted:
            text += f"; interrupted: the input was read up to line {self.last_line}, nothing after it"
        return f"{text}; exit {self.exit_code()}"


class Interrupted(Exception):
    """Ctrl-C or SIGTERM arrived while the batch was waiting for input (nothing half done)."""


class Stopper:
    """Ctrl-C and SIGTERM during a batch: :attr:`stopped` is set, and :class:`Interrupted` is raised at once
    only while :attr:`waiting` (blocked reading the input): a line being processed or stored is finished
    first, so what was accepted is whole. Installed only in the main thread (signals go there)."""

    def __init__(self) -> None:
        self.stopped = threading.Event()
        self.waiting = False
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.stopped.is_set():  # a second signal: stop now (the outbox keeps what was accepted)
            raise KeyboardInterrupt
        self.stopped.set()
        if self.waiting:
            raise Interrupted

    def __enter__(self) -> Stopper:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)

    def lines(self, source: Iterator[Line]) -> Iterator[Line]:
        """``source`` until the end or a stop signal; reading is the only place :class:`Interrupted` arrives."""
        while not self.stopped.is_set():
            try:
                self.waiting = True
                if self.stopped.is_set():  # the signal came just before: it raised nothing
                    return
                line = next(source, None)
            except Interrupted:
                return
            finally:
                self.waiting = False
            if line is None:
                return
            yield line
