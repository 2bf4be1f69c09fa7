"""What the store keeps in memory beside the tables, and how it learns about commits of
other nodes: the keys and the state a range of LSNs changed, read from the tables."""

from __future__ import annotations

import threading
from typing import Final

from stemedb.model.kinds import RecordKind
from stemedb.store.cache import SubjectPredicate
from stemedb.store.postgres import records
from stemedb.store.postgres.connection import Conn
from stemedb.store.protocol import StoreDelta

# Every (subject, predicate) a record with lsn in (%(start)s, %(end)s] touched, by the
# rules of ``apply.Batch`` (a superset is harmless: it only drops cached answers).
TOUCHED_SQL: Final = """
SELECT a.subject, a.predicate FROM assertions a
 WHERE a.lsn > %(start)s AND a.lsn <= %(end)s
UNION
SELECT a.subject, a.predicate FROM signatures s JOIN assertions a ON a.lsn = s.assertion_lsn
 WHERE s.lsn > %(start)s AND s.lsn <= %(end)s AND s.lsn <> s.assertion_lsn
UNION
SELECT a.subject, a.predicate FROM votes v JOIN assertions a ON a.lsn = v.assertion_lsn
 WHERE v.lsn > %(start)s AND v.lsn <= %(end)s
UNION
SELECT a.subject, a.predicate FROM epoch_supersedes es
 JOIN epochs e ON e.id = es.new AND e.kind = 'replace' JOIN assertions a ON a.epoch = es.old
 WHERE es.lsn > %(start)s AND es.lsn <= %(end)s
UNION
SELECT a.subject, a.predicate FROM supersessions su JOIN assertions a ON a.id = su.old
 WHERE su.lsn > %(start)s AND su.lsn <= %(end)s
UNION
SELECT a.subject, a.predicate FROM sources so JOIN assertions a ON a.source_hash = so.source_hash
 WHERE so.lsn > %(start)s AND so.lsn <= %(end)s AND so.source_class IS NOT NULL
UNION
SELECT a.subject, a.predicate FROM sources so JOIN assertions a ON a.tainted_by = so.source_hash
 WHERE so.retraction_lsn > %(start)s AND so.retraction_lsn <= %(end)s
UNION
SELECT a.subject, a.predicate FROM quarantine q JOIN assertions a ON a.lsn = q.assertion_lsn
 WHERE (q.lsn > %(start)s AND q.lsn <= %(end)s)
    OR (q.review_lsn > %(start)s AND q.review_lsn <= %(end)s)
"""
KINDS_SQL: Final = (
    "SELECT DISTINCT kind FROM changes WHERE lsn > %(start)s AND lsn <= %(end)s"
    f" AND kind IN ({int(RecordKind.EPOCH)}, {int(RecordKind.RETRACTION)},"
    f" {int(RecordKind.TRUST_OUTCOME)})"
)
RETRACTED_SQL: Final = (
    "SELECT source_hash, retraction_lsn FROM sources WHERE retraction_lsn IS NOT NULL"
)
REPLACED_SQL: Final = (
    "SELECT es.old, min(es.lsn) FROM epoch_supersedes es"
    " JOIN epochs e ON e.id = es.new WHERE e.kind = 'replace' GROUP BY es.old"
)


class MemoryState:
    """Trust scores, retracted sources and replaced epochs (read on every query).

    The dicts are replaced, never changed in place, so a reader iterating one while the
    watcher or a batch updates them sees one consistent version."""

    def __init__(self) -> None:
        self.trust: dict[str, tuple[float, float]] = {}  # agent -> (score, updated_at)
        self.retracted: dict[str, int] = {}  # source_hash -> LSN of its retraction
        self.superseded_epochs: dict[str, int] = {}  # epoch id -> LSN of the first replace
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self.trust, self.retracted, self.superseded_epochs = {}, {}, {}

    def load(self, conn: Conn) -> None:
        """Everything from the tables (on open, after a reset)."""
        trust = records.trust_table(conn)
        retracted = {bytes(h).hex(): int(lsn) for h, lsn in conn.execute(RETRACTED_SQL)}
        epochs = {bytes(old).hex(): int(lsn) for old, lsn in conn.execute(REPLACED_SQL)}
        with self._lock:
            self.trust, self.retracted, self.superseded_epochs = trust, retracted, epochs

    def absorb(self, delta: StoreDelta) -> None:
        """A batch this store committed (the first retraction and replacement count)."""
        with self._lock:
            if delta.trust:
                self.trust = {**self.trust, **delta.trust}
            if delta.retracted:
                self.retracted = {**delta.retracted, **self.retracted}
            if delta.epochs:
                self.superseded_epochs = {**delta.epochs, **self.superseded_epochs}

    def merge(
        self,
        trust: dict[str, tuple[float, float]] | None,
        retracted: dict[str, int],
        epochs: dict[str, int],
    ) -> None:
        with self._lock:
            if trust is not None:
                self.trust = trust
            if retracted:
                self.retracted = {**retracted, **self.retracted}
            if epochs:
                self.superseded_epochs = {**epochs, **self.superseded_epochs}


def touched_between(conn: Conn, memory: MemoryState, start: int, end: int) -> set[SubjectPredicate]:
    """The keys the commits with LSN in (``start``, ``end``] touched, after bringing
    ``memory`` up to them."""
    bounds = {"start": start, "end": end}
    kinds = {int(k) for (k,) in conn.execute(KINDS_SQL, bounds)}
    trust = records.trust_table(conn) if RecordKind.TRUST_OUTCOME in kinds else None
    retracted: dict[str, int] = {}
    if RecordKind.RETRACTION in kinds:
        retracted = {
            bytes(h).hex(): int(lsn)
            for h, lsn in conn.execute(
                RETRACTED_SQL + " AND retraction_lsn > %(start)s AND retraction_lsn <= %(end)s",
                bounds,
            )
        }
    epochs: dict[str, int] = {}
    if RecordKind.EPOCH in kinds:
        epochs = {bytes(old).hex(): int(lsn) for old, lsn in conn.execute(REPLACED_SQL)}
    memory.merge(trust, retracted, epochs)
    return {(s, p) for s, p in conn.execute(TOUCHED_SQL, bounds)}
