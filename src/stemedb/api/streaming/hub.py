"""Bridge from the engine's commit listener (writer thread) to asyncio waiters.

The writer calls ``on_commit`` after each applied batch; at most one wake-up is
scheduled on the loop at a time (``loop.call_soon_threadsafe``). A waiter takes the
current event, re-checks the applied LSN, then waits: a commit after that check always
sets that event or a later one, so no wake-up is lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from stemedb.store.cache import SubjectPredicate


class FeedHub:
    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None
        self._pending = False
        self._applied_lsn: Callable[[], int] = lambda: 0
        self.closed = False

    def attach(self, loop: asyncio.AbstractEventLoop, applied_lsn: Callable[[], int]) -> None:
        self._loop = loop
        self._event = asyncio.Event()
        self._applied_lsn = applied_lsn
        self.closed = False

    def on_commit(self, lsn: int, touched: set[SubjectPredicate]) -> None:
        """The engine's commit listener; runs on the writer thread."""
        loop = self._loop
        if loop is None or self.closed or self._pending:
            return
        self._pending = True
        try:
            loop.call_soon_threadsafe(self._wake)
        except RuntimeError:  # the loop is closed (shutdown)
            self._pending = False

    def _wake(self) -> None:
        self._pending = False
        event = self._event
        self._event = asyncio.Event()
        if event is not None:
            event.set()

    async def wait(self, after: int, timeout: float) -> bool:
        """Wait until a record with LSN > ``after`` is applied (True) or the timeout
        passes or the hub closes (False)."""
        event = self._event
        if self._applied_lsn() > after:
            return True
        if event is None or self.closed or timeout <= 0:
            return False
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            return False
        return self._applied_lsn() > after

    def close(self) -> None:
        """Release every waiter (shutdown); must run on the loop."""
        self.closed = True
        self._wake()

    def close_threadsafe(self) -> None:
        """``close`` from any thread (a signal handler)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.close)
