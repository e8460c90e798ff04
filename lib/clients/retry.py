"""One retry policy for every client that speaks HTTP (Knack, Socrata, ArcGIS), on tenacity.

What is retried: HTTP 429 and 5xx answers, timeouts and lost connections. A client says
which of its failures are such by raising :class:`Transient` from the attempt it hands to
:meth:`RetryPolicy.call`; anything else it raises (another 4xx, a bad answer) ends the call
at once. How long between attempts: what the server said (``Retry-After`` in seconds or as
an HTTP date, else Knack's ``X-RateLimit-Reset``), at most ``cap``, plus a little jitter;
otherwise exponential backoff with full jitter. At most ``attempts`` attempts, then
:class:`GaveUp`. Every attempt and every retry is counted in :class:`RequestStats`, the
``requests`` and ``retries`` of a run's report.

``sleep`` and ``clock`` are the policy's own, so a test can run it without waiting.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

import tenacity

logger = logging.getLogger(__name__)

T = TypeVar("T")
_EPOCH_SECONDS = 1e9  # an X-RateLimit-Reset above this is a time (epoch), below a duration


def retryable_status(status: int) -> bool:
    """Whether an HTTP status is worth another attempt: 429 (slow down) or any 5xx."""
    return status == 429 or 500 <= status <= 599


def one_line(e: BaseException) -> str:
    """An error's message on one line (a service's answer may span several), as the
    clients quote it in a Transient and in the error they give up with."""
    return " ".join(str(e).split())


class Transient(Exception):
    """A failure worth another attempt: a 429 or 5xx answer (``status``, with the answer's
    ``headers``), a timeout or a lost connection (``status`` None)."""

    def __init__(
        self, reason: str, *, status: int | None = None, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(f"HTTP {status}: {reason}" if status is not None else reason)
        self.reason = reason
        self.status = status
        self.headers = headers or {}


class GaveUp(Exception):
    """Every attempt failed: ``last`` is the last attempt's failure, ``attempts`` how many."""

    def __init__(self, last: Transient, attempts: int) -> None:
        super().__init__(f"{last.reason} (after {attempts} attempts)")
        self.last = last
        self.attempts = attempts


@dataclass
class RequestStats:
    """Counts kept by a client: requests made (attempts), retries, answers by status."""

    requests: int = 0
    retries: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def attempt(self) -> None:
        with self._lock:
            self.requests += 1

    def retry(self) -> None:
        with self._lock:
            self.retries += 1

    def answered(self, status: int) -> None:
        with self._lock:
            self.by_status[status] = self.by_status.get(status, 0) + 1


class Counted:
    """A client whose calls its retry policy counts in ``stats``: ``requests`` (attempts made)
    and ``retries``, the figures the reports show."""

    stats: RequestStats

    @property
    def requests(self) -> int:
        return self.stats.requests

    @property
    def retries(self) -> int:
        return self.stats.retries


def server_delay(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds the server asked to wait, if it did: ``Retry-After`` (seconds or an HTTP
    date), else ``X-RateLimit-Reset`` (an epoch time or seconds); ``now``: POSIX seconds."""
    value = (headers.get("Retry-After") or "").strip()
    if value:
        try:
            return float(value)
        except ValueError:
            pass
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            when = None
        if when is not None:
            when = when if when.tzinfo else when.replace(tzinfo=dt.UTC)
            return when.timestamp() - now
    reset = (headers.get("X-RateLimit-Reset") or "").strip()
    if reset:
        try:
            seconds = float(reset)
        except ValueError:
            return None
        return seconds - now if seconds > _EPOCH_SECONDS else seconds
    return None


@dataclass
class RetryPolicy:
    """Bounded attempts; the server's delay when it gives one, else exponential backoff
    with full jitter."""

    attempts: int = 6
    base: float = 0.5  # seconds: the first backoff's ceiling, and the jitter on a server delay
    cap: float = 30.0  # the longest single wait
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.time  # POSIX seconds, to read a reset time or a date

    def backoff(self, attempt: int) -> float:
        """The wait after failed attempt number ``attempt`` (1-based) when the server said
        nothing: uniform between 0 and ``min(cap, base * 2**(attempt - 1))``."""
        return random.uniform(0, min(self.cap, self.base * 2 ** (attempt - 1)))

    def wait(self, attempt: int, told: float | None = None) -> float:
        """The wait after failed attempt ``attempt``; ``told``: the server's delay."""
        if told is None:
            return self.backoff(attempt)
        return min(max(told, 0.0), self.cap) + random.uniform(0, self.base)

    def call(
        self,
        attempt: Callable[[], T],
        *,
        what: str,
        stats: RequestStats | None = None,
        before_retry: Callable[[], None] | None = None,
    ) -> T:
        """``attempt()``, again while it raises :class:`Transient`, at most ``attempts``
        times; :class:`GaveUp` when the last one does too. ``what`` names the call in log
        lines; ``before_retry`` runs before each retry (e.g. to find out what a failed
        request did after all)."""

        made = 0

        def counted() -> T:
            nonlocal made
            if made and before_retry is not None:
                before_retry()
            made += 1
            if stats is not None:
                stats.attempt()
            return attempt()

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.attempts),
            wait=self._wait,
            retry=tenacity.retry_if_exception_type(Transient),
            sleep=self.sleep,
            before_sleep=lambda state: self._before_sleep(state, what, stats),
        )
        try:
            return retrying(counted)
        except tenacity.RetryError as e:
            last = e.last_attempt
            failure = last.exception()
            assert isinstance(failure, Transient)
            raise GaveUp(failure, last.attempt_number) from None

    def _wait(self, state: tenacity.RetryCallState) -> float:
        failure = state.outcome.exception() if state.outcome else None
        told = (
            server_delay(failure.headers, self.clock()) if isinstance(failure, Transient) else None
        )
        return self.wait(state.attempt_number, told)

    @staticmethod
    def _before_sleep(
        state: tenacity.RetryCallState, what: str, stats: RequestStats | None
    ) -> None:
        if stats is not None:
            stats.retry()
        failure = state.outcome.exception() if state.outcome else None
        delay = state.next_action.sleep if state.next_action else 0.0
        logger.warning(
            "%s failed (%s); retry %d in %.1fs", what, failure, state.attempt_number, delay
        )
