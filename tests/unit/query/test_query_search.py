"""``query.search`` on a real SQLite store: validation, cursors, did-you-mean."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from store_contract.history import History

from stemedb.errors import ValidationError
from stemedb.query import search as search_api
from stemedb.store.sqlite import SqliteStore
from stemedb.wire import SearchResponse, Suggestion


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path)
    h = History()
    for i in range(15):
        h.assertion(f"note {i}", subject=f"drugs/d{i:02}", predicate="summary")
    h.assertion("x", subject="drugs/semaglutide", predicate="gastroparesis_risk")
    h.assertion("y", subject="drugs/semaglutide", predicate="gastroparesis_risk", by=1)
    h.assertion("z", subject="drugs/semaglutide", predicate="weight_loss")
    h.assertion("w", subject="drugs/tirzepatide", predicate="gastroparesis_risk")
    s.apply(h.entries)
    yield s
    s.close()


def test_search_pages_with_an_opaque_cursor_to_the_end(store: SqliteStore) -> None:
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = search_api.search(store, "summary", limit=4, cursor=cursor)
        seen += [h.subject for h in page.hits]
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert pages == 4
    assert sorted(seen) == [f"drugs/d{i:02}" for i in range(15)]


def test_a_hit_is_the_key_with_its_claims_and_the_default_limit_is_ten(
    store: SqliteStore,
) -> None:
    page = search_api.search(store, "gastroparesis semaglutide")
    assert page.hits[0].subject == "drugs/semaglutide"
    assert page.hits[0].predicate == "gastroparesis_risk"
    assert page.hits[0].claims == 2
    assert len(search_api.search(store, "drugs").hits) == 10
    encoded = msgspec.json.decode(msgspec.json.encode(page))
    assert "suggestions" not in encoded


@pytest.mark.parametrize(
    ("kwargs", "field", "code"),
    [
        ({"q": ""}, "q", "invalid_field"),
        ({"q": "   "}, "q", "invalid_field"),
        ({"q": "x" * 1025}, "q", "invalid_field"),
        ({"q": "a\x00b"}, "q", "invalid_field"),
        ({"q": "x", "mode": "regex"}, "mode", "invalid_field"),
        ({"q": "x", "limit": 0}, "limit", "limit_out_of_range"),
        ({"q": "x", "limit": 101}, "limit", "limit_out_of_range"),
        ({"q": "x", "cursor": "not-a-cursor"}, "cursor", "bad_cursor"),
        ({"q": "semaglutide AND", "mode": "fts"}, "q", "bad_fts_query"),
    ],
)
def test_bad_search_input_is_a_validation_error(
    store: SqliteStore, kwargs: dict[str, object], field: str, code: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        search_api.search(store, **kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert caught.value.code == code


def test_a_cursor_of_another_query_is_refused(store: SqliteStore) -> None:
    cursor = search_api.search(store, "summary", limit=2).next_cursor
    assert cursor is not None
    with pytest.raises(ValidationError) as caught:
        search_api.search(store, "drugs", limit=2, cursor=cursor)
    assert caught.value.code == "bad_cursor"
    with pytest.raises(ValidationError):
        search_api.subjects(store, cursor=cursor)


def test_a_search_without_hits_suggests_close_subjects(store: SqliteStore) -> None:
    page = search_api.search(store, "semaglutde")
    assert page.hits == []
    assert isinstance(page, SearchResponse)
    assert isinstance(page.suggestions, list)
    assert page.suggestions[0] == Suggestion(subject="drugs/semaglutide", predicate=None, claims=3)
    assert len(page.suggestions) <= 5


def test_listings_page_in_byte_order(store: SqliteStore) -> None:
    first = search_api.subjects(store, "drugs/", limit=10)
    assert [s.subject for s in first.subjects][:2] == ["drugs/d00", "drugs/d01"]
    assert first.next_cursor is not None
    rest = search_api.subjects(store, "drugs/", limit=10, cursor=first.next_cursor)
    assert [s.subject for s in rest.subjects][-2:] == ["drugs/semaglutide", "drugs/tirzepatide"]
    assert rest.subjects[-2].predicates == 2
    assert rest.subjects[-2].claims == 3
    assert rest.next_cursor is None
    listed = search_api.predicates(store, "drugs/semaglutide", limit=1)
    assert [(p.predicate, p.claims) for p in listed.predicates] == [("gastroparesis_risk", 2)]
    assert listed.next_cursor is not None
    more = search_api.predicates(store, "drugs/semaglutide", cursor=listed.next_cursor)
    assert [p.predicate for p in more.predicates] == ["weight_loss"]


def test_did_you_mean_a_stored_key(store: SqliteStore) -> None:
    # a misspelt subject: the closest subjects, each with its closest predicate
    got = search_api.suggestions(store, "drugs/semaglutid", "gastroparesis_risk")
    assert got[0] == Suggestion(
        subject="drugs/semaglutide", predicate="gastroparesis_risk", claims=2
    )
    assert len(got) <= 5
    # a stored subject and a misspelt predicate: its predicates, closest first
    got = search_api.suggestions(store, "drugs/semaglutide", "gastroparesis")
    assert [s.predicate for s in got] == ["gastroparesis_risk", "weight_loss"]
    # a stored key: nothing to suggest
    assert search_api.suggestions(store, "drugs/semaglutide", "weight_loss") == []
    # a prefix with no subject under it
    got = search_api.suggestions(store, "drugs/tirz", None, prefix=True)
    assert got == []
    got = search_api.suggestions(store, "drugz/tirzepatide", None, prefix=True)
    assert got[0] == Suggestion(subject="drugs/tirzepatide", predicate=None, claims=1)
    assert search_api.suggestions(store, "zzzz/qqqq", "nothing") == []
