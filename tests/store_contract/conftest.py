"""One fresh store per implementation for every contract test.

To run the contract on a new implementation, add an opener to ``IMPLEMENTATIONS``:
it gets the test's request (to ask for the fixtures it needs, lazily) and a fresh
directory of the test, and returns a store on a backing location derived from them;
called again with the same arguments it opens another store object on the same data (a
reopen, or a second process's store).

``postgres`` runs on a fresh database of the session's real PostgreSQL server
(``postgres_store_dsn``: the schema migrated), without the commit watcher: a second store object
then follows the first only through ``absorb``, as the contract states for a store
that only reads (the watcher has its own tests in ``tests/unit/store/``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from stemedb.store.protocol import Store
from stemedb.store.sqlite import SqliteStore
from store_contract.history import History


def _sqlite(request: pytest.FixtureRequest, location: Path) -> Store:
    return SqliteStore(location / "data")


def _postgres(request: pytest.FixtureRequest, location: Path) -> Store:
    from stemedb.store.postgres import PostgresStore

    dsn: str = request.getfixturevalue("postgres_store_dsn")
    return PostgresStore(dsn, watch=False, pool_size=2, path=location / "postgres")


IMPLEMENTATIONS: dict[str, Callable[[pytest.FixtureRequest, Path], Store]] = {
    "postgres": _postgres,
    "sqlite": _sqlite,
}

StoreOpener = Callable[[], Store]


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreOpener]:
    """Open stores on this test's fresh location; every one is closed at teardown."""
    opener = IMPLEMENTATIONS[request.param]
    opened: list[Store] = []

    def open_one() -> Store:
        store = opener(request, tmp_path)
        opened.append(store)
        return store

    yield open_one
    for store in reversed(opened):
        store.close()


@pytest.fixture
def store(open_store: StoreOpener) -> Store:
    return open_store()


@pytest.fixture
def history() -> History:
    return History()
