"""Rate limits (API.md "Rate limits and quotas") on the ``limits`` library.

Fixed windows of ``rate_limit.window_seconds`` (60: the limits are per minute), counted
in ``rate_limit.storage``: ``memory://`` (this process, the default) or
``redis://host:port[/db]`` (shared by several nodes; needs the ``redis`` Python package).
Three scopes, each its own counter:

- ``endpoint``: a route listed in ``[rate_limit.endpoints]`` (by route template, e.g.
  ``"/v1/assert" = 600``), per caller: the API key, else the agent, else the client
  address;
- ``key``: each API key, every limited route together: its admin override, else
  ``rate_limit.default_per_minute``;
- ``agent``: each agent (``X-Agent-Id`` on reads, the first signer on writes), every
  limited route together: its admin override, else ``default_per_minute``.

If the storage cannot be reached the request is let through (fail open) and the
failure logged at most once per ``STORAGE_ERROR_LOG_SECONDS``: a limiter outage must
not take the database down with it.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Any, Final, NamedTuple, Protocol

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio import strategies as aio_strategies
from limits.storage import storage_from_string

from stemedb.config import RateLimitConfig
from stemedb.errors import RateLimitError, ValidationError

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
        except Exception as exc:  # limits' ConfigurationError and driver errors
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
        except Exception as exc:  # the storage is down: fail open, say so in the log
            self._storage_failed(exc)
            return None

    async def peek(self, item: RateLimitItem, ids: tuple[str, ...]) -> Window | None:
        if self.memory is not None:
            return self.memory.peek_now(item, ids)
        try:
            return await self.counter.peek(item, ids)
        except Exception as exc:
            self._storage_failed(exc)
            return None

    def _storage_failed(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._last_error_log >= STORAGE_ERROR_LOG_SECONDS:
            self._last_error_log = now
            log.error(
                "Error: UnavailableError: rate-limit storage failed (%s); requests are let"
                " through unlimited", type(exc).__name__,
            )  # fmt: skip


COUNTER_CACHE_SIZE: Final = 4096


class RateLimits:
    def __init__(self, config: RateLimitConfig, counters: Counters) -> None:
        self.enabled = config.enabled
        self.default_per_minute = config.default_per_minute
        self.endpoints = dict(config.endpoints)
        self.window_seconds = max(1, config.window_seconds)
        self.counters = counters
        self.overrides: dict[tuple[str, str], int] = {}
        # (path, endpoint limit, key id, agent, address) -> that request's counter keys
        self._request_counters: dict[tuple[Any, ...], tuple[tuple[Any, ...], ...]] = {}

    def limit_of(self, scope: str, target: str) -> int:
        return self.overrides.get((scope, target), self.default_per_minute)

    def set_override(self, scope: str, target: str, limit: int) -> None:
        self.overrides[(scope, target)] = limit
        self._request_counters = {}

    def remove_override(self, scope: str, target: str) -> None:
        self.overrides.pop((scope, target), None)
        self._request_counters = {}

    def replace_overrides(self, overrides: dict[tuple[str, str], int]) -> None:
        self.overrides = overrides
        self._request_counters = {}

    def request_counters(
        self, path: str, endpoint_limit: int | None, key_id: str | None, agent: str | None,
        address: str,
    ) -> tuple[tuple[Any, ...], ...]:  # fmt: skip
        """A request's counters before its handler, in order, as ``key``s: the route's
        (``endpoint_limit``; per caller: the key, else the agent, else ``address``), the
        key's, the agent's. Remembered per caller (at most ``COUNTER_CACHE_SIZE``,
        forgotten when an override changes): most requests build none."""
        cache_key = (path, endpoint_limit, key_id, agent, address)
        found = self._request_counters.get(cache_key)
        if found is not None:
            return found
        counters: list[tuple[Any, ...]] = []
        if endpoint_limit is not None:
            caller = (
                "key:" + key_id if key_id is not None
                else "agent:" + agent if agent is not None
                else "addr:" + address
            )  # fmt: skip
            counters.append(self.key("endpoint", path, endpoint_limit, caller))
        if key_id is not None:
            counters.append(self.key("key", key_id, self.limit_of("key", key_id)))
        if agent is not None:
            counters.append(self.key("agent", agent, self.limit_of("agent", agent)))
        if len(self._request_counters) >= COUNTER_CACHE_SIZE:
            self._request_counters = {}
        found = self._request_counters[cache_key] = tuple(counters)
        return found

    def agent_counter(self, agent: str) -> tuple[Any, ...]:
        """The ``agent`` counter of a write's signer (remembered as ``request_counters``)."""
        return self.request_counters("", None, None, agent, "")[0]

    async def hit(self, scope: str, target: str, limit: int, extra: str = "") -> Window | None:
        """Count one request against ``scope``/``target`` (None: storage unreachable)."""
        ids = (scope, target, extra) if extra else (scope, target)
        return await self.counters.hit(self.counters.item(limit, self.window_seconds), ids)

    def key(self, scope: str, target: str, limit: int, extra: str = "") -> tuple[Any, ...]:
        """The counter ``hit`` counts in, as a ``MemoryCounter`` key (``MemoryCounter.key``
        of the same item and ids): ``(limit, window seconds, scope, target[, extra])``."""
        if extra:
            return (limit, self.window_seconds, scope, target, extra)
        return (limit, self.window_seconds, scope, target)

    async def hit_key(self, key: tuple[Any, ...]) -> Window | None:
        """``hit`` of a counter given by its ``key``."""
        limit, _, scope, target, *extra = key
        return await self.hit(scope, target, limit, *extra)


def seconds_until(reset_at: float, now: float | None = None) -> int:
    return max(1, math.ceil(reset_at - (time.time() if now is None else now)))


def limited(scope: str, window: Window, window_seconds: int) -> RateLimitError:
    retry = seconds_until(window.reset_at)
    return RateLimitError(
        f"rate limit exceeded ({scope}: {window.limit} requests per {window_seconds} s);"
        f" retry in {retry} s",
        details={
            "scope": scope, "limit": window.limit, "window_seconds": window_seconds,
            "retry_after_seconds": retry,
        },
    )  # fmt: skip


_WindowHeaders = tuple[tuple[bytes, bytes], tuple[bytes, bytes], bytes, tuple[bytes, bytes]]
_WINDOW_HEADERS: dict[tuple[int, int, float], _WindowHeaders] = {}


def _window_headers(limit: int, window_seconds: int, reset_at: float) -> _WindowHeaders:
    """What stays the same for a counter's whole window (cached): the
    ``RateLimit-Policy``, ``X-RateLimit-Limit`` and ``X-RateLimit-Reset`` headers and
    the start of ``RateLimit``."""
    headers = _WINDOW_HEADERS.get((limit, window_seconds, reset_at))
    if headers is None:
        if len(_WINDOW_HEADERS) >= 1024:
            _WINDOW_HEADERS.clear()
        headers = _WINDOW_HEADERS[(limit, window_seconds, reset_at)] = (
            (b"ratelimit-policy", b"%d;w=%d" % (limit, window_seconds)),
            (b"x-ratelimit-limit", b"%d" % limit),
            b"limit=%d, remaining=" % limit,
            (b"x-ratelimit-reset", b"%d" % math.ceil(reset_at)),
        )
    return headers


def rate_headers(
    window: Window, window_seconds: int, now: float | None = None
) -> list[tuple[bytes, bytes]]:
    """``RateLimit-Policy``, ``RateLimit`` (IETF draft) and ``X-RateLimit-*``."""
    limit, remaining, reset_at = window.limit, window.remaining, window.reset_at
    reset_in = math.ceil(reset_at - (time.time() if now is None else now))  # seconds_until
    policy, limit_header, ratelimit_start, reset_header = _window_headers(
        limit, window_seconds, reset_at
    )
    remaining_bytes = b"%d" % (remaining if remaining > 0 else 0)
    return [
        policy,
        (
            b"ratelimit",
            b"%s%s, reset=%d" % (ratelimit_start, remaining_bytes, reset_in if reset_in > 1 else 1),
        ),
        limit_header,
        (b"x-ratelimit-remaining", remaining_bytes),
        reset_header,
    ]


__all__ = [
    "Counters",
    "MemoryCounter",
    "RateLimits",
    "SharedCounter",
    "Window",
    "WindowCounter",
    "limited",
    "open_counter",
    "rate_headers",
    "seconds_until",
]
