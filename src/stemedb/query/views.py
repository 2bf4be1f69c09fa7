"""Materialized views of the default lens per (subject, predicate) (ARCHITECTURE §5).

The writer calls ``on_commit`` before it acknowledges a batch, marking every touched
key dirty; a background thread recomputes dirty keys off the request path and stores
the first page of the default-lens answer in the store's ``views`` table. A view is
served only when its key is not dirty and it is younger than ``max_age_seconds``
(decay drifts slowly); a caller may accept an older one with ``max_stale_seconds``,
and then the answer says ``"stale": true``.

Keys that readers ask for (``lookup``, the last ``WANTED_KEYS`` of them) are refreshed
at once. Every other touched key is *backfill*: refreshed by the same thread only once
no commit has come for ``BACKFILL_QUIET_SECONDS``, so under a steady write load view
maintenance for keys nobody reads does not compete with the writes for the GIL and the
store's write lock. If backfill falls more than
``MAX_BACKFILL_KEYS`` behind, it is dropped and every view computed before that LSN
counts as dirty (``_valid_from``): a view is never served fresh for a key whose
invalidation was forgotten.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
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
WANTED_KEYS: Final = 100_000
MAX_BACKFILL_KEYS: Final = 200_000
BACKFILL_QUIET_SECONDS: Final = 0.2

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
        self._wanted: dict[SubjectPredicate, None] = {}  # insertion order ~ LRU
        self._dirty: dict[SubjectPredicate, int] = {}  # wanted keys: refreshed at once
        self._backfill: dict[SubjectPredicate, int] = {}  # the rest: refreshed slowly
        self._valid_from = 0  # views computed before this LSN are dirty
        self._last_commit = 0.0  # time.monotonic() of the last on_commit
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
        self._last_commit = time.monotonic()
        with self._lock:
            wanted, dirty, backfill = self._wanted, self._dirty, self._backfill
            for key in touched:
                if key in wanted:
                    dirty[key] = lsn
                else:
                    backfill[key] = lsn
            if len(backfill) > MAX_BACKFILL_KEYS:
                backfill.clear()
                self._valid_from = lsn
        self._wake.set()

    def pending(self) -> int:
        with self._lock:
            return len(self._dirty) + len(self._backfill)

    def lookup(
        self, subject: str, predicate: str, limit: int, max_stale_seconds: float | None
    ) -> QueryResult | None:
        """The stored default-lens answer, if fresh enough; else None."""
        if not self._enabled or limit != DEFAULT_LIMIT:
            return None
        key = (subject, predicate)
        with self._lock:
            self._want(key)
            dirty = key in self._dirty
            valid_from = self._valid_from
        view = self._service.store.view(subject, predicate)
        if view is None:
            return None
        lsn, computed_at, blob = view
        age = self._service.engine.clock.time() - computed_at
        if not dirty and lsn >= valid_from and age < self._max_age_seconds:
            return _DECODER.decode(blob)
        if max_stale_seconds is not None and age <= max_stale_seconds:
            return msgspec.structs.replace(_DECODER.decode(blob), stale=True)
        return None

    def _want(self, key: SubjectPredicate) -> None:
        """Note a reader's key (lock held): from now on it is refreshed at once."""
        wanted = self._wanted
        if key in wanted:
            return
        if len(wanted) >= WANTED_KEYS:
            del wanted[next(iter(wanted))]
        wanted[key] = None
        lsn = self._backfill.pop(key, None)
        if lsn is not None:
            self._dirty[key] = lsn
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
                for pending in (self._dirty, self._backfill):
                    if pending.get(key, snapshot + 1) <= snapshot:
                        del pending[key]
        self.refreshed += len(keys)

    def next_chunk(self) -> tuple[list[SubjectPredicate], bool]:
        """The next keys to refresh and whether they are backfill."""
        with self._lock:
            if self._dirty:
                return list(itertools.islice(self._dirty, REFRESH_CHUNK_KEYS)), False
            return list(itertools.islice(self._backfill, REFRESH_CHUNK_KEYS)), True

    def _run(self) -> None:
        while not self._stop:
            self._wake.wait(1.0)
            self._wake.clear()
            while not self._stop:
                keys, backfill = self.next_chunk()
                if not keys:
                    break
                if backfill:  # only while writes are quiet; a reader's key wakes us
                    quiet = time.monotonic() - self._last_commit
                    if quiet < BACKFILL_QUIET_SECONDS:
                        if self._wake.wait(BACKFILL_QUIET_SECONDS - quiet):
                            self._wake.clear()
                        continue
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
