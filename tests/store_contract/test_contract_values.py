"""Object values kept intact (ADR 0019): a ``json`` value and an integer number read back
from every store as they were written — types to the bottom, through the record, the
feed's blob and a rebuild from the WAL — and claims with equal canonical JSON share a
value key (what the lenses group by) while different values do not."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec

from stemedb.engine.replay import replay
from stemedb.model.kinds import RecordKind
from stemedb.model.records import Assertion, ObjectValue
from stemedb.store.protocol import Store
from stemedb.wal import Wal
from store_contract.history import PREDICATE, SUBJECT, History, assertion_of

MEMORY: dict[str, Any] = {
    "kind": "preference",
    "count": 3,
    "score": 0.75,
    "ratio": 2.0,
    "tags": ["units", {"deep": [1, 2.5, None, True]}],
    "ünï": "cödé",
    "empty": {},
}


def _typed(value: Any) -> str:
    """``value`` with every number's Python type spelled out (``3`` vs ``3.0``)."""
    return json.dumps(value) + repr(value)


def _read_back(store: Store, record_id: str, lsn: int) -> list[Assertion]:
    found = store.assertion(record_id)
    assert found is not None
    blob = store.record_blob(int(RecordKind.ASSERTION), record_id, lsn)
    assert blob is not None
    return [
        found[1],
        store.assertions_by_lsn([lsn])[lsn],
        msgspec.msgpack.decode(blob, type=Assertion),
    ]


def test_a_json_value_and_an_integer_read_back_as_written(
    store: Store, history: History, tmp_path: Path
) -> None:
    memory = history.assertion(ObjectValue("json", MEMORY), predicate="memory")
    integer = history.assertion(ObjectValue("number", 3), predicate="steps")
    listed = history.assertion(ObjectValue("json", [1, "two", [3.5]]), predicate="list")
    store.apply(history.entries)
    for entry, value in ((memory, MEMORY), (integer, 3), (listed, [1, "two", [3.5]])):
        for record in _read_back(store, entry.record_id, entry.lsn):
            assert record == assertion_of(entry)
            assert _typed(record.object.value) == _typed(value)
    assert type(assertion_of(integer).object.value) is int

    wal = Wal.open(tmp_path / "wal", fsync=False)
    try:
        history.write_wal(wal)
        store.reset()
        assert replay(wal, store) == 3
    finally:
        wal.close()
    for record in _read_back(store, memory.record_id, memory.lsn):
        assert _typed(record.object.value) == _typed(MEMORY)


def test_equal_canonical_json_shares_a_value_key_and_other_values_do_not(
    store: Store, history: History
) -> None:
    values = [
        ObjectValue("json", {"b": [1.0, 2], "a": "x"}),
        ObjectValue("json", {"a": "x", "b": [1, 2.0]}),  # the same canonical JSON
        ObjectValue("json", {"a": "x", "b": [2, 1]}),  # arrays keep their order
        ObjectValue("json", [{"a": "x", "b": [1, 2]}]),
        ObjectValue("text", '{"a":"x","b":[1,2]}'),  # the text of it is another value
        ObjectValue("number", 3),
        ObjectValue("number", 3.0),  # the same number
    ]
    # each its own record: confidences differ (equal values would otherwise be one ID)
    entries = [history.assertion(v, by=i, confidence=0.5 + i / 100) for i, v in enumerate(values)]
    store.apply(entries)
    rows = {row.id: row.value_key for row in store.candidates(SUBJECT, PREDICATE)}
    keys = [rows[e.record_id] for e in entries]
    assert keys[0] == keys[1]
    assert keys[5] == keys[6]
    assert len({keys[0], keys[2], keys[3], keys[4], keys[5]}) == 5
    assert keys[0].startswith("json:") and keys[4].startswith("text:")
    assert len(rows) == len(values)
