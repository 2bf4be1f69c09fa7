"""Single records, trace data and the change feed: what provenance, the registries and
the writer's commit-time checks read back."""

from __future__ import annotations

import msgspec

from stemedb.model.kinds import TYPE_OF_KIND, RecordKind
from stemedb.model.records import CoSignature
from stemedb.store.protocol import Store
from store_contract.history import T0, History, agent, assertion_of, source_hash_of


def test_an_assertion_reads_back_as_first_written_with_its_commit_time(
    store: Store, history: History
) -> None:
    claim = history.assertion()
    store.apply([claim])
    history.now += 3
    later = history.assertion("b")
    store.apply([later])
    assert store.assertion(claim.record_id) == (1, assertion_of(claim), float(T0))
    assert store.assertion(later.record_id) == (2, assertion_of(later), float(T0 + 3))
    assert store.assertion("00" * 32) is None
    assert store.assertions_by_lsn([2, 1, 99]) == {1: assertion_of(claim), 2: assertion_of(later)}


def test_the_change_feed_is_in_lsn_order_and_resumes_after_its_cursor(
    store: Store, history: History
) -> None:
    claim = history.assertion()
    store.apply([claim, history.cosignature(claim, by=1)])
    history.now += 5
    store.apply([history.vote(claim, 1.0, by=2), history.trust_outcome(of=0, accurate=True)])
    changes = store.changes(0, 10)
    assert [(c.lsn, c.kind, c.ref) for c in changes] == [
        (e.lsn, int(e.kind), e.record_id) for e in history.entries
    ]
    assert [c.committed_at for c in changes] == [T0, T0, T0 + 5, T0 + 5]
    assert [c.lsn for c in store.changes(2, 1)] == [3]
    assert store.changes(4, 10) == []


def test_every_kind_of_record_reads_back_from_the_feed_as_written(
    store: Store, history: History
) -> None:
    claim = history.assertion()
    source = history.source("paper", source_class="clinical")
    epoch = history.epoch("e")
    other = history.assertion("b")
    held = history.assertion("c")
    store.apply(
        [
            held,
            history.quarantine(held),
            history.review(held, "reject"),
            claim,
            history.cosignature(claim, by=1),
            history.vote(claim, 0.5, by=1),
            epoch,
            source,
            history.retraction(source),
            other,
            history.supersession(claim, other),
            history.trust_outcome(of=1, accurate=False),
        ]
    )
    assert {e.kind for e in history.entries} == set(RecordKind)
    for change, entry in zip(store.changes(0, 100), history.entries, strict=True):
        blob = store.record_blob(change.kind, change.ref, change.lsn)
        assert blob is not None
        decoded: object = msgspec.msgpack.decode(blob, type=TYPE_OF_KIND[RecordKind(change.kind)])
        assert decoded == entry.record


def test_trace_data_lists_signatures_votes_children_and_supersessions_in_lsn_order(
    store: Store, history: History
) -> None:
    claim = history.assertion()
    cosig = history.cosignature(claim, by=1)
    vote = history.vote(claim, 0.3, by=2)
    child = history.assertion("b", parent=claim.record_id)
    newer = history.assertion("c")
    sup = history.supersession(claim, newer, reason="typo")
    store.apply([claim, cosig, vote, child, newer, sup])
    sigs = store.signatures(1)
    assert [(s.agent_id, s.lsn) for s in sigs] == [(agent(0).agent_id, 1), (agent(1).agent_id, 2)]
    assert isinstance(cosig.record, CoSignature)
    assert sigs[1].signature == cosig.record.signature.signature
    assert [(v.id, v.agent_id, v.weight, v.lsn) for v in store.votes(1)] == [
        (vote.record_id, agent(2).agent_id, 0.3, 3)
    ]
    assert store.children(claim.record_id) == [child.record_id]
    (row,) = store.supersessions_of(newer.record_id)
    assert (row.id, row.lsn, row.old, row.new, row.reason) == (
        sup.record_id,
        6,
        claim.record_id,
        newer.record_id,
        "typo",
    )
    assert row.signers == (agent(0).agent_id,)
    assert store.supersessions_of(claim.record_id) == [row]


def test_a_source_reads_back_with_its_content_only_when_asked(
    store: Store, history: History
) -> None:
    source = history.source("the text", title="T", source_class="regulatory", published_at=T0)
    store.apply([source])
    source_hash = source_hash_of(source)
    row = store.source(source_hash)
    assert row is not None
    assert (row.id, row.lsn, row.uri, row.title) == (source.record_id, 1, "doi:the text", "T")
    assert (row.source_class, row.published_at, row.timestamp) == ("regulatory", T0, T0)
    assert (row.registered_by, row.retracted, row.content) == ((agent(0).agent_id,), False, None)
    full = store.source(source_hash, with_content=True)
    assert full is not None and full.content == "the text"
    assert store.source("00" * 32) is None


def test_sources_page_in_source_hash_order(store: Store, history: History) -> None:
    store.apply([history.source(f"paper {i}") for i in range(5)])
    hashes = sorted(source_hash_of(e) for e in history.entries)
    first = store.sources(after=None, limit=3)
    rest = store.sources(after=first[-1].source_hash, limit=3)
    assert [r.source_hash for r in first + rest] == hashes
    assert all(r.content is None for r in first + rest)


def test_epochs_list_what_superseded_them(store: Store, history: History) -> None:
    old = history.epoch("old", kind="replace")
    new = history.epoch("new", supersedes=(old,))
    store.apply([old, new])
    rows = store.epochs()
    assert [(r.id, r.name, r.lsn) for r in rows] == [
        (old.record_id, "old", 1),
        (new.record_id, "new", 2),
    ]
    assert rows[0].superseded_by == (new.record_id,)
    assert rows[1].supersedes == (old.record_id,)
    assert store.epoch(new.record_id) == rows[1]
    assert store.epoch("00" * 32) is None


def test_trust_rows_and_agent_counts_follow_outcomes_signatures_and_votes(
    store: Store, history: History
) -> None:
    claim = history.assertion(by=0)
    store.apply(
        [
            claim,
            history.assertion("b", by=1),
            history.cosignature(claim, by=1),
            history.vote(claim, 1.0, by=1),
            history.trust_outcome(of=1, accurate=True, timestamp=T0),
            history.trust_outcome(of=1, accurate=True, timestamp=T0),
        ]
    )
    bob = agent(1).agent_id
    row = store.trust_row(bob)
    assert row is not None
    assert (row.agent_id, row.outcomes, row.updated_at) == (bob, 2, T0)
    assert abs(row.score - 0.6) < 1e-9
    assert store.trust_row(agent(0).agent_id) is None
    assert store.agent_counts(bob) == {"assertions": 1, "cosignatures": 1, "votes": 1}


def test_recent_signers_count_the_signatures_on_the_latest_assertions(
    store: Store, history: History
) -> None:
    first = history.assertion("a", by=0)
    second = history.assertion("b", by=1)
    store.apply(
        [
            first,  # LSN 1
            second,  # LSN 2
            history.assertion("c", by=1),  # LSN 3
            history.cosignature(second, by=2),  # on LSN 2
            history.cosignature(first, by=2),  # on LSN 1
        ]
    )
    alice, bob, carol = (agent(i).agent_id for i in range(3))
    assert store.recent_signers(0, 10) == sorted(
        [(bob, 2), (alice, 1), (carol, 2)], key=lambda r: (-r[1], r[0])
    )
    assert store.recent_signers(1, 10) == sorted(
        [(bob, 2), (carol, 1)], key=lambda r: (-r[1], r[0])
    )
    assert store.recent_signers(1, 1) == [(bob, 2)]
    assert store.recent_signers(3, 10) == []


def test_commit_time_lookups_find_every_kind_by_its_id(store: Store, history: History) -> None:
    claim = history.assertion()
    vote = history.vote(claim, 1.0, by=1)
    epoch = history.epoch("e")
    other = history.assertion("b")
    sup = history.supersession(claim, other)
    source = history.source("paper")
    cosig = history.cosignature(claim, by=2)
    store.apply([claim, vote, epoch, other, sup, source, cosig])
    assert store.record_lsn(RecordKind.ASSERTION, claim.record_id) == 1
    assert store.record_lsn(RecordKind.VOTE, vote.record_id) == 2
    assert store.record_lsn(RecordKind.EPOCH, epoch.record_id) == 3
    assert store.record_lsn(RecordKind.SUPERSESSION, sup.record_id) == 5
    source_hash = source_hash_of(source)
    assert store.record_lsn(RecordKind.SOURCE, source_hash) == 6
    assert store.record_lsn(RecordKind.VOTE, "00" * 32) is None
    assert store.cosignature_lsn(claim.record_id, agent(0).agent_id) == 1  # the author
    assert store.cosignature_lsn(claim.record_id, agent(2).agent_id) == 7
    assert store.cosignature_lsn(claim.record_id, agent(3).agent_id) is None


def test_assertion_lsns_find_stored_ids_across_lookup_chunks(
    store: Store, history: History
) -> None:
    stored = [history.assertion(str(i)) for i in range(3)]
    store.apply(stored)
    unknown = [f"{i:064x}" for i in range(5000)]
    wanted = [*unknown[:2500], stored[0].record_id, *unknown[2500:], stored[2].record_id]
    assert store.assertion_lsns(wanted) == {stored[0].record_id: 1, stored[2].record_id: 3}
    assert store.assertion_lsns([stored[1].record_id]) == {stored[1].record_id: 2}
    assert store.assertion_lsns([]) == {}


def test_citing_lists_the_assertions_of_one_source_in_lsn_order_up_to_the_limit(
    store: Store, history: History
) -> None:
    source = history.source("paper")
    hash_ = source_hash_of(source)
    first = history.assertion("a", source_hash=hash_)
    history.assertion("b")
    child = history.assertion("c", parent=first.record_id)
    second = history.assertion("d", source_hash=hash_)
    store.apply(history.entries)
    assert store.citing(hash_, 10) == [first.record_id, second.record_id]
    assert store.citing(hash_, 1) == [first.record_id]
    assert store.citing("ab" * 32, 10) == []
    assert child.record_id not in store.citing(hash_, 10)  # descendants: via children()
