"""One fresh store per implementation for every contract test.

To run the contract on a new implementation, add an opener to ``IMPLEMENTATIONS``:
it gets a fresh directory of the test and returns a store on a backing location
derived from it; called again with the same directory it opens another store object
on the same data (a reopen, or a second process's store).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from stemedb.store.protocol import Store
from stemedb.store.sqlite import SqliteStore
from store_contract.history import History


def _sqlite(location: Path) -> Store:
    return SqliteStore(location / "data")


IMPLEMENTATIONS: dict[str, Callable[[Path], Store]] = {"sqlite": _sqlite}

StoreOpener = Callable[[], Store]


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreOpener]:
    """Open stores on this test's fresh location; every one is closed at teardown."""
    opener = IMPLEMENTATIONS[request.param]
    opened: list[Store] = []

    def open_one() -> Store:
        store = opener(tmp_path)
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
