"""The audit log's rows: appended once per query id, found by agent, time and claim,
pruned oldest first with their claim links."""

from __future__ import annotations

from stemedb.store.protocol import AuditRow, Store

CLAIM_A, CLAIM_B = "aa" * 32, "bb" * 32


def row(query_id: str, at: float, agent: str | None = "alice") -> AuditRow:
    return (query_id, at, agent, "query", "consensus", "s", "p", None, 1.5, query_id.encode())


def test_audit_records_read_back_by_id_and_newest_first_by_agent_and_time(
    store: Store,
) -> None:
    store.write_audit([row("q1", 10.0), row("q2", 20.0, "bob"), row("q3", 30.0)], [])
    assert store.audit_query("q2") == b"q2"
    assert store.audit_query("missing") is None
    everything = store.audit_queries(agent=None, since=None, until=None, limit=10)
    assert everything == [b"q3", b"q2", b"q1"]
    assert store.audit_queries(agent="alice", since=None, until=None, limit=10) == [b"q3", b"q1"]
    assert store.audit_queries(agent=None, since=20.0, until=30.0, limit=10) == [b"q3", b"q2"]
    assert store.audit_queries(agent=None, since=None, until=None, limit=1) == [b"q3"]


def test_a_query_id_written_twice_keeps_its_first_record(store: Store) -> None:
    store.write_audit([row("q1", 10.0)], [(CLAIM_A, "q1")])
    store.write_audit([("q1", 99.0, "eve", "query", "x", None, None, None, 0.0, b"again")], [])
    assert store.audit_query("q1") == b"q1"
    assert store.audit_queries(agent="eve", since=None, until=None, limit=10) == []


def test_queries_using_a_claim_are_listed_newest_first(store: Store) -> None:
    store.write_audit(
        [row("q1", 10.0), row("q2", 20.0), row("q3", 30.0)],
        [(CLAIM_A, "q1"), (CLAIM_B, "q2"), (CLAIM_A, "q3")],
    )
    assert store.audit_queries_using(CLAIM_A, 10) == ["q3", "q1"]
    assert store.audit_queries_using(CLAIM_A, 1) == ["q3"]
    assert store.audit_queries_using("cc" * 32, 10) == []


def test_pruning_deletes_the_oldest_queries_and_their_claim_links(store: Store) -> None:
    store.write_audit(
        [row("q1", 10.0), row("q2", 20.0), row("q3", 30.0)],
        [(CLAIM_A, "q1"), (CLAIM_A, "q2"), (CLAIM_A, "q3")],
    )
    expired = store.expired_audit(25.0, 10)
    assert [record for _, record in expired] == [b"q1", b"q2"]
    assert [record for _, record in store.expired_audit(25.0, 1)] == [b"q1"]
    store.delete_audit([seq for seq, _ in expired], [(CLAIM_A, seq) for seq, _ in expired])
    assert store.audit_query("q1") is None
    assert store.audit_queries_using(CLAIM_A, 10) == ["q3"]
    assert store.expired_audit(25.0, 10) == []
