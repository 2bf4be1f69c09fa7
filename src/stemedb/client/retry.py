"""When and how long the client waits before trying a request again.

Retried: answers with a status in ``RetryPolicy.retry_statuses`` (429 and 503 by
default: rate limited, quota, not ready, read-only, storage down), and transport
failures — always when the connection was never made, and after a request may have
reached the server only if the request is idempotent. Every StemeDB request is: a
write is named by its content ID, so sending the same signed record twice stores it
once (the second answer is ``200 {"status": "exists"}``). The delay is exponential
with full jitter, never shorter than the server's ``Retry-After``, and the whole call
(all attempts and waits) is bounded by ``deadline_seconds``.
"""

from __future__ import annotations

import email.utils
import random
import time
from typing import Final

import msgspec

DEFAULT_RETRY_STATUSES: Final = frozenset({429, 503})


class RetryPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """Retry settings. ``RetryPolicy(max_retries=0)`` turns retries off."""

    max_retries: int = 3
    backoff_base_seconds: float = 0.1
    backoff_max_seconds: float = 5.0
    deadline_seconds: float = 60.0
    retry_statuses: frozenset[int] = DEFAULT_RETRY_STATUSES
    jitter: bool = True

    def backoff_seconds(self, attempt: int, rng: random.Random | None = None) -> float:
        """The wait before retry number ``attempt`` (1-based): ``base * 2**(attempt-1)``,
        capped at ``backoff_max_seconds``; with jitter a uniform draw in ``[0, that]``."""
        ceiling = min(self.backoff_max_seconds, self.backoff_base_seconds * 2.0 ** (attempt - 1))
        if not self.jitter:
            return ceiling
        return float((rng or _RNG).uniform(0.0, ceiling))

    def delay_seconds(
        self, attempt: int, retry_after_seconds: float | None, rng: random.Random | None = None
    ) -> float:
        """The wait before retry ``attempt``: the backoff, but at least ``Retry-After``."""
        delay = self.backoff_seconds(attempt, rng)
        if retry_after_seconds is not None:
            delay = max(delay, retry_after_seconds)
        return delay


_RNG: Final = random.Random()
NO_RETRIES: Final = RetryPolicy(max_retries=0)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date; None if
    absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class RetryState:
    """One call's retry book-keeping: attempts made and the total deadline."""

    __slots__ = ("attempt", "deadline", "policy")

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self.attempt = 0
        self.deadline = time.monotonic() + policy.deadline_seconds

    def next_delay(self, retry_after_seconds: float | None) -> float | None:
        """The wait before the next attempt, or None when the call must give up (retries
        used up, or the wait would cross the deadline)."""
        if self.attempt >= self.policy.max_retries:
            return None
        self.attempt += 1
        delay = self.policy.delay_seconds(self.attempt, retry_after_seconds)
        if time.monotonic() + delay > self.deadline:
            return None
        return delay

    def remaining_seconds(self) -> float:
        return max(0.0, self.deadline - time.monotonic())


__all__ = ["NO_RETRIES", "RetryPolicy", "RetryState", "parse_retry_after"]
