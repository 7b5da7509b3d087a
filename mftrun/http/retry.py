"""Retry policy as immutable data, modelled on urllib3's `Retry`, plus the one loop that applies it.

Why data: each kind of call has a different safe policy, and tests can state
them exactly. Reads (GET, token requests) are retried on connection errors and
5xx. A request that *starts work* is not idempotent: it is retried only when
the server certainly did not process it (429, or a connection that failed
before the request was sent); a read timeout or a dropped connection after
sending is never replayed (the caller reports that the work may have started).

The clock and the random source are injected so back-off is testable without
sleeping. Polls must not block a worker for long: a policy with
`inline_retry_after=False` raises `RetryLater` instead of sleeping, and the
executor schedules the next poll after the server's wait.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

from mftrun.clock import Clock
from mftrun.http import gate
from mftrun.http.session import NoResponseError, NotSentError

SERVER_ERRORS = frozenset({500, 502, 503, 504})


class RetryLater(Exception):
    """The server asked us to come back later; raised only when the policy must not sleep."""

    def __init__(self, seconds: float, response: Any) -> None:
        super().__init__(seconds)
        self.seconds = seconds
        self.response = response


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    retries: int = 3  # extra tries after the first
    statuses: frozenset[int] = SERVER_ERRORS  # retried with back-off (or Retry-After)
    retry_after_statuses: frozenset[int] = frozenset({429, 503})  # honour Retry-After on these
    on_not_sent: bool = True  # connection failed before the request went out
    on_no_response: bool = True  # read timeout / dropped connection: only for idempotent calls
    backoff_factor: float = 0.5  # n-th retry waits factor * 2**(n-1), jittered, capped
    backoff_max: float = 10.0
    jitter: float = 0.5  # up to this fraction added on top of the back-off
    max_total: float = 120.0  # never keep trying longer than this (seconds, from the first try)
    max_retry_after: float = 300.0  # a longer Retry-After than this ends the retries
    inline_retry_after: bool = True  # False: raise RetryLater instead of sleeping

    def replace(self, **changes: Any) -> RetryPolicy:
        return dataclasses.replace(self, **changes)

    def is_retry_status(self, status: int) -> bool:
        return status in self.statuses or status in self.retry_after_statuses

    def is_retry_error(self, exc: BaseException) -> bool:
        if isinstance(exc, NotSentError):
            return self.on_not_sent
        if isinstance(exc, NoResponseError):
            return self.on_no_response
        return False

    def backoff(self, retry_number: int, rng: random.Random) -> float:
        """Wait before the n-th retry (1-based): exponential, jittered, capped at backoff_max."""
        base = self.backoff_factor * (2 ** max(0, retry_number - 1))
        return max(0.0, min(self.backoff_max, base * (1.0 + rng.uniform(0.0, self.jitter))))


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date).

    None if absent or bad.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        return max(0.0, (when - now).total_seconds())
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


@dataclass(slots=True)
class Outcome:
    """What the loop ended with: the last response, and how many retries it took."""

    response: Any
    retries: int
    waited: float


def call_with_retry(
    send: Callable[[], Any], policy: RetryPolicy, *, clock: Clock, rng: random.Random | None = None
) -> Outcome:
    """Call `send` until it gives a response the policy does not retry, or the policy is spent.

    Returns the last response (possibly a 5xx/429: the caller words the error).
    Re-raises the last transport error when it may not or can no longer retry.
    """
    rng = rng or random.Random()
    started = clock.monotonic()
    retries = 0
    waited = 0.0
    reason = ""
    while True:
        try:
            response = send()
        except gate.Abandoned:
            raise  # the step ended: nothing more for it, not even a retry
        except (NotSentError, NoResponseError) as exc:
            if not policy.is_retry_error(exc):
                raise
            wait = policy.backoff(retries + 1, rng)
            if retries >= policy.retries or clock.monotonic() - started + wait > policy.max_total:
                if retries:
                    exc.message = f"{exc.message} (gave up after {retries + 1} tries)"
                raise
            reason = "a retry after a connection failure"
            if isinstance(exc, NotSentError):
                gate.unprocessed()  # certainly never reached the server
        else:
            status = response.status_code
            if not policy.is_retry_status(status):
                return Outcome(response, retries, waited)
            wait_hint = None
            if status in policy.retry_after_statuses:
                wait_hint = parse_retry_after(response.headers.get("Retry-After"), clock.now())
            if wait_hint is None and status not in policy.statuses and status != 429:
                return Outcome(response, retries, waited)
            wait = wait_hint if wait_hint is not None else policy.backoff(retries + 1, rng)
            if not policy.inline_retry_after and (wait_hint is not None or status == 429):
                raise RetryLater(wait, response)
            if (
                retries >= policy.retries
                or wait > policy.max_retry_after
                or clock.monotonic() - started + wait > policy.max_total
            ):
                return Outcome(response, retries, waited)
            if status == 429:
                gate.unprocessed()  # a 429 says the request was not processed
            reason = f"a retry after a {status} answer" + (
                f" (Retry-After {wait:g}s)" if wait_hint is not None else ""
            )
        # On the step's gate: a step that ends meanwhile wakes this and nothing more is sent.
        gate.pause(clock, wait, reason)
        waited += wait
        retries += 1


# The policies the providers use; tests and `create_provider(policies=...)` may swap them.
READ = RetryPolicy()  # GETs and token requests: connection errors, 5xx, 429 with Retry-After
POLL = READ.replace(retries=2, backoff_max=2.0, max_total=10.0, inline_retry_after=False)
START = RetryPolicy(
    retries=5,
    statuses=frozenset(),
    retry_after_statuses=frozenset({429}),
    on_not_sent=True,
    on_no_response=False,
    backoff_factor=2.5,
    backoff_max=30.0,
    max_total=300.0,
)


@dataclass(frozen=True, slots=True)
class Policies:
    """The set of policies one provider uses; swap them whole for tests or tuning."""

    read: RetryPolicy = READ  # idempotent calls: GET/HEAD/OPTIONS/DELETE, token requests, check
    poll: RetryPolicy = POLL  # inside poll(): never sleeps for Retry-After
    start: RetryPolicy = START  # non-idempotent calls (task start, http POST/PUT/PATCH)

    def replace(self, **changes: RetryPolicy) -> Policies:
        return dataclasses.replace(self, **changes)


DEFAULT_POLICIES = Policies()
