"""Per-agent token quotas (API.md "Rate limits and quotas"): ``quota.tokens_per_hour``.

Costs: an assertion 10 (a batch: 10 per assertion), a vote or co-signature 1, a query
5 + 1 per lens (``POST /v1/query``: 5 + 1 per query in it; the skeptic view counts as
one lens), other writes 10, other reads 1; plus 1 per whole KiB of request body.

The agent is ``X-Agent-Id`` on reads and the first signer on writes; requests without
an agent have no quota. A request is admitted while the agent has tokens left and is
charged its full cost as soon as that cost is known (``api.guard.gate``; with
``memory://``: a ``GET`` before its handler, a write when its signer is admitted,
``POST /v1/query`` when it is answered; a shared storage charges every request on its
answer), so the balance can overshoot by about one request. The window is a fixed
hour (``quota.window_seconds``) in the rate-limit storage.
"""

from __future__ import annotations

import math
from typing import Any, Final, NamedTuple

from stemedb.api.guard.counters import Counters, Window
from stemedb.api.guard.ratelimit import seconds_until
from stemedb.config import QuotaConfig
from stemedb.errors import QuotaError

KIB: Final = 1024


class Cost(NamedTuple):
    base: int
    per_item: int


ASSERT_COST: Final = Cost(0, 10)
VOTE_COST: Final = Cost(0, 1)
QUERY_COST: Final = Cost(5, 1)
OTHER_WRITE_COST: Final = Cost(0, 10)
OTHER_READ_COST: Final = Cost(1, 0)

COSTS: Final[dict[tuple[str, str], Cost]] = {
    ("POST", "/v1/assert"): ASSERT_COST,
    ("POST", "/v1/assert/batch"): ASSERT_COST,
    ("POST", "/v1/vote"): VOTE_COST,
    ("POST", "/v1/assertions/{id}/signatures"): VOTE_COST,
    ("GET", "/v1/query"): QUERY_COST,
    ("POST", "/v1/query"): QUERY_COST,
    ("GET", "/v1/skeptic"): QUERY_COST,
}


def cost_of(method: str, path: str, *, write: bool) -> Cost:
    return COSTS.get((method, path), OTHER_WRITE_COST if write else OTHER_READ_COST)


def request_cost(cost: Cost, items: int, body_bytes: int) -> int:
    """Tokens one request costs: its base, its items, 1 per whole KiB of body."""
    return cost.base + cost.per_item * max(1, items) + body_bytes // KIB


class QuotaMeter:
    def __init__(self, config: QuotaConfig, counters: Counters) -> None:
        self.enabled = config.enabled
        self.tokens_per_hour = config.tokens_per_hour
        self.window_seconds = max(1, config.window_seconds)
        self.counters = counters
        self._item = counters.item(self.tokens_per_hour, self.window_seconds)

    async def status(self, agent: str) -> Window | None:
        return await self.counters.peek(self._item, ("quota", agent))

    def key(self, agent: str) -> tuple[Any, ...]:
        """The agent's counter, the one ``status`` reads (``MemoryCounter.key``): the route
        guard builds it once per request, then counts it in either storage (``count``,
        then ``MemoryCounter.add`` or ``Counters.charge`` on the answer)."""
        return (self.tokens_per_hour, self.window_seconds, "quota", agent)


def exhausted(window: Window) -> QuotaError:
    retry = seconds_until(window.reset_at)
    return QuotaError(
        f"the agent's quota of {window.limit} tokens per hour is used up; retry in {retry} s",
        details={"limit": window.limit, "retry_after_seconds": retry},
    )


_WindowHeaders = tuple[tuple[bytes, bytes], tuple[bytes, bytes]]
_WINDOW_HEADERS: dict[tuple[int, float], _WindowHeaders] = {}


def quota_headers(window: Window) -> list[tuple[bytes, bytes]]:
    """``X-Quota-Limit``, ``X-Quota-Remaining``, ``X-Quota-Reset`` (the first and the
    last cached per window: they stay the same for its hour)."""
    limit, remaining, reset_at = window.limit, window.remaining, window.reset_at
    fixed = _WINDOW_HEADERS.get((limit, reset_at))
    if fixed is None:
        if len(_WINDOW_HEADERS) >= 1024:
            _WINDOW_HEADERS.clear()
        fixed = _WINDOW_HEADERS[(limit, reset_at)] = (
            (b"x-quota-limit", b"%d" % limit),
            (b"x-quota-reset", b"%d" % math.ceil(reset_at)),
        )
    return [fixed[0], (b"x-quota-remaining", b"%d" % (remaining if remaining > 0 else 0)), fixed[1]]


__all__ = [
    "COSTS",
    "Cost",
    "QuotaMeter",
    "cost_of",
    "exhausted",
    "quota_headers",
    "request_cost",
]
