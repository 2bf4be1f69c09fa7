"""What the admin views show with several HTTP workers (``api.workers``): the node.

The slow-query log, the per-agent circuit breakers and the cache figures live in each
worker. The admin endpoints gather every worker's over the control sockets
(``api.workers``): slow queries merged newest first, each agent's breaker as the most
open any worker has (a breaker opened by failures opens in the worker that saw them),
cache figures added up. A breaker tripped or reset by an admin is tripped or reset in
every worker (in cluster mode through the cluster's table instead, which every worker
of every node reloads). With one worker each function answers from this process alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import chain
from typing import Final

import msgspec

from stemedb.api.state import ApiState
from stemedb.wire import BreakerView, SlowQuery

_SEVERITY: Final = {"closed": 0, "half_open": 1, "open": 2}
_SLOW_QUERIES: Final = msgspec.json.Decoder(list[SlowQuery])
_BREAKERS: Final = msgspec.json.Decoder(list[BreakerView])
_BREAKER: Final = msgspec.json.Decoder(BreakerView)


class _Trip(msgspec.Struct, frozen=True):
    agent: str
    reason: str | None


class CacheFigures(msgspec.Struct, kw_only=True):
    """The per-worker part of ``GET /v1/admin/storage/stats``."""

    cache_bytes: int
    cache_max_bytes: int
    cache_hits: int
    cache_misses: int
    fallback_entries: int
    fallback_served: int
    views_pending: int


_CACHES: Final = msgspec.json.Decoder(CacheFigures)


def cache_figures(state: ApiState) -> CacheFigures:
    cache = state.service.engine.store.cache
    return CacheFigures(
        cache_bytes=cache.size_bytes,
        cache_max_bytes=cache.max_bytes,
        cache_hits=cache.hits,
        cache_misses=cache.misses,
        fallback_entries=len(state.fallback),
        fallback_served=state.fallback.served,
        views_pending=state.service.views.pending(),
    )


def answer_workers(state: ApiState) -> None:
    """Add this worker's answers to the control commands the functions below send."""
    breakers = state.access.breakers
    encode = msgspec.json.encode

    async def slow_queries(_: bytes) -> bytes:
        return encode(state.slow_queries.newest_first())

    async def all_breakers(_: bytes) -> bytes:
        return encode(breakers.list())

    async def breaker(agent: bytes) -> bytes:
        return encode(breakers.view(agent.decode()))

    async def trip(argument: bytes) -> bytes:
        body = msgspec.json.decode(argument, type=_Trip)
        return encode(breakers.trip(body.agent, body.reason))

    async def reset(agent: bytes) -> bytes:
        return encode(breakers.reset(agent.decode()))

    async def caches(_: bytes) -> bytes:
        return encode(cache_figures(state))

    state.control.update(
        {
            b"slow_queries": slow_queries,
            b"breakers": all_breakers,
            b"breaker": breaker,
            b"trip": trip,
            b"reset": reset,
            b"caches": caches,
        }
    )


async def slow_queries(state: ApiState) -> list[SlowQuery]:
    mine = state.slow_queries.newest_first()
    others = [_SLOW_QUERIES.decode(a) for a in await state.ask_workers(b"slow_queries")]
    if not others:
        return mine
    merged = sorted(chain(mine, *others), key=lambda q: q.at, reverse=True)
    return merged[: state.config.api.slow_query_log_entries]


def _most_open(views: Iterable[BreakerView]) -> BreakerView:
    return max(views, key=lambda v: (_SEVERITY[v.state], v.consecutive_failures))


async def breakers(state: ApiState) -> list[BreakerView]:
    mine = state.access.breakers.list()
    answers = await state.ask_workers(b"breakers")
    if not answers:
        return mine
    by_agent: dict[str, list[BreakerView]] = {}
    for view in chain(mine, *(_BREAKERS.decode(a) for a in answers)):
        by_agent.setdefault(view.agent_id, []).append(view)
    return [_most_open(views) for _, views in sorted(by_agent.items())]


async def breaker(state: ApiState, agent: str) -> BreakerView:
    mine = state.access.breakers.view(agent)
    others = [_BREAKER.decode(a) for a in await state.ask_workers(b"breaker", agent.encode())]
    return _most_open([mine, *others])


async def trip(state: ApiState, agent: str, reason: str | None) -> BreakerView:
    breakers = state.access.breakers
    view = breakers.trip(agent, reason)
    if state.access.shared is not None:  # cluster mode: every process reloads the row
        await breakers.published()
    else:
        await state.ask_workers(b"trip", msgspec.json.encode(_Trip(agent, reason)))
    return view


async def reset(state: ApiState, agent: str) -> BreakerView:
    breakers = state.access.breakers
    view = breakers.reset(agent)
    if state.access.shared is not None:
        await breakers.published()
    else:
        await state.ask_workers(b"reset", agent.encode())
    return view


async def node_caches(state: ApiState, mine: CacheFigures) -> CacheFigures:
    """``mine`` plus every other worker's cache figures."""
    for answer in await state.ask_workers(b"caches"):
        other = _CACHES.decode(answer)
        for field in CacheFigures.__struct_fields__:
            setattr(mine, field, getattr(mine, field) + getattr(other, field))
    return mine
