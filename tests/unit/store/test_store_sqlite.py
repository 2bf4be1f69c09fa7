"""The SQLite store directly: subject-prefix byte ranges, and the writer connection
shared by the group-commit writer, the view refresher and applied_lsn() readers."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from stemedb.engine import Engine
from stemedb.model.records import Assertion
from stemedb.store.claim_keys import prefix_upper_bound

Claim = Callable[..., Assertion]


@pytest.mark.parametrize(
    ("prefix", "upper"),
    [
        ("drugs/x/", "drugs/x0"),
        ("a", "b"),
        ("é", "ê"),
        ("x\U0010ffff", "y"),
        ("\ud7ff", "\ue000"),
        ("\U0010ffff\U0010ffff", None),
    ],
)
def test_prefix_upper_bound_is_the_least_string_above_every_extension(
    prefix: str, upper: str | None
) -> None:
    assert prefix_upper_bound(prefix) == upper


def test_candidates_by_prefix_never_match_a_sibling_and_always_match_extensions(
    engine: Engine, claim: Claim
) -> None:
    inside = ["drugs/x/", "drugs/x/a", "drugs/x/\U0010ffffz", "drugs/x/\x7f"[:-1] + "~"]
    outside = ["drugs/x", "drugs/xa", "drugs/x0", "drugs/y/"]
    engine.write_many([claim("v", subject=s) for s in inside + outside])
    rows = engine.store.candidates("drugs/x/", None, prefix=True)
    assert sorted(r.subject for r in rows) == sorted(inside)
    keys = engine.store.subject_predicates("drugs/x/", None, prefix=True, after=None, limit=100)
    assert [s for s, _ in keys] == sorted(inside)


def test_view_writes_and_applied_lsn_reads_do_not_collide_with_the_group_commit(
    engine: Engine, claim: Claim
) -> None:
    # Regression: put_views() and applied_lsn() used the writer connection from other
    # threads while the group-commit writer was inside a transaction on it, and apsw
    # raised ThreadingViolationError ("Connection is busy in another thread").
    errors: list[BaseException] = []
    stop = threading.Event()

    def hammer() -> None:
        i = 0
        while not stop.is_set():
            try:
                engine.store.put_views([("s", f"p{i % 7}", i, 0.0, b"x")])
                engine.store.applied_lsn()
            except BaseException as exc:  # noqa: BLE001 - collected and re-raised in the test thread
                errors.append(exc)
                return
            i += 1

    threads = [threading.Thread(target=hammer) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        for i in range(60):
            engine.write(claim(f"v{i}", subject=f"drugs/d{i % 5}"))
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert errors == []
    assert engine.store.applied_lsn() == 60
