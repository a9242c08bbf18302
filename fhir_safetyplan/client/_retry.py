"""Retry policy as small named strategies (stop / wait / retry-if), composed into one :class:`RetryPolicy`.

Why our own layer instead of urllib3's ``Retry`` in the adapter: whether a request may be repeated
depends on its *body* (a transaction POST is safe only when every entry is PUT/GET/DELETE or a
conditional create), which urllib3 cannot see; and keeping every retry decision in one place means a
dropped connection is never retried twice over (urllib3 inside, us outside). The adapter is mounted
with ``Retry(0)`` and this policy decides everything; urllib3 still parses ``Retry-After`` for us.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass


@dataclass(frozen=True)
class Attempt:
    """What happened on one try; the strategies decide from this alone."""

    #: 1 for the first try
    number: int
    #: whether repeating the request can change nothing on the server (GET, PUT, idempotent transaction)
    idempotent: bool
    #: HTTP status, or None when no answer came (then ``error`` is set)
    status: int | None = None
    #: seconds the server asked us to wait (``Retry-After``), if it did
    retry_after: float | None = None
    error: BaseException | None = None
    #: the request provably never left this machine (connection refused, DNS, connect timeout)
    never_sent: bool = False


Stop = Callable[[Attempt], bool]
Wait = Callable[[Attempt], float]
RetryIf = Callable[[Attempt], bool]

#: statuses that mean "not now" rather than "not this": worth another try
RETRY_STATUSES = frozenset({408, 429, 502, 503, 504})


def stop_after_attempt(attempts: int) -> Stop:
    """Give up once ``attempts`` tries have been made."""
    return lambda a: a.number >= attempts


def stop_if_retry_after_exceeds(limit: float) -> Stop:
    """Give up when the server asks for a longer pause than ``limit`` seconds (the outbox waits instead)."""
    return lambda a: a.retry_after is not None and a.retry_after > limit


def stop_any(*stops: Stop) -> Stop:
    """Stop when any of ``stops`` says so."""
    return lambda a: any(s(a) for s in stops)


def wait_exponential(initial: float = 0.5, maximum: float = 30.0, jitter: float = 0.25) -> Wait:
    """``initial * 2**(n-1)`` seconds, capped at ``maximum``, plus up to ``jitter`` of it at random.

    The jitter spreads out clients that failed together (e.g. several workers flushing an outbox).
    """

    def wait(a: Attempt) -> float:
        base = min(maximum, initial * 2.0 ** (a.number - 1))
        return base + random.uniform(0, jitter * base)  # noqa: S311 - spacing, not security

    return wait


def wait_retry_after(otherwise: Wait) -> Wait:
    """The server's ``Retry-After`` when it sent one (never less), otherwise ``otherwise``."""

    def wait(a: Attempt) -> float:
        return a.retry_after if a.retry_after is not None else otherwise(a)

    return wait


def retry_if_status(statuses: Collection[int] = RETRY_STATUSES) -> RetryIf:
    """Retry answers whose status is in ``statuses``."""
    return lambda a: a.status is not None and a.status in statuses


def retry_if_no_answer() -> RetryIf:
    """Retry when no answer came at all (refused, reset, timeout)."""
    return lambda a: a.status is None and a.error is not None


def retry_any(*conditions: RetryIf) -> RetryIf:
    """Retry when any of ``conditions`` holds."""
    return lambda a: any(c(a) for c in conditions)


def only_if_safe(condition: RetryIf) -> RetryIf:
    """Retry only requests that cannot duplicate anything: idempotent ones, or ones never sent."""
    return lambda a: (a.idempotent or a.never_sent) and condition(a)


def _sleep(seconds: float) -> None:
    # Looked up at call time so tests can patch ``time.sleep`` and read the waits instead of waiting.
    time.sleep(seconds)


@dataclass(frozen=True)
class RetryPolicy:
    """When to try again and how long to wait first."""

    stop: Stop
    wait: Wait
    retry_if: RetryIf
    sleep: Callable[[float], None] = _sleep

    def next_wait(self, attempt: Attempt) -> float | None:
        """Seconds to wait before the next try, or None to give up now."""
        if not self.retry_if(attempt) or self.stop(attempt):
            return None
        return max(0.0, self.wait(attempt))


def default_policy(retries: int = 3, *, max_retry_after: float = 120.0) -> RetryPolicy:
    """Up to ``retries`` retries of safe requests on 408/429/502/503/504 and lost connections.

    Waits follow ``Retry-After`` when given (up to ``max_retry_after`` seconds; a longer request ends the
    tries and leaves the work to the outbox), otherwise 0.5 s, 1 s, 2 s, ... with jitter.
    """
    return RetryPolicy(
        stop=stop_any(stop_after_attempt(retries + 1), stop_if_retry_after_exceeds(max_retry_after)),
        wait=wait_retry_after(wait_exponential()),
        retry_if=only_if_safe(retry_any(retry_if_status(), retry_if_no_answer())),
    )


#: never repeat anything
NO_RETRY = RetryPolicy(stop=stop_after_attempt(1), wait=lambda a: 0.0, retry_if=lambda a: False)
