"""Materialized views of the default lens per (subject, predicate) (ARCHITECTURE §5).

A view is the stored first page of the default-lens answer for one key (the store's
``views`` table), kept for the keys that readers ask for:

- ``lookup`` notes the key as *wanted* (the last ``WANTED_KEYS`` of them). A view is
  served only when this process computed it (a view from before may have missed a
  write: the dirty marks live in memory), its key is not dirty and it is younger than
  ``max_age_seconds`` (decay drifts slowly); a caller may accept an older or dirty one
  with ``max_stale_seconds``, and the answer then says ``"stale": true``. A lookup that
  cannot be served marks the key dirty. A served view is kept, decoded, in the store's
  result cache, which the writer invalidates per key before it acknowledges a write.
- The writer calls ``on_commit`` before it acknowledges a batch: touched wanted keys
  become dirty; a background thread recomputes dirty keys off the request path.
- Touched keys nobody has asked for are left alone (recomputing them cost as much CPU
  as the writes under a write load): their views, if any, were not computed by this
  process and are only ever served as stale.
"""

from __future__ import annotations

import itertools
import logging
import threading
from typing import TYPE_CHECKING, Final, cast

import msgspec

from stemedb.errors import error_type_of
from stemedb.query.params import DEFAULT_LIMIT, QueryParams
from stemedb.store.cache import SubjectPredicate
from stemedb.wire import QueryResult

if TYPE_CHECKING:
    from stemedb.query.service import QueryService

log = logging.getLogger("stemedb.views")

VIEW_MAX_AGE_SECONDS: Final = 3600.0
REFRESH_CHUNK_KEYS: Final = 256
WANTED_KEYS: Final = 100_000

_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(QueryResult)


class ViewKeeper:
    def __init__(
        self,
        service: QueryService,
        *,
        enabled: bool = True,
        max_age_seconds: float = VIEW_MAX_AGE_SECONDS,
    ) -> None:
        self._service = service
        self._enabled = enabled
        self._max_age_seconds = max_age_seconds
        # wanted key -> whether its view was computed by this process (insertion ~ LRU)
        self._wanted: dict[SubjectPredicate, bool] = {}
        self._dirty: dict[SubjectPredicate, int] = {}  # wanted keys to recompute
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = False
        self.refreshed = 0
        self._thread: threading.Thread | None = None
        if enabled:
            self._thread = threading.Thread(target=self._run, name="stemedb-views", daemon=True)
            self._thread.start()

    def on_commit(self, lsn: int, touched: set[SubjectPredicate]) -> None:
        if not self._enabled or not touched:
            return
        with self._lock:
            wanted, dirty = self._wanted, self._dirty
            marked = False
            for key in touched:
                if key in wanted:
                    dirty[key] = lsn
                    marked = True
        if marked:
            self._wake.set()

    def pending(self) -> int:
        with self._lock:
            return len(self._dirty)

    def lookup(
        self, subject: str, predicate: str, limit: int, max_stale_seconds: float | None
    ) -> QueryResult | None:
        """The stored default-lens answer, if fresh enough; else None."""
        if not self._enabled or limit != DEFAULT_LIMIT:
            return None
        key = (subject, predicate)
        cache = self._service.store.cache
        now = self._service.engine.clock.time()
        hit = cache.get((self, key))  # dropped by the writer when the key is touched
        if isinstance(hit, tuple) and now - hit[0] < self._max_age_seconds:
            return cast(QueryResult, hit[1])
        generation = cache.generation
        with self._lock:
            ours = self._want(key)
            dirty = key in self._dirty
        view = self._service.store.view(subject, predicate)
        age = 0.0
        if view is not None:
            _, computed_at, blob = view
            age = now - computed_at
            if ours and not dirty and age < self._max_age_seconds:
                result = _DECODER.decode(blob)
                size = 1024 + 700 * len(result.claims)
                cache.put(
                    (self, key),
                    (computed_at, result),
                    key,
                    generation=generation,
                    size_bytes=size,
                )
                return result
        if not dirty:
            self._mark_dirty(key)
        if view is not None and max_stale_seconds is not None and age <= max_stale_seconds:
            return msgspec.structs.replace(_DECODER.decode(blob), stale=True)
        return None

    def _want(self, key: SubjectPredicate, computed: bool = False) -> bool:
        """Note a wanted key (lock held): from now on its view is kept up to date.
        Return whether this process computed its view."""
        wanted = self._wanted
        ours = wanted.get(key)
        if ours is None:
            if len(wanted) >= WANTED_KEYS:
                del wanted[next(iter(wanted))]
            ours = False
        if computed and not ours:
            ours = True
        wanted[key] = ours
        return ours

    def _mark_dirty(self, key: SubjectPredicate) -> None:
        lsn = self._service.engine.applied_lsn
        with self._lock:
            self._dirty.setdefault(key, lsn)
        self._wake.set()

    def refresh(self, keys: list[SubjectPredicate]) -> None:
        service = self._service
        lens = service.default_lens
        snapshot = service.engine.applied_lsn
        now = service.engine.clock.time()
        rows = []
        for subject, predicate in keys:
            params = QueryParams(subject=subject, predicate=predicate)
            resolved = service.resolve_key(subject, predicate, params, lens, snapshot, now)
            digest = service.digest(params, lens)
            page = service.page(subject, predicate, lens, resolved, 0, DEFAULT_LIMIT, digest)
            rows.append((subject, predicate, snapshot, now, _ENCODER.encode(page)))
        service.store.put_views(rows)
        with self._lock:
            for key in keys:
                self._want(key, computed=True)
                if self._dirty.get(key, snapshot + 1) <= snapshot:
                    del self._dirty[key]
        self.refreshed += len(keys)

    def _run(self) -> None:
        while not self._stop:
            self._wake.wait(1.0)
            self._wake.clear()
            while not self._stop:
                with self._lock:
                    keys = list(itertools.islice(self._dirty, REFRESH_CHUNK_KEYS))
                if not keys:
                    break
                try:
                    self.refresh(keys)
                except Exception as exc:
                    log.exception(
                        "Error: %s: view refresh failed; will retry: %s", error_type_of(exc), exc
                    )
                    break

    def close(self) -> None:
        self._stop = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
