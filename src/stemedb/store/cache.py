"""A bounded in-memory cache of query results, invalidated per (subject, predicate).

The group-commit writer invalidates every key a batch touches *before* it acknowledges
the batch, so a cached answer is never older than an acknowledged write.
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterable

SubjectPredicate = tuple[str, str]
MAX_TRACKED_SCOPES = 100_000


class ResultCache:
    """LRU of ``key -> (value, size_bytes)`` bounded by an approximate byte budget."""

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._items: OrderedDict[Hashable, tuple[object, int, SubjectPredicate | None]] = (
            OrderedDict()
        )
        self._by_key: dict[SubjectPredicate, set[Hashable]] = {}
        self._prefix_entries: set[Hashable] = set()
        self._bytes = 0
        # Generations stop a reader that started before an invalidation from caching
        # what it read: put() refuses when its scope was invalidated after `generation`.
        self.generation = 0
        self._scope_generation: dict[SubjectPredicate, int] = {}
        self._generation_floor = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def size_bytes(self) -> int:
        return self._bytes

    @property
    def max_bytes(self) -> int:
        return self._max_bytes

    def get(self, key: Hashable) -> object | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return item[0]

    def put(
        self,
        key: Hashable,
        value: object,
        scope: SubjectPredicate | None,
        *,
        generation: int,
        size_bytes: int = 0,
    ) -> None:
        """Cache ``value`` read at ``generation``; ``scope`` is the (subject, predicate)
        it depends on, or None when it depends on many (dropped on every write)."""
        if self._max_bytes <= 0:
            return
        size = size_bytes or sys.getsizeof(value)
        with self._lock:
            if scope is None:
                invalidated = self.generation
            else:
                invalidated = self._scope_generation.get(scope, self._generation_floor)
            if invalidated > generation:
                return
            if key in self._items:
                self._drop(key)
            self._items[key] = (value, size, scope)
            self._bytes += size
            if scope is None:
                self._prefix_entries.add(key)
            else:
                self._by_key.setdefault(scope, set()).add(key)
            while self._bytes > self._max_bytes and self._items:
                self._drop(next(iter(self._items)))

    def invalidate(self, scopes: Iterable[SubjectPredicate]) -> None:
        with self._lock:
            self.generation += 1
            if len(self._scope_generation) > MAX_TRACKED_SCOPES:
                self._scope_generation.clear()
                self._generation_floor = self.generation
            for scope in scopes:
                self._scope_generation[scope] = self.generation
                for key in self._by_key.pop(scope, ()):
                    self._drop(key)
            for key in list(self._prefix_entries):
                self._drop(key)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._by_key.clear()
            self._prefix_entries.clear()
            self._bytes = 0

    def _drop(self, key: Hashable) -> None:
        item = self._items.pop(key, None)
        if item is None:
            return
        self._bytes -= item[1]
        scope = item[2]
        if scope is None:
            self._prefix_entries.discard(key)
        else:
            keys = self._by_key.get(scope)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_key[scope]
