"""The query audit log: who asked what, which claims contributed with which weights.

Audit rows are derived data, not part of the WAL: they are buffered in memory and
flushed to ``audit.sqlite`` by a background thread every ``flush_interval_seconds``
(or when the buffer fills), so a read never waits for a write transaction. A crash
loses at most the last interval of audit rows; ``flush()`` runs on clean shutdown.

With a retention (``audit.retention_days``), the same thread deletes the rows of older
queries every ``audit.prune_interval_seconds``, a chunk per transaction, so the file
stops growing under a steady read load (SQLite reuses the freed pages).
"""

from __future__ import annotations

import builtins
import logging
import threading
import time
from collections.abc import Callable
from typing import Final

import msgspec

from stemedb.errors import error_type_of
from stemedb.store.protocol import AuditStore
from stemedb.wire import AuditRecord, Contribution

log = logging.getLogger("stemedb.audit")

FLUSH_INTERVAL_SECONDS: Final = 0.5
MAX_BUFFERED_RECORDS: Final = 50_000
PRUNE_CHUNK_QUERIES: Final = 2_000
PRUNE_INTERVAL_SECONDS: Final = 60.0


class _Contributions(msgspec.Struct):
    """The part of an ``AuditRecord`` that pruning needs (its links to claims)."""

    contributions: list[Contribution]


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(AuditRecord)
_CONTRIBUTIONS = msgspec.msgpack.Decoder(_Contributions)


class AuditLog:
    """``retention_seconds``: prune the rows of queries older than this (None: keep
    every row; on a node with several HTTP processes only the first one prunes)."""

    def __init__(
        self,
        store: AuditStore,
        *,
        flush_interval_seconds: float = FLUSH_INTERVAL_SECONDS,
        retention_seconds: float | None = None,
        prune_interval_seconds: float = PRUNE_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.time,
    ):
        self._store = store
        self._retention = retention_seconds
        self._prune_interval = prune_interval_seconds
        self._clock = clock
        self.pruned = 0
        self._buffer: list[AuditRecord] = []
        self._recent: dict[str, AuditRecord] = {}
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = False
        self._interval = flush_interval_seconds
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name="stemedb-audit", daemon=True)
        self._thread.start()

    def record(self, rec: AuditRecord) -> None:
        with self._lock:
            if len(self._buffer) >= MAX_BUFFERED_RECORDS:
                self.dropped += 1
                return
            self._buffer.append(rec)
            self._recent[rec.query_id] = rec

    def get(self, query_id: str) -> AuditRecord | None:
        with self._lock:
            rec = self._recent.get(query_id)
        if rec is not None:
            return rec
        self.flush()
        blob = self._store.audit_query(query_id)
        return None if blob is None else _DECODER.decode(blob)

    def list(
        self, *, agent_id: str | None, since: float | None, until: float | None, limit: int
    ) -> builtins.list[AuditRecord]:
        self.flush()
        blobs = self._store.audit_queries(agent=agent_id, since=since, until=until, limit=limit)
        return [_DECODER.decode(b) for b in blobs]

    def queries_using(self, assertion_id: str, limit: int = 50) -> builtins.list[str]:
        self.flush()
        return self._store.audit_queries_using(assertion_id, limit)

    def flush(self) -> None:
        with self._flush_lock:
            self._flush()

    def _flush(self) -> None:
        with self._lock:
            batch, self._buffer = self._buffer, []
            self._recent = {}
        if not batch:
            return
        rows = [
            (
                r.query_id,
                r.at,
                r.agent_id,
                r.endpoint,
                r.lens,
                r.subject,
                r.predicate,
                r.winner,
                r.duration_ms,
                _ENCODER.encode(r),
            )
            for r in batch
        ]
        links = [(c.assertion_id, r.query_id) for r in batch for c in r.contributions]
        try:
            self._store.write_audit(rows, links)
        except Exception as exc:
            log.exception(
                "Error: %s: audit flush failed; %d audit records lost: %s",
                error_type_of(exc),
                len(batch),
                exc,
            )
            self.dropped += len(batch)

    def prune(self) -> int:
        """Delete the rows of queries asked more than the retention ago, a chunk per
        transaction, flushing the buffer before each chunk so it never fills; returns how
        many queries went."""
        if self._retention is None:
            return 0
        cutoff = self._clock() - self._retention
        total = 0
        while not self._stop:
            with self._flush_lock:
                self._flush()
                rows = self._store.expired_audit(cutoff, PRUNE_CHUNK_QUERIES)
                claims = [
                    (c.assertion_id, seq)
                    for seq, blob in rows
                    for c in _CONTRIBUTIONS.decode(blob).contributions
                ]
                self._store.delete_audit([seq for seq, _ in rows], claims)
            total += len(rows)
            self.pruned += len(rows)
            if len(rows) < PRUNE_CHUNK_QUERIES:
                break
        if total:
            log.info(
                "audit: pruned %d queries older than %.6g days", total, self._retention / 86400
            )
        return total

    def _run(self) -> None:
        next_prune = time.monotonic()  # a first pass at start-up
        while not self._stop:
            self._wake.wait(self._interval)
            self._wake.clear()
            self.flush()
            if self._retention is not None and time.monotonic() >= next_prune:
                try:
                    self.prune()
                except Exception as exc:  # noqa: BLE001 - the audit thread outlives a failed prune
                    log.error("Error: %s: audit prune failed: %s", error_type_of(exc), exc)
                next_prune = time.monotonic() + self._prune_interval

    def close(self) -> None:
        self._stop = True
        self._wake.set()
        self._thread.join()
        self.flush()
