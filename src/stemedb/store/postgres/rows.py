"""How the PostgreSQL store keeps records (as the embedded store does): 32-byte bytea
for ids and agent keys (hex above the store), msgpack bytea for records; and the one
definition of an assertion's rows, copied into the tables with ``COPY``."""

from __future__ import annotations

from typing import Any, Final

from stemedb.model.kinds import Entry
from stemedb.model.records import DEFAULT_SOURCE_CLASS, Assertion
from stemedb.store.claim_keys import value_key
from stemedb.store.sqlite.blobs import RECORD_ENCODER

ASSERTION_COLUMNS: Final = (
    # (column, PostgreSQL type for binary COPY), in the order ``AssertionRows.add`` binds
    ("lsn", "bigint"),
    ("id", "bytea"),
    ("subject", "text"),
    ("predicate", "text"),
    ("value_key", "text"),
    ("confidence", "float8"),
    ("source_hash", "bytea"),
    ("source_class_raw", "text"),
    ("source_class", "text"),
    ("epoch", "bytea"),
    ("parent", "bytea"),
    ("lifecycle", "text"),
    ("valid_from", "bigint"),
    ("valid_to", "bigint"),
    ("timestamp", "bigint"),
    ("tainted_by", "bytea"),
    ("superseded_lsn", "bigint"),
    ("signers", "bytea"),
    ("vote_weight", "float8"),
    ("record", "bytea"),
)
SIGNATURE_COLUMNS: Final = (
    ("assertion_lsn", "bigint"),
    ("agent", "bytea"),
    ("signature", "bytea"),
    ("signed_at", "bigint"),
    ("lsn", "bigint"),
)
CHANGE_COLUMNS: Final = (
    ("lsn", "bigint"),
    ("kind", "int2"),
    ("ref", "bytea"),
    ("committed_at", "float8"),
    ("record", "bytea"),
)


def copy_sql(table: str, columns: tuple[tuple[str, str], ...]) -> str:
    return f"COPY {table} ({', '.join(n for n, _ in columns)}) FROM STDIN (FORMAT BINARY)"


def change_row(entry: Entry, record: bytes | None) -> tuple[Any, ...]:
    return (entry.lsn, int(entry.kind), bytes.fromhex(entry.record_id), entry.committed_at, record)


class AssertionRows:
    """The ``assertions``, ``signatures`` and ``changes`` rows of assertions, collected
    until ``flush``: call it before anything reads or updates the tables."""

    __slots__ = ("assertions", "changes", "signatures")

    def __init__(self) -> None:
        self.assertions: list[tuple[Any, ...]] = []
        self.signatures: list[tuple[Any, ...]] = []
        self.changes: list[tuple[Any, ...]] = []

    def __bool__(self) -> bool:
        return bool(self.assertions)

    def add(
        self,
        entry: Entry,
        a: Assertion,
        source_class: str | None,
        source: bytes | None = None,
        parent: bytes | None = None,
        tainted: bytes | None = None,
    ) -> None:
        """The rows of assertion ``a`` at ``entry`` (as ``store/sqlite/assertion_rows``)."""
        lsn = entry.lsn
        ref = bytes.fromhex(entry.record_id)
        agents = [bytes.fromhex(s.agent_id) for s in a.signatures]
        self.signatures.extend(
            (lsn, agent, bytes.fromhex(s.signature), s.signed_at, lsn)
            for agent, s in zip(agents, a.signatures, strict=True)
        )
        self.assertions.append(
            (
                lsn,
                ref,
                a.subject,
                a.predicate,
                value_key(a.object),
                a.confidence,
                source,
                a.source_class,
                source_class or DEFAULT_SOURCE_CLASS,
                bytes.fromhex(a.epoch) if a.epoch else None,
                parent,
                a.lifecycle,
                a.valid_from,
                a.valid_to,
                a.timestamp,
                tainted,
                None,
                b"".join(agents),
                0.0,
                RECORD_ENCODER.encode(a),
            )
        )
        self.changes.append((lsn, int(entry.kind), ref, entry.committed_at, None))
