"""The row of an assertion, defined once: the ``INSERT`` statement and the tuple it binds
come from here for every assertion a batch applies.

A new column of ``assertions`` is one entry in ``ASSERTION_COLUMNS`` (its name and
what a new row holds) and, when it is bound, one value in ``AssertionRows.add`` at the
same place (``tests/unit/store/test_store_assertion_rows.py`` checks both against the
schema). The rows are collected and inserted with ``executemany``, one prepared
statement per table: fewer Python calls per assertion than one ``execute`` each.
"""

from __future__ import annotations

from typing import Any, Final

import apsw

from stemedb.model.kinds import Entry
from stemedb.model.records import DEFAULT_SOURCE_CLASS, Assertion
from stemedb.store.claim_keys import value_key
from stemedb.store.sqlite.blobs import RECORD_ENCODER

BOUND: Final = "?"

ASSERTION_COLUMNS: Final = (
    # (column, "?" for a value ``add`` binds, else the SQL value every new row starts with)
    ("lsn", BOUND),
    ("id", BOUND),
    ("subject", BOUND),
    ("predicate", BOUND),
    ("value_key", BOUND),
    ("confidence", BOUND),
    ("source_hash", BOUND),
    ("source_class_raw", BOUND),  # as written (null: the source's class may fill it in)
    ("source_class", BOUND),  # as read: written, else the registered source's, else expert
    ("epoch", BOUND),
    ("parent", BOUND),
    ("lifecycle", BOUND),
    ("valid_from", BOUND),
    ("valid_to", BOUND),
    ("timestamp", BOUND),
    ("tainted_by", BOUND),
    ("superseded_lsn", "NULL"),
    ("signers", BOUND),
    ("vote_weight", "0.0"),
    ("record", BOUND),
    ("quarantine_lsn", "NULL"),
    ("released_lsn", "NULL"),
)

INSERT_ASSERTION: Final = (
    f"INSERT INTO assertions ({', '.join(name for name, _ in ASSERTION_COLUMNS)})"
    f" VALUES ({', '.join(value for _, value in ASSERTION_COLUMNS)})"
)
INSERT_SIGNATURE: Final = "INSERT INTO signatures VALUES (?, ?, ?, ?, ?)"
INSERT_CHANGE: Final = "INSERT INTO changes VALUES (?, ?, ?, ?, ?)"


class AssertionRows:
    """The ``assertions``, ``signatures`` and ``changes`` rows of assertions, collected
    until ``flush``: call it before anything reads or updates the tables."""

    __slots__ = ("assertions", "changes", "signatures")

    def __init__(self) -> None:
        self.assertions: list[tuple[Any, ...]] = []
        self.signatures: list[tuple[Any, ...]] = []
        self.changes: list[tuple[Any, ...]] = []

    def add(
        self,
        entry: Entry,
        a: Assertion,
        source_class: str | None,
        source: bytes | None = None,
        parent: bytes | None = None,
        tainted: bytes | None = None,
    ) -> None:
        """The rows of assertion ``a`` at ``entry``; ``source_class``: as written, or
        the registered source's; ``source``, ``parent``, ``tainted_by``: as looked up."""
        lsn = entry.lsn
        ref = bytes.fromhex(entry.record_id)
        if len(a.signatures) == 1:  # the common case, without generator overhead
            sig = a.signatures[0]
            agent = bytes.fromhex(sig.agent_id)
            agents = [agent]
            self.signatures.append((lsn, agent, bytes.fromhex(sig.signature), sig.signed_at, lsn))
        else:
            agents = [bytes.fromhex(s.agent_id) for s in a.signatures]
            self.signatures.extend(
                (lsn, agent, bytes.fromhex(s.signature), s.signed_at, lsn)
                for agent, s in zip(agents, a.signatures, strict=True)
            )
        # The bound columns of ASSERTION_COLUMNS, in its order.
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
                b"".join(agents),
                RECORD_ENCODER.encode(a),
            )
        )
        self.changes.append((lsn, int(entry.kind), ref, entry.committed_at, None))

    def flush(self, conn: apsw.Connection) -> None:
        if not self.assertions:
            return
        conn.executemany(INSERT_ASSERTION, self.assertions)
        conn.executemany(INSERT_SIGNATURE, self.signatures)
        conn.executemany(INSERT_CHANGE, self.changes)
        self.assertions, self.signatures, self.changes = [], [], []
