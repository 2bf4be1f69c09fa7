"""The quarantine (ADR 0023): a ``Quarantine`` record marks its assertion in candidate
reads and lists it; a review approves (released from its LSN on) or rejects it; the first
decision and the first review count; a reset forgets all of it."""

from __future__ import annotations

from stemedb.store.protocol import Store
from store_contract.history import PREDICATE, SUBJECT, History


def _row(store: Store, record_id: str) -> tuple[int | None, int | None]:
    (row,) = [r for r in store.candidates(SUBJECT, PREDICATE) if r.id == record_id]
    return row.quarantine_lsn, row.released_lsn


def test_a_quarantine_decision_marks_the_claim_and_lists_it(store: Store, history: History) -> None:
    claim, other = history.assertion("rare"), history.assertion("common")
    decision = history.quarantine(claim, "fresh_key_burst")
    touched = store.apply([claim, other, decision])
    assert touched == {(SUBJECT, PREDICATE)}
    assert _row(store, claim.record_id) == (decision.lsn, None)
    assert _row(store, other.record_id) == (None, None)
    (item,) = store.quarantined()
    assert (item.id, item.reason, item.status, item.lsn) == (
        claim.record_id,
        "fresh_key_burst",
        "pending",
        decision.lsn,
    )
    assert (item.subject, item.predicate, item.quarantined_at) == (SUBJECT, PREDICATE, history.now)
    assert item.agent_id == claim.record.signatures[0].agent_id  # type: ignore[union-attr]
    assert store.quarantine_item(claim.record_id) == item
    assert store.quarantine_item(other.record_id) is None
    assert store.quarantine_counts() == {("fresh_key_burst", "pending"): 1}


def test_approve_releases_reject_keeps_and_a_second_review_changes_nothing(
    store: Store, history: History
) -> None:
    a, b = history.assertion("rare"), history.assertion("common")
    store.apply([a, history.quarantine(a), b, history.quarantine(b, "untrusted_confidence")])
    approve = history.review(a, "approve", reviewer="admin-1")
    reject = history.review(b, "reject")
    assert store.apply([approve, reject]) == {(SUBJECT, PREDICATE)}
    assert _row(store, a.record_id)[1] == approve.lsn
    assert _row(store, b.record_id)[1] is None
    store.apply([history.review(b, "approve"), history.quarantine(a, "fresh_key_burst")])
    assert _row(store, b.record_id)[1] is None  # rejected stays rejected
    statuses = {r.id: (r.status, r.reviewer, r.reason) for r in store.quarantined()}
    assert statuses == {
        a.record_id: ("approved", "admin-1", "near_duplicate"),  # the first decision counts
        b.record_id: ("rejected", "key-1", "untrusted_confidence"),
    }
    assert store.quarantined(status="pending") == []
    assert [r.id for r in store.quarantined(reason="untrusted_confidence")] == [b.record_id]
    assert store.quarantine_counts() == {
        ("near_duplicate", "approved"): 1,
        ("untrusted_confidence", "rejected"): 1,
    }


def test_listing_pages_by_decision_lsn_and_filters_by_agent(store: Store, history: History) -> None:
    claims = [history.assertion(f"v{i}", by=i % 2) for i in range(4)]
    entries = []
    for claim in claims:
        entries += [claim, history.quarantine(claim)]
    store.apply(entries)
    first = store.quarantined(limit=2)
    rest = store.quarantined(after=first[-1].lsn, limit=10)
    assert [r.id for r in first + rest] == [c.record_id for c in claims]
    agent = claims[1].record.signatures[0].agent_id  # type: ignore[union-attr]
    assert [r.id for r in store.quarantined(agent_id=agent)] == [
        claims[1].record_id,
        claims[3].record_id,
    ]


def test_a_decision_for_an_unknown_assertion_is_kept_in_the_feed_and_changes_nothing(
    store: Store, history: History
) -> None:
    claim = history.assertion()
    ghost = history.assertion("never stored")
    history.entries.remove(ghost)  # never applied: the decision takes its LSN
    decision = history.quarantine(ghost)
    store.apply([claim, decision])
    assert store.quarantined() == []
    assert [c.kind for c in store.changes(0, 10)] == [1, 9]


def test_reset_forgets_the_quarantine(store: Store, history: History) -> None:
    claim = history.assertion()
    store.apply([claim, history.quarantine(claim)])
    store.reset()
    assert store.quarantined() == [] and store.quarantine_counts() == {}
