"""Materialized views of the default lens per (subject, predicate) (ARCHITECTURE §5).

The writer calls ``on_commit`` before it acknowledges a batch, marking every touched
key dirty; a background thread recomputes dirty keys off the request path and stores
the first page of the default-lens answer in the store's ``views`` table. A view is
served only when its key is not dirty and it is younger than ``max_age_seconds``
(decay drifts slowly); a caller may accept an older one with ``max_stale_seconds``,
and then the answer says ``"stale": true``.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Final

import msgspec

from stemedb.errors import error_type_of
from stemedb.query.params import DEFAULT_LIMIT, QueryParams
from stemedb.query.results import QueryResult
from stemedb.store.cache import SubjectPredicate

if TYPE_CHECKING:
    from stemedb.query.service import QueryService

log = logging.getLogger("stemedb.views")

VIEW_MAX_AGE_SECONDS: Final = 3600.0
REFRESH_CHUNK_KEYS: Final = 256

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
        self._dirty: dict[SubjectPredicate, int] = {}
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
            for key in touched:
                self._dirty[key] = lsn
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
        with self._lock:
            dirty = (subject, predicate) in self._dirty
        view = self._service.store.view(subject, predicate)
        if view is None:
            return None
        _, computed_at, blob = view
        age = self._service.engine.clock.time() - computed_at
        if not dirty and age < self._max_age_seconds:
            return _DECODER.decode(blob)
        if max_stale_seconds is not None and age <= max_stale_seconds:
            return msgspec.structs.replace(_DECODER.decode(blob), stale=True)
        return None

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
                if self._dirty.get(key, snapshot + 1) <= snapshot:
                    del self._dirty[key]
        self.refreshed += len(keys)

    def _run(self) -> None:
        while not self._stop:
            self._wake.wait(1.0)
            self._wake.clear()
            while not self._stop:
                with self._lock:
                    keys = list(self._dirty)[:REFRESH_CHUNK_KEYS]
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
