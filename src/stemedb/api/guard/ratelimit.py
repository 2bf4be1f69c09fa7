"""Rate limits (API.md "Rate limits and quotas") on the ``limits`` library.

Fixed windows of ``rate_limit.window_seconds`` (60: the limits are per minute), counted
in ``rate_limit.storage`` (``api.guard.counters``): ``memory://`` (this process, the
default) or ``redis://host:port[/db]`` (shared by several nodes). Three scopes, each its
own counter:

- ``endpoint``: a route listed in ``[rate_limit.endpoints]`` (by route template, e.g.
  ``"/v1/assert" = 600``), per caller: the API key, else the agent, else the client
  address;
- ``key``: each API key, every limited route together: its admin override, else
  ``rate_limit.default_per_minute``;
- ``agent``: each agent (``X-Agent-Id`` on reads, the first signer on writes), every
  limited route together: its admin override, else ``default_per_minute``.

An admin override (``POST /v1/admin/rate-limit``) bites whether or not
``rate_limit.enabled`` is on: with the global switch off only the overridden keys and
agents are counted (``active`` is then true while any override exists), so the
incident runbook's "limit one noisy agent" step works on a node that limits nobody else.

If the storage cannot be reached the request is let through (fail open).
"""

from __future__ import annotations

import math
import time
from typing import Any, Final

from stemedb.api.guard.counters import Counters, Window
from stemedb.config import RateLimitConfig
from stemedb.errors import RateLimitError

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

    @property
    def active(self) -> bool:
        """Whether any request may be counted: the global switch, or an override."""
        return self.enabled or bool(self.overrides)

    def limit_of(self, scope: str, target: str) -> int:
        return self.overrides.get((scope, target), self.default_per_minute)

    def effective_limit(self, scope: str, target: str) -> int | None:
        """The requests per window that apply to ``scope``/``target`` (None: unlimited,
        the global switch is off and it has no override)."""
        found = self.overrides.get((scope, target))
        if found is not None:
            return found
        return self.default_per_minute if self.enabled else None

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
        self,
        path: str,
        endpoint_limit: int | None,
        key_id: str | None,
        agent: str | None,
        address: str,
    ) -> tuple[tuple[Any, ...], ...]:
        """A request's counters before its handler, in order, as ``key``s: the route's
        (``endpoint_limit``; per caller: the key, else the agent, else ``address``), the
        key's, the agent's. Remembered per caller (at most ``COUNTER_CACHE_SIZE``,
        forgotten when an override changes): most requests build none."""
        cache_key = (path, endpoint_limit, key_id, agent, address)
        found = self._request_counters.get(cache_key)
        if found is not None:
            return found
        counters: list[tuple[Any, ...]] = []
        if not self.enabled:  # only what an admin override limits
            if key_id is not None and ("key", key_id) in self.overrides:
                counters.append(self.key("key", key_id, self.overrides["key", key_id]))
            if agent is not None and ("agent", agent) in self.overrides:
                counters.append(self.key("agent", agent, self.overrides["agent", agent]))
        elif endpoint_limit is not None:
            caller = (
                "key:" + key_id
                if key_id is not None
                else "agent:" + agent
                if agent is not None
                else "addr:" + address
            )
            counters.append(self.key("endpoint", path, endpoint_limit, caller))
        if self.enabled and key_id is not None:
            counters.append(self.key("key", key_id, self.limit_of("key", key_id)))
        if self.enabled and agent is not None:
            counters.append(self.key("agent", agent, self.limit_of("agent", agent)))
        if len(self._request_counters) >= COUNTER_CACHE_SIZE:
            self._request_counters = {}
        found = self._request_counters[cache_key] = tuple(counters)
        return found

    def agent_counters(self, agent: str) -> tuple[tuple[Any, ...], ...]:
        """The ``agent`` counter of a write's signer, if it is limited (remembered as
        ``request_counters``)."""
        return self.request_counters("", None, None, agent, "")

    def key(self, scope: str, target: str, limit: int, extra: str = "") -> tuple[Any, ...]:
        """The counter of ``scope``/``target`` under ``limit`` as a ``MemoryCounter`` key
        (``MemoryCounter.key`` of the same item and ids):
        ``(limit, window seconds, scope, target[, extra])``."""
        if extra:
            return (limit, self.window_seconds, scope, target, extra)
        return (limit, self.window_seconds, scope, target)


def seconds_until(reset_at: float, now: float | None = None) -> int:
    return max(1, math.ceil(reset_at - (time.time() if now is None else now)))


def limited(scope: str, window: Window, window_seconds: int) -> RateLimitError:
    retry = seconds_until(window.reset_at)
    return RateLimitError(
        f"rate limit exceeded ({scope}: {window.limit} requests per {window_seconds} s);"
        f" retry in {retry} s",
        details={
            "scope": scope,
            "limit": window.limit,
            "window_seconds": window_seconds,
            "retry_after_seconds": retry,
        },
    )


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
    "RateLimits",
    "limited",
    "rate_headers",
    "seconds_until",
]
