"""The search index (``SearchReads``): what it holds, how it ranks and pages, that it
is written in the batch's transaction and rebuilt with everything else."""

from __future__ import annotations

from pathlib import Path

import pytest

from stemedb.engine.replay import replay
from stemedb.errors import StorageError, ValidationError
from stemedb.model.records import ObjectValue
from stemedb.store.protocol import Store
from stemedb.store.rows import SearchRow
from stemedb.wal import Wal
from store_contract.history import PREDICATE, SUBJECT, History, source_hash_of


def _search(store: Store, text: str, *, fts: bool = False, limit: int = 10) -> list[SearchRow]:
    return store.search(text, fts=fts, bound=None, offset=0, limit=limit)[0]


def _keys(hits: list[SearchRow]) -> list[tuple[str, str, str]]:
    return [(h.subject, h.predicate, h.matched_field) for h in hits]


def test_subject_and_predicate_are_split_into_words(store: Store, history: History) -> None:
    store.apply([history.assertion(7.0)])
    (hit,) = _search(store, "semaglutide")
    assert (hit.subject, hit.predicate, hit.matched_field) == (SUBJECT, PREDICATE, "subject")
    assert hit.snippet == "drugs/**semaglutide**"
    assert hit.claims == 1
    assert hit.score > 0
    (hit,) = _search(store, "Gastroparesis")
    assert (hit.matched_field, hit.snippet) == ("predicate", "**gastroparesis**_risk")
    assert _search(store, "drugs/semaglutide gastroparesis_risk")[0].subject == SUBJECT


def test_text_values_are_indexed_once_per_key_and_other_values_not(
    store: Store, history: History
) -> None:
    store.apply(
        [
            history.assertion("delayed gastric emptying reported", by=0),
            history.assertion("delayed gastric emptying reported", by=1, confidence=0.6),
            history.assertion(ObjectValue("boolean", True), predicate="approved"),
            history.assertion(42.0, predicate="trials"),
        ]
    )
    hits = _search(store, "gastric emptying")
    assert _keys(hits) == [(SUBJECT, PREDICATE, "object")]
    assert hits[0].snippet == "delayed **gastric** **emptying** reported"
    assert hits[0].claims == 2
    assert _search(store, "42") == []
    assert _search(store, "true") == []


def test_a_cited_source_is_found_by_title_and_uri_whenever_it_was_registered(
    store: Store, history: History
) -> None:
    early = history.source("one", title="Lancet cohort study")
    cites_early = history.assertion("x", subject="drugs/a", source_hash=source_hash_of(early))
    late = history.source("two", title="NEJM trial")
    cites_late = history.assertion("y", subject="drugs/b", source_hash=late.record.source_hash)  # type: ignore[union-attr]
    # the second source is registered after the claim that cites it, in a later batch
    store.apply([early, cites_early, cites_late])
    assert _search(store, "nejm") == []
    store.apply([late])
    assert _keys(_search(store, "lancet")) == [("drugs/a", PREDICATE, "source_title")]
    assert _keys(_search(store, "nejm")) == [("drugs/b", PREDICATE, "source_title")]
    assert _keys(_search(store, "doi two")) == [("drugs/b", PREDICATE, "source_uri")]
    uncited = history.source("three", title="Uncited memo")
    store.apply([uncited])
    assert _search(store, "memo") == []


def test_a_subject_match_outranks_a_source_title_match(store: Store, history: History) -> None:
    paper = history.source("p", title="tirzepatide versus placebo")
    store.apply(
        [
            paper,
            history.assertion("z", subject="drugs/other", source_hash=source_hash_of(paper)),
            history.assertion("z", subject="drugs/tirzepatide", predicate="dose"),
        ]
    )
    hits = _search(store, "tirzepatide")
    assert _keys(hits) == [
        ("drugs/tirzepatide", "dose", "subject"),
        ("drugs/other", PREDICATE, "source_title"),
    ]
    assert hits[0].score > hits[1].score


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ('"', False),
        ("*", False),
        ("((", False),
        ("-", False),
        ("AND", False),
        ("NEAR(", False),
        ("a OR", False),
        ('semaglutide"', True),
        ("drugs:semaglutide", True),
        ("^semaglutide", True),
        ('"drugs/semaglutide', True),
    ],
)
def test_words_are_never_query_syntax(
    store: Store, history: History, text: str, found: bool
) -> None:
    store.apply([history.assertion(7.0)])
    assert [h.subject for h in _search(store, text)] == ([SUBJECT] if found else [])


def test_the_fts_query_language_and_its_syntax_errors(store: Store, history: History) -> None:
    store.apply([history.assertion("x"), history.assertion("y", subject="drugs/tirzepatide")])
    assert {h.subject for h in _search(store, "semaglu* OR tirzepatide", fts=True)} == {
        SUBJECT,
        "drugs/tirzepatide",
    }
    with pytest.raises(ValidationError) as caught:
        _search(store, "semaglutide AND", fts=True)
    assert caught.value.code == "bad_fts_query"
    assert caught.value.status == 400


def test_pages_follow_one_order_and_skip_documents_indexed_after_the_first(
    store: Store, history: History
) -> None:
    store.apply([history.assertion("x", subject=f"drugs/d{i:02}") for i in range(25)])
    first, bound = store.search("drugs", fts=False, bound=None, offset=0, limit=10)
    store.apply([history.assertion("x", subject="drugs/new")])
    second, again = store.search("drugs", fts=False, bound=bound, offset=10, limit=10)
    third, _ = store.search("drugs", fts=False, bound=bound, offset=20, limit=10)
    assert again == bound
    subjects = [h.subject for h in first + second + third]
    assert len(subjects) == 25 == len(set(subjects))
    assert "drugs/new" not in subjects
    assert len(_search(store, "drugs", limit=100)) == 26


def test_listings_count_predicates_and_claims_in_byte_order(store: Store, history: History) -> None:
    store.apply(
        [
            history.assertion("a", subject="drugs/b", predicate="p1"),
            history.assertion("b", subject="drugs/b", predicate="p1", by=1),
            history.assertion("c", subject="drugs/b", predicate="p2"),
            history.assertion("d", subject="drugs/a", predicate="p1"),
            history.assertion("e", subject="drugs/é", predicate="p1"),
            history.assertion("f", subject="genes/x", predicate="p1"),
        ]
    )
    rows = store.list_subjects("drugs/", after=None, limit=10)
    assert [(r.subject, r.predicates, r.claims) for r in rows] == [
        ("drugs/a", 1, 1),
        ("drugs/b", 2, 3),
        ("drugs/é", 1, 1),
    ]
    assert [r.subject for r in store.list_subjects("", after="drugs/b", limit=2)] == [
        "drugs/é",
        "genes/x",
    ]
    preds = store.list_predicates("drugs/b", after=None, limit=10)
    assert [(p.predicate, p.claims) for p in preds] == [("p1", 2), ("p2", 1)]
    assert [p.predicate for p in store.list_predicates("drugs/b", after="p1", limit=10)] == ["p2"]
    assert store.list_predicates("drugs/none", after=None, limit=10) == []


def test_similar_names_find_a_misspelt_subject_or_predicate(store: Store, history: History) -> None:
    store.apply(
        [
            history.assertion("x", subject="drugs/semaglutide", predicate="gastroparesis_risk"),
            history.assertion("x", subject="drugs/tirzepatide", predicate="hba1c_change"),
        ]
    )
    assert store.similar_names("subject", "drugs/semaglutid", 5)[0] == "drugs/semaglutide"
    assert store.similar_names("subject", "tirzepatid", 5)[0] == "drugs/tirzepatide"
    assert store.similar_names("predicate", "gastroparesis", 5)[0] == "gastroparesis_risk"
    assert "drugs/semaglutide" not in store.similar_names("predicate", "semaglutide", 5)
    assert store.similar_names("predicate", "hb", 5) == ["hba1c_change"]
    assert store.similar_names("subject", "zzzzzz", 5) == []


def test_a_failed_batch_leaves_nothing_in_the_index(store: Store, history: History) -> None:
    claim = history.assertion("first")
    store.apply([claim])
    later = history.assertion("second words", subject="drugs/later")
    with pytest.raises(StorageError):
        store.apply([later, claim])  # the same entry again cannot be stored
    assert _search(store, "later") == []
    assert _search(store, "second") == []
    assert store.list_subjects("", after=None, limit=10)[0].claims == 1
    store.apply([later])
    assert _keys(_search(store, "later")) == [("drugs/later", PREDICATE, "subject")]


def test_reset_empties_the_index_and_a_replay_rebuilds_it(
    store: Store, history: History, tmp_path: Path
) -> None:
    source = history.source("paper", title="Cohort study")
    history.assertion("words here", source_hash=source_hash_of(source))
    history.assertion("x", subject="drugs/other")
    store.apply(history.entries)
    before = (
        _search(store, "cohort"),
        _search(store, "words"),
        store.list_subjects("", after=None, limit=10),
        store.similar_names("subject", "drugs/othr", 5),
    )
    wal = Wal.open(tmp_path / "wal", fsync=False)
    try:
        history.write_wal(wal)
        store.reset()
        assert _search(store, "semaglutide") == []
        assert store.list_subjects("", after=None, limit=10) == []
        assert store.similar_names("subject", "drugs/othr", 5) == []
        replay(wal, store)
    finally:
        wal.close()
    after = (
        _search(store, "cohort"),
        _search(store, "words"),
        store.list_subjects("", after=None, limit=10),
        store.similar_names("subject", "drugs/othr", 5),
    )
    assert after == before


def test_an_fts_syntax_error_is_refused_on_an_empty_index(store: Store) -> None:
    for text in ("semaglutide AND", '"unterminated'):
        with pytest.raises(ValidationError) as caught:
            _search(store, text, fts=True)
        assert caught.value.code == "bad_fts_query"
    assert _search(store, "semaglutide", fts=True) == []
