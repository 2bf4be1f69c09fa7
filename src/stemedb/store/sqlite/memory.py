"""What the store keeps in memory beside the tables: trust scores, retracted sources and
replaced epochs (read on every query), loaded on open and kept up by every batch."""

from __future__ import annotations

import apsw

from stemedb.store.protocol import StoreDelta


class MemoryState:
    def __init__(self) -> None:
        self.trust: dict[str, tuple[float, float]] = {}  # agent -> (score, updated_at)
        self.retracted: dict[str, int] = {}  # source_hash -> LSN of its retraction
        self.superseded_epochs: dict[str, int] = {}  # epoch id -> LSN of the first replace

    def load(self, conn: apsw.Connection) -> None:
        """Read the state from the tables (on open and after a reset)."""
        self.trust = {
            agent.hex(): (score, updated)
            for agent, score, updated in conn.execute("SELECT agent, score, updated_at FROM trust")
        }
        self.retracted = {
            h.hex(): lsn
            for h, lsn in conn.execute(
                "SELECT source_hash, retraction_lsn FROM sources WHERE retraction_lsn IS NOT NULL"
            )
        }
        self.superseded_epochs = {
            old.hex(): lsn
            for old, lsn in conn.execute(
                "SELECT es.old, min(es.lsn) FROM epoch_supersedes es"
                " JOIN epochs e ON e.id = es.new WHERE e.kind = 'replace' GROUP BY es.old"
            )
        }

    def absorb(self, delta: StoreDelta) -> None:
        """Bring the state up to a batch applied to the tables."""
        self.trust.update(delta.trust)
        self.retracted.update(delta.retracted)
        for epoch_id, lsn in delta.epochs.items():
            self.superseded_epochs.setdefault(epoch_id, lsn)
