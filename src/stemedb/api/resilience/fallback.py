"""The stale-answer fallback of ``[fallback]``: when a storage read fails, answer from
what was answered before, marked ``"stale": true``.

``StaleAnswers`` keeps the last good answer of each read (keyed by the decoded query:
endpoint + ``QueryParams``), bounded by ``fallback.max_entries`` (least recently
answered dropped first). It is separate from the store's result cache on purpose: the
result cache drops an entry as soon as a write touches its (subject, predicate), and
a slightly old answer is exactly what the fallback may serve. When a read fails with
a ``StorageError`` (including an open storage circuit breaker), the route answers

1. the last good answer, if it is at most ``fallback.max_stale_seconds`` old (or the
   request's own ``max_stale_seconds``, whichever is smaller);
2. else, for a plain default-lens query, the materialized view of that (subject,
   predicate), if it is at most that old and can still be read;
3. else the original 503 ``StorageError``.

A fallback answer gets a fresh ``query_id`` and is not written to the query audit log
(the storage is failing).
Hits and misses are exposed as ``stemedb_cache_hits_total{cache="fallback"}``.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Final

import msgspec

from stemedb.config import FallbackConfig
from stemedb.query.service import new_query_id
from stemedb.wire import QueryResult

FALLBACK_CACHE: Final = "fallback"


class StaleAnswers:
    def __init__(
        self, config: FallbackConfig, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.enabled = config.enable_cache_fallback and config.max_entries > 0
        self.max_stale_seconds = config.max_stale_seconds
        self.max_entries = config.max_entries
        self._clock = clock
        self._items: OrderedDict[Hashable, tuple[float, QueryResult]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.served = 0

    def __len__(self) -> int:
        return len(self._items)

    def remember(self, key: Hashable, answer: QueryResult) -> None:
        if not self.enabled:
            return
        now = self._clock()
        with self._lock:
            self._items[key] = (now, answer)
            self._items.move_to_end(key)
            if len(self._items) > self.max_entries:
                self._items.popitem(last=False)

    def max_age(self, requested: float | None) -> float:
        if requested is None:
            return self.max_stale_seconds
        return min(requested, self.max_stale_seconds)

    def recall(self, key: Hashable, requested_max_stale: float | None = None) -> QueryResult | None:
        """The remembered answer, marked stale, if young enough; else None."""
        if not self.enabled:
            return None
        with self._lock:
            item = self._items.get(key)
            if item is None or self._clock() - item[0] > self.max_age(requested_max_stale):
                self.misses += 1
                return None
            self.hits += 1
            self.served += 1
        return msgspec.structs.replace(item[1], stale=True, query_id=new_query_id())

    def counted_view(self, answer: QueryResult | None) -> QueryResult | None:
        """Count a view-based fallback answer (or its absence) and mark it stale."""
        with self._lock:
            if answer is None:
                self.misses += 1
                return None
            self.hits += 1
            self.served += 1
        return msgspec.structs.replace(answer, stale=True, query_id=new_query_id())
