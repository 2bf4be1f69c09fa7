"""The one circuit-breaker state machine, shared by the storage breakers
(``api.resilience.storage``) and the per-agent write breakers (``api.resilience.agents``).

    closed --(threshold consecutive failures)--> open --(reset_seconds)--> half-open
    half-open: one trial call; its success closes the breaker, its failure opens it
    again (the wait starts over), a neutral end frees the trial slot.

A failure while the breaker is open (a call let through before it opened) opens it
again too. An admin can trip a breaker (``trip``): it stays open, never half-opens and
ignores outcomes until it is reset (the owner drops it). A success closes a breaker
that is not tripped and clears its failure count.

The machine has no clock, lock or log of its own: its owner passes ``now`` (monotonic
seconds), serialises the calls (the storage breakers take a lock, the agent breakers
run on the event loop) and says what happened (metrics, log lines, error answers).
"""

from __future__ import annotations

from typing import Final, Literal

from stemedb.wire import BreakerStateName

Admission = Literal["closed", "trial", "refused"]

CLOSED: Final = "closed"
OPEN: Final = "open"
HALF_OPEN: Final = "half_open"


class Breaker:
    """One breaker: consecutive failures, when it opened, the running trial."""

    __slots__ = ("failures", "forced", "opened_at", "trial_at")

    def __init__(self) -> None:
        self.failures = 0
        self.opened_at: float | None = None  # monotonic seconds; None while closed
        self.trial_at: float | None = None  # monotonic start of the half-open trial
        self.forced = False  # tripped by an admin: open until reset

    @property
    def opened(self) -> bool:
        """Open or half-open: not closed."""
        return self.opened_at is not None

    def state(self, now: float, reset_seconds: float) -> BreakerStateName:
        opened_at = self.opened_at
        if opened_at is None:
            return CLOSED
        if not self.forced and now - opened_at >= reset_seconds:
            return HALF_OPEN
        return OPEN

    def retry_after(self, now: float, reset_seconds: float) -> float:
        """Seconds until an open breaker half-opens (0 when closed)."""
        if self.opened_at is None:
            return 0.0
        return max(0.0, reset_seconds - (now - self.opened_at))

    def admit(
        self, now: float, reset_seconds: float, *, trial_seconds: float | None = None
    ) -> Admission:
        """May a call go ahead: ``closed`` (yes), ``trial`` (yes, as the half-open
        trial), ``refused``. ``trial_seconds``: a trial that started that long ago
        without an outcome gives its slot to the next call (None: it holds the slot
        until ``succeed``, ``fail`` or ``release_trial``)."""
        state = self.state(now, reset_seconds)
        if state == CLOSED:
            return CLOSED
        if state == HALF_OPEN:
            trial_at = self.trial_at
            if trial_at is None or (trial_seconds is not None and now - trial_at >= trial_seconds):
                self.trial_at = now
                return "trial"
        return "refused"

    def succeed(self) -> bool:
        """A call succeeded: close the breaker unless an admin tripped it; True when
        it was open."""
        if self.forced:
            return False
        was_open = self.opened_at is not None
        self.failures = 0
        self.opened_at = None
        self.trial_at = None
        return was_open

    def fail(self, now: float, threshold: int) -> bool:
        """A call failed: count it; True when this opened the breaker (again)."""
        self.failures += 1
        if self.forced or (self.opened_at is None and self.failures < threshold):
            return False
        self.opened_at = now
        self.trial_at = None
        return True

    def release_trial(self) -> None:
        """The trial ended without an outcome (cancelled, refused before the call)."""
        self.trial_at = None

    def trip(self, now: float) -> None:
        """Open the breaker until it is reset (an admin's decision)."""
        self.forced = True
        self.opened_at = now
        self.trial_at = None


__all__ = ["CLOSED", "HALF_OPEN", "OPEN", "Admission", "Breaker", "BreakerStateName"]
