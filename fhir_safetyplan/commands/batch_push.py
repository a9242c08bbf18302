"""``push --ndjson``: one plan per line into the outbox, in input order, then sent on a few threads.

Each line is read, built into its journal Bundle and stored in the outbox (leased to this process) *before*
anything of it is sent, in input order, on the main thread; :class:`~fhir_safetyplan.delivery.batch_send.Sender`
sends the stored plans, one patient's plans one after the other. The results are written in input order as
they become known: the delivery result as ``push`` prints it (with ``"line"``), or an OperationOutcome naming
the line. At most a small window of plans is between stored and written, so memory stays flat.

Ctrl-C / SIGTERM: no new line is read; a line being stored is finished; plans not sent yet stay pending in the
outbox (reported queued); the last result line says up to which input line everything is in the outbox.
"""

from __future__ import annotations

import argparse
import queue
import signal
import sys
import threading
from typing import Any

from fhir_safetyplan import batch, exitcodes
from fhir_safetyplan.commands.batch import WINDOW_PER_WORKER, Output, opened
from fhir_safetyplan.errors import JSON, SafetyPlanError


class _InOrder:
    """Results written in input order by a writer thread, as soon as every line before them is written (also
    while the main thread waits for more input). A line is *expected* when it is read (at most ``window`` wait
    at once: :meth:`expect` blocks), *done* when its result is known (on any thread)."""

    def __init__(self, out: Output, tally: batch.Tally, window: int, stopped: threading.Event) -> None:
        self.out, self.tally, self._stopped = out, tally, stopped
        self._expected: queue.Queue[int | None] = queue.Queue()
        self._ready: dict[int, batch.Result] = {}
        self._known = threading.Condition()
        self._room = threading.Semaphore(window)
        #: what else stopped the writer (a closed stdout only sets ``out.closed``); re-raised by :meth:`close`
        self.failed: BaseException | None = None
        self._thread = threading.Thread(target=self._write, name="safetyplan-write", daemon=True)
        self._thread.start()

    def expect(self, number: int) -> None:
        while not self._room.acquire(timeout=0.5):  # in steps: a stop signal is handled meanwhile
            pass
        self._expected.put(number)

    def done(self, number: int, result: JSON, status: str, code: int) -> None:
        with self._known:
            self._ready[number] = (result, status, code)
            self._known.notify_all()

    def close(self) -> None:
        """Wait until every expected line is written (re-raising what stopped the writer)."""
        self._expected.put(None)
        while self._thread.is_alive():
            self._thread.join(timeout=0.5)
        if self.failed is not None:
            raise self.failed

    def _write(self) -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})  # for the main thread
        while (number := self._expected.get()) is not None:
            with self._known:
                while number not in self._ready:
                    self._known.wait()
                result, status, code = self._ready.pop(number)
            self.tally.add(number, status, code)
            if self.failed is None and not self.out.closed:
                try:
                    if not self.out.write(result):  # stdout gone (``| head``): the plans are in the outbox
                        self._stopped.set()  # read no more lines: nobody would see their results
                except BaseException as exc:
                    self.failed = exc
                    self._stopped.set()
            self._room.release()


def push_lines(args: argparse.Namespace) -> int:
    """``push --ndjson``: see the module docstring; the exit code is :meth:`fhir_safetyplan.batch.Tally.exit_code`."""
    from fhir_safetyplan.commands.pipeline import context_from
    from fhir_safetyplan.delivery.store import open_outbox
    from fhir_safetyplan.settings import settings_of

    if args.no_outbox:
        sys.stderr.write("safetyplan: push --ndjson always goes through the outbox; leave out --no-outbox\n")
        return exitcodes.USAGE
    settings = settings_of(args)
    context = context_from(args)
    auth = settings.auth(args.auth)  # checked once, before anything is read or sent
    path = settings.outbox_spec()
    tally = batch.Tally("push")
    with (
        opened(args.file) as stream,
        settings.client(args.server, auth) as client,
        open_outbox(path) as outbox,
        batch.Stopper() as stopper,
    ):
        run = _Run(
            args, context, client.base_url, outbox, path, tally, stopper.stopped, settings.public_hosts
        )
        run.go(stream, stopper, lambda: settings.client(client.base_url, auth), client)
    sys.stderr.write(f"safetyplan: {tally.summary()}\n")
    return tally.exit_code()


class _Run:
    """One ``push --ndjson``: store each line, hand it to the sender, write the results in order."""

    def __init__(
        self,
        args: argparse.Namespace,
        context: Any,
        server: str,
        outbox: Any,
        path: Any,
        tally: batch.Tally,
        stopped: threading.Event,
        public_hosts: tuple[str, ...],
    ) -> None:
        self.args, self.context, self.server, self.outbox, self.path = args, context, server, outbox, path
        self.tally, self.public_hosts = tally, public_hosts
        self.order = _InOrder(Output(), tally, WINDOW_PER_WORKER * args.workers, stopped)

    def go(self, stream: Any, stopper: batch.Stopper, factory: Any, probe: Any) -> None:
        from fhir_safetyplan.delivery.batch_send import Sender

        try:
            with Sender(self.outbox, factory, self.args.workers, stopper.stopped, self._report) as sender:
                if not self.args.no_check:
                    self._check(probe, sender)
                for line in batch.content_lines(stream, stopper, self.tally):
                    self._line(line, sender)
        except BaseException:
            stopper.stopped.set()  # nothing more is sent; what was stored stays pending in the outbox
            raise
        finally:
            self.order.close()
        self.tally.output_closed = self.order.out.closed
        self.tally.interrupted = stopper.stopped.is_set()
        if self.tally.interrupted:
            after = (
                f"; every plan up to there is in the outbox {self.path} (those not reported delivered are "
                "sent by 'safetyplan outbox flush')"
            )
            self.order.out.write(batch.interrupted_outcome(self.tally, after))

    def _check(self, client: Any, sender: Any) -> None:
        """The server's CapabilityStatement, once: when it cannot take plans, they all wait in the outbox."""
        from fhir_safetyplan.outcomes import stops_queue

        try:
            client.check_capabilities()
        except SafetyPlanError as err:
            if not stops_queue(err.kind):
                raise
            sender.halt(err)

    def _line(self, line: batch.Line, sender: Any) -> None:
        self.order.expect(line.number)
        try:
            job = self._store(line)
        except SafetyPlanError as err:
            self.order.done(line.number, *_failed(line.number, err))
        except Exception as exc:  # a bug on one line never stops the others
            self._report(line.number, exc)
        else:
            sender.submit(job)

    def _store(self, line: batch.Line) -> Any:
        from fhir_safetyplan.bundle import submission_of
        from fhir_safetyplan.delivery.batch_send import Job
        from fhir_safetyplan.delivery.guard import guard_public_server
        from fhir_safetyplan.pipeline import build_bundle

        bundle = build_bundle(batch.parse_line(line), self.context)
        submission = submission_of(bundle)
        assert submission, "build_bundle always sets the submission identifier"
        guard_public_server(bundle, self.server, self.public_hosts)
        entry = self.outbox.put(submission, bundle, self.server, lease_seconds=self.outbox.lease_seconds)
        return Job(line.number, entry, bundle)

    def _report(self, number: int, result: Any) -> None:
        """A line's delivery result (or the bug it met), on whichever thread it became known."""
        from fhir_safetyplan.commands.push import summary

        if isinstance(result, BaseException):
            self.order.done(number, *batch.internal(number, result))
            return
        status = str(result.status)
        if status in ("delivered", "queued", "conflict") or result.outcome is None:
            shown = {"line": number, **summary(result, self.path)}
        else:
            shown = batch.with_line(number, result.outcome)
        self.order.done(number, shown, status, result.exit_code)


def _failed(number: int, err: SafetyPlanError) -> batch.Result:
    """A line refused before it was sent: invalid input, refused by policy, or an outbox that could not store it
    (then nothing of it is kept: its status says so)."""
    from fhir_safetyplan.outcomes import Kind

    status = {Kind.INPUT: "invalid", Kind.POLICY: "refused"}.get(err.kind, "not-stored")
    return batch.failed(number, err, status)
