"""The counters under the rate limits and quotas: fixed windows in ``rate_limit.storage``.

``memory://`` (this process, the default; ``MemoryCounter``, or ``api.node_counter``'s
table shared by a node's HTTP processes) counts with plain calls on the event loop and
cannot fail. ``redis://host:port[/db]`` (shared by several nodes; needs the ``redis``
Python package; ``SharedCounter``) is awaited, and when it cannot be reached the
request is let through (fail open) and the failure logged at most once per
``STORAGE_ERROR_LOG_SECONDS``: a limiter outage must not take the database down with it.

The route guard (``api.guard.gate``) counts a request in one call per step to either
storage's ``count`` (``MemoryCounter.count``, ``Counters.count``): the same arguments,
the same answer (``Counted``), awaited only for a shared storage. A counter is named by
its key ``(amount, window seconds, *ids)`` (``MemoryCounter.key``).
"""

from __future__ import annotations

import importlib.util
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Final, NamedTuple, Protocol

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio import strategies as aio_strategies
from limits.storage import storage_from_string

from stemedb.errors import ValidationError

log = logging.getLogger("stemedb.api")

STORAGE_ERROR_LOG_SECONDS: Final = 30.0
NAMESPACE: Final = "stemedb"


class Window(NamedTuple):
    """One counter after a hit: whether it was within the limit, and its state."""

    allowed: bool
    limit: int
    remaining: int
    reset_at: float  # Unix seconds when the window ends


# ``Window(...)`` without NamedTuple's Python-level ``__new__`` (half the cost; the
# counters make one to three a request): ``_new_window(Window, (allowed, limit, …))``.
_new_window: Final = tuple.__new__

Counted = tuple[int, Window | None, Window | None]
"""What one ``count`` did: the index of the first rate counter past its limit (-1: none),
that counter's window or else the tightest one (the least remaining, the first of
equals; None: no rate counter, or the storage is unreachable), and the quota's window
(None: no quota asked, a rate limit refused first, or the storage is unreachable)."""


class WindowCounter(Protocol):
    async def hit(self, item: RateLimitItem, ids: tuple[str, ...], cost: int = 1) -> Window: ...

    async def peek(self, item: RateLimitItem, ids: tuple[str, ...]) -> Window: ...

    async def close(self) -> None: ...


class MemoryCounter:
    """``memory://``: fixed windows in a dict of this process (no I/O, no lock: every
    call runs on the event loop).

    The same semantics as the ``limits`` library's ``MemoryStorage`` with its
    ``FixedWindowRateLimiter`` (a window opens at a counter's first hit and lasts the
    item's expiry; a counter is per identifiers *and* limit, so a changed limit counts
    afresh), without its per-call costs (three key strings built per hit, a lock, a
    timer thread). A counter's key is ``(amount, expiry seconds, *ids)``: the route
    guard builds it once per request and scope (``key``) and counts with ``add``, one
    dict operation. Expired counters are dropped by a sweep at most once per
    ``SWEEP_SECONDS``."""

    SWEEP_SECONDS: Final = 10.0

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        # (amount, expiry seconds, *ids) -> [count, window end (Unix seconds)]
        self._windows: dict[tuple[Any, ...], list[float]] = {}
        self._next_sweep = 0.0

    @staticmethod
    def key(item: RateLimitItem, ids: tuple[str, ...]) -> tuple[Any, ...]:
        """The counter of ``ids`` under ``item``'s limit."""
        return (item.amount, int(item.get_expiry()), *ids)

    async def hit(self, item: RateLimitItem, ids: tuple[str, ...], cost: int = 1) -> Window:
        return self.hit_now(item, ids, cost)

    async def peek(self, item: RateLimitItem, ids: tuple[str, ...]) -> Window:
        return self.peek_now(item, ids)

    def hit_now(self, item: RateLimitItem, ids: tuple[str, ...], cost: int = 1) -> Window:
        """``hit`` without the coroutine (``Counters`` calls this directly)."""
        return self.add(self.key(item, ids), cost)

    def peek_now(self, item: RateLimitItem, ids: tuple[str, ...]) -> Window:
        return self.look(self.key(item, ids))

    def add(self, key: tuple[Any, ...], cost: int = 1) -> Window:
        """Count ``cost`` in the counter ``key`` (see ``key``); its window after the hit."""
        now = self._clock()
        if now >= self._next_sweep:
            self._sweep(now)
        window = self._windows.get(key)
        if window is None or window[1] <= now:
            window = self._windows[key] = [cost, now + key[1]]
        else:
            window[0] += cost
        amount: int = key[0]
        remaining = amount - int(window[0])
        if remaining < 0:
            return _new_window(Window, (False, amount, 0, window[1]))
        return _new_window(Window, (True, amount, remaining, window[1]))

    def add_each(self, keys: Sequence[tuple[Any, ...]]) -> tuple[int, Window]:
        """One hit in each counter of ``keys`` in turn, as ``add`` would count it, up to
        the first one past its limit: (its index, its window), else (-1, the window with
        the least remaining, the first of equals). One clock read for them all."""
        now = self._clock()
        if now >= self._next_sweep:
            self._sweep(now)
        windows = self._windows
        tightest: list[float] = []
        tightest_amount = tightest_remaining = 0
        for index, key in enumerate(keys):
            window = windows.get(key)
            if window is None or window[1] <= now:
                window = windows[key] = [1, now + key[1]]
            else:
                window[0] += 1
            amount: int = key[0]
            remaining = amount - int(window[0])
            if remaining < 0:
                return index, _new_window(Window, (False, amount, 0, window[1]))
            if not tightest or remaining < tightest_remaining:
                tightest, tightest_amount, tightest_remaining = window, amount, remaining
        return -1, _new_window(Window, (True, tightest_amount, tightest_remaining, tightest[1]))

    def take(self, key: tuple[Any, ...], cost: int) -> Window:
        """``look`` and, if the counter ``key`` has anything left, ``add(key, cost)`` in one
        step (a quota's admission and charge): the window after; ``allowed`` is False,
        and nothing is charged, when nothing was left."""
        now = self._clock()
        if now >= self._next_sweep:
            self._sweep(now)
        amount: int = key[0]
        window = self._windows.get(key)
        if window is None or window[1] <= now:
            if amount <= 0:
                return _new_window(Window, (False, amount, 0, now))
            window = self._windows[key] = [cost, now + key[1]]
        elif window[0] >= amount:
            return _new_window(Window, (False, amount, 0, window[1]))
        else:
            window[0] += cost
        remaining = amount - int(window[0])
        return _new_window(Window, (True, amount, remaining if remaining > 0 else 0, window[1]))

    def look(self, key: tuple[Any, ...]) -> Window:
        """The counter ``key``'s window, without counting."""
        now = self._clock()
        amount: int = key[0]
        window = self._windows.get(key)
        if window is None or window[1] <= now:
            return _new_window(Window, (amount > 0, amount, amount, now))
        remaining = amount - int(window[0])
        if remaining > 0:
            return _new_window(Window, (True, amount, remaining, window[1]))
        return _new_window(Window, (False, amount, 0, window[1]))

    def count(
        self,
        keys: Sequence[tuple[Any, ...]],
        quota_key: tuple[Any, ...] | None,
        quota_cost: int | None,
    ) -> Counted:
        """One step of the route guard: a hit in each of ``keys`` (``add_each``); then,
        unless one of them refused, the quota ``quota_key``: checked and charged
        ``quota_cost`` in one step (``take``), or only looked at when the cost is not
        known yet (None)."""
        index, rate = self.add_each(keys) if keys else _NO_RATE
        if quota_key is None or (rate is not None and not rate.allowed):
            return index, rate, None
        if quota_cost is None:
            return index, rate, self.look(quota_key)
        return index, rate, self.take(quota_key, quota_cost)

    def _sweep(self, now: float) -> None:
        self._next_sweep = now + self.SWEEP_SECONDS
        expired = [key for key, window in self._windows.items() if window[1] <= now]
        for key in expired:
            del self._windows[key]

    async def close(self) -> None:
        self._windows.clear()


class SharedCounter:
    """``redis://…``: the asyncio ``limits`` strategy on a shared storage."""

    def __init__(self, uri: str) -> None:
        if importlib.util.find_spec("redis") is None:
            raise ValidationError(
                "rate_limit.storage",
                "dependency",
                f"rate_limit.storage {_public_uri(uri)} needs the redis Python package",
                code="rate_limit_storage_unavailable",
            )
        try:
            self._storage: Any = storage_from_string(
                "async+" + uri, implementation="redispy", key_prefix=NAMESPACE
            )
        except Exception as exc:  # noqa: BLE001 - limits' ConfigurationError and driver errors
            raise ValidationError(
                "rate_limit.storage", "invalid", f"rate_limit.storage: {exc}"
            ) from None
        self._limiter = aio_strategies.FixedWindowRateLimiter(self._storage)

    async def hit(self, item: RateLimitItem, ids: tuple[str, ...], cost: int = 1) -> Window:
        allowed = await self._limiter.hit(item, *ids, cost=cost)
        stats = await self._limiter.get_window_stats(item, *ids)
        return Window(allowed, item.amount, stats.remaining, stats.reset_time)

    async def peek(self, item: RateLimitItem, ids: tuple[str, ...]) -> Window:
        stats = await self._limiter.get_window_stats(item, *ids)
        return Window(stats.remaining > 0, item.amount, stats.remaining, stats.reset_time)

    async def check(self) -> bool:
        return bool(await self._storage.check())

    async def close(self) -> None:
        return None


def _public_uri(uri: str) -> str:
    """The storage URI without a password (never log credentials)."""
    scheme, sep, rest = uri.partition("://")
    if "@" in rest:
        rest = "***@" + rest.split("@", 1)[1]
    return scheme + sep + rest


def open_counter(uri: str) -> MemoryCounter | SharedCounter:
    if uri in ("memory://", ""):
        return MemoryCounter()
    if uri.startswith(("redis://", "rediss://", "redis+unix://")):
        return SharedCounter(uri)
    raise ValidationError(
        "rate_limit.storage",
        "choice",
        f"rate_limit.storage must be memory:// or redis://…, not {_public_uri(uri)}",
    )


class Counters:
    """Cached limit items and fail-open hits over one ``WindowCounter``."""

    def __init__(self, counter: WindowCounter) -> None:
        self.counter = counter
        # memory:// needs no await and cannot fail: callers count on it directly
        self.memory = counter if isinstance(counter, MemoryCounter) else None
        self._items: dict[tuple[int, int], RateLimitItem] = {}
        self._last_error_log = 0.0

    def share(self, counter: MemoryCounter) -> None:
        """Count ``memory://`` limits in ``counter`` instead (``api.node_counter``)."""
        self.counter = self.memory = counter

    def item(self, amount: int, window_seconds: int) -> RateLimitItem:
        """``amount`` per fixed window of ``window_seconds`` (cached)."""
        item = self._items.get((amount, window_seconds))
        if item is None:
            item = RateLimitItemPerSecond(amount, window_seconds, namespace=NAMESPACE)
            self._items[(amount, window_seconds)] = item
        return item

    async def hit(self, item: RateLimitItem, ids: tuple[str, ...], cost: int = 1) -> Window | None:
        if self.memory is not None:
            return self.memory.hit_now(item, ids, cost)
        try:
            return await self.counter.hit(item, ids, cost)
        except Exception as exc:  # noqa: BLE001 - the storage is down: fail open, say so in the log
            self._storage_failed(exc)
            return None

    async def peek(self, item: RateLimitItem, ids: tuple[str, ...]) -> Window | None:
        if self.memory is not None:
            return self.memory.peek_now(item, ids)
        try:
            return await self.counter.peek(item, ids)
        except Exception as exc:  # noqa: BLE001 - as in hit: fail open
            self._storage_failed(exc)
            return None

    async def count(
        self,
        keys: Sequence[tuple[Any, ...]],
        quota_key: tuple[Any, ...] | None,
        quota_cost: None = None,
    ) -> Counted:
        """``MemoryCounter.count`` on a shared storage, awaited: a hit in each of ``keys``
        in turn up to the first past its limit (an unreachable storage counts as no
        answer: fail open), then the quota looked at. There is no check-and-charge in
        one step here: the route guard charges the quota on the answer (``charge``)."""
        tightest: Window | None = None
        for index, key in enumerate(keys):
            window = await self.charge(key)
            if window is None:
                continue
            if not window.allowed:
                return index, window, None
            if tightest is None or window.remaining < tightest.remaining:
                tightest = window
        if quota_key is None:
            return -1, tightest, None
        return -1, tightest, await self.peek(self.item(quota_key[0], quota_key[1]), quota_key[2:])

    async def charge(self, key: tuple[Any, ...], cost: int = 1) -> Window | None:
        """Count ``cost`` in the counter ``key`` (``MemoryCounter.add`` awaited; None:
        the storage is unreachable)."""
        return await self.hit(self.item(key[0], key[1]), key[2:], cost)

    def _storage_failed(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._last_error_log >= STORAGE_ERROR_LOG_SECONDS:
            self._last_error_log = now
            log.error(
                "Error: UnavailableError: rate-limit storage failed (%s); requests are let"
                " through unlimited",
                type(exc).__name__,
            )


_NO_RATE: Final[tuple[int, Window | None]] = (-1, None)

__all__ = [
    "Counted",
    "Counters",
    "MemoryCounter",
    "SharedCounter",
    "Window",
    "WindowCounter",
    "open_counter",
]
