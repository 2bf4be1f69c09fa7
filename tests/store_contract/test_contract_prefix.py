"""Subject prefixes are byte ranges: a prefix matches exactly the subjects whose UTF-8
bytes start with its bytes, and keys come back in byte order (SQLite's BINARY order;
PostgreSQL needs ``COLLATE "C"`` for it)."""

from __future__ import annotations

import pytest

from stemedb.store.protocol import Store
from store_contract.history import History

PREFIX_CASES = [
    # (prefix, subjects that extend it, siblings that do not)
    (
        "drugs/x/",
        ["drugs/x/", "drugs/x/a", "drugs/x/\U0010ffffz", "drugs/x/~", "drugs/x//"],
        ["drugs/x", "drugs/xa", "drugs/x0", "drugs/y/", "drugs/x.", "Drugs/x/"],
    ),
    (
        "drugs/é",
        ["drugs/é", "drugs/é/a", "drugs/éa", "drugs/é\U0001f600"],
        ["drugs/e", "drugs/ê", "drugs/è", "drugs/", "drugs/\U0001f600"],
    ),
    ("\U0010ffff", ["\U0010ffff", "\U0010ffff/a", "\U0010ffff\U0010ffff"], ["\U0010fffe", "z"]),
    ("a\ud7ff", ["a\ud7ff", "a\ud7ffz"], ["a\ue000", "a\ud7fe"]),
]


def _write(store: Store, history: History, subjects: list[str]) -> None:
    store.apply([history.assertion("v", subject=s) for s in subjects])


@pytest.mark.parametrize(("prefix", "inside", "outside"), PREFIX_CASES)
def test_a_prefix_never_matches_a_sibling_and_always_matches_every_extension(
    store: Store, history: History, prefix: str, inside: list[str], outside: list[str]
) -> None:
    _write(store, history, inside + outside)
    rows = store.candidates(prefix, None, prefix=True)
    assert sorted(r.subject for r in rows) == sorted(inside)
    keys = store.subject_predicates(prefix, None, prefix=True, after=None, limit=100)
    assert [s for s, _ in keys] == sorted(inside, key=str.encode)


def test_an_empty_prefix_matches_every_subject(store: Store, history: History) -> None:
    subjects = ["a", "drugs/x", "\U0010ffff"]
    _write(store, history, subjects)
    assert len(store.candidates("", None, prefix=True)) == 3
    keys = store.subject_predicates("", None, prefix=True, after=None, limit=100)
    assert [s for s, _ in keys] == subjects


def test_without_prefix_a_subject_matches_only_itself(store: Store, history: History) -> None:
    _write(store, history, ["drugs/x", "drugs/x/a"])
    assert [r.subject for r in store.candidates("drugs/x", None)] == ["drugs/x"]
    keys = store.subject_predicates("drugs/x", None, prefix=False, after=None, limit=100)
    assert [s for s, _ in keys] == ["drugs/x"]


def test_keys_come_in_utf8_byte_order_not_by_case_or_locale(store: Store, history: History) -> None:
    subjects = ["s/b", "s/B", "s/é", "s/z", "s/\uffff", "s/\U0001f600", "s/a/", "s/a"]
    _write(store, history, subjects)
    keys = store.subject_predicates("s/", None, prefix=True, after=None, limit=100)
    assert [s for s, _ in keys] == sorted(subjects, key=str.encode)


def test_key_pages_resume_after_the_cursor_key_without_repeats_or_gaps(
    store: Store, history: History
) -> None:
    entries = [
        history.assertion("v", subject=s, predicate=p)
        for s in ("p/a", "p/b", "p/c")
        for p in ("x", "y")
    ]
    entries.append(history.assertion("w", subject="p/a", predicate="x"))  # same key twice
    store.apply(entries)
    pages: list[tuple[str, str]] = []
    after: tuple[str, str] | None = None
    while True:
        page = store.subject_predicates("p/", None, prefix=True, after=after, limit=4)
        pages.extend(page)
        if len(page) < 4:
            break
        after = page[-1]
    assert pages == [(s, p) for s in ("p/a", "p/b", "p/c") for p in ("x", "y")]
    only_y = store.subject_predicates("p/", "y", prefix=True, after=("p/a", "y"), limit=10)
    assert only_y == [("p/b", "y"), ("p/c", "y")]
