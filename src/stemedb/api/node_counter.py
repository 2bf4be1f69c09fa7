"""``memory://`` rate-limit and quota counters shared by a node's HTTP processes.

With ``api.workers`` > 1 the fixed windows of ``MemoryCounter`` live in a table every
worker maps (``<data_dir>/ratelimit.counters``), so a limit holds for the node, not
for each worker. The same semantics as ``MemoryCounter`` (a window opens at a counter's
first hit and lasts the limit's window; a counter is per identifiers and limit).

The table: ``SLOTS`` slots of (key digest, count, window end), found by open addressing
from the digest (BLAKE2b of the counter's key, 8 bytes, never 0); a slot whose window
ended is reused. A lookup stops at an empty slot (slots never become empty again) or
after ``PROBES`` slots; a counter that finds no room is not counted (fail open, logged
once a minute), as the ``redis://`` storage does when it is down. Every operation holds
``flock`` on the file (``sys.shared.SharedFile``: two system calls, about 1 to 2 µs). Worker 0
empties the file at start-up: counters do not survive a restart, as with one process.
"""

from __future__ import annotations

import hashlib
import logging
import struct
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

from stemedb.api.guard.counters import MemoryCounter, Window
from stemedb.sys.shared import SharedFile

log = logging.getLogger("stemedb.api")

COUNTERS_FILE: Final = "ratelimit.counters"
SLOTS: Final = 65536
PROBES: Final = 32
FULL_LOG_SECONDS: Final = 60.0
_SLOT: Final = struct.Struct("<Qqd")  # digest, count, window end (Unix seconds)
_DIGESTS_CACHED: Final = 8192


class NodeCounter(MemoryCounter):
    def __init__(self, path: Path, *, reset: bool, clock: Callable[[], float] = time.time) -> None:
        super().__init__(clock)
        self._table = SharedFile(path, SLOTS * _SLOT.size, create=True, reset=reset)
        self._digests: dict[tuple[Any, ...], int] = {}
        self._last_full_log = 0.0

    def _digest(self, key: tuple[Any, ...]) -> int:
        digest = self._digests.get(key)
        if digest is None:
            raw = hashlib.blake2b(repr(key).encode(), digest_size=8).digest()
            digest = int.from_bytes(raw, "little") or 1
            if len(self._digests) >= _DIGESTS_CACHED:
                self._digests = {}
            self._digests[key] = digest
        return digest

    def _find(self, digest: int, now: float) -> tuple[int, int, float]:
        """(offset, count, window end) of ``digest``'s live counter, or of the slot it
        may take (window end 0), or offset -1 when there is no room."""
        table, size = self._table.map, _SLOT.size
        free = -1
        index = digest % SLOTS
        for _ in range(PROBES):
            offset = index * size
            found, count, end = _SLOT.unpack_from(table, offset)
            if found == digest and end > now:
                return offset, count, end
            if free < 0 and (found == 0 or found == digest or end <= now):
                free = offset
            if found == 0:
                break
            index = (index + 1) % SLOTS
        return free, 0, 0.0

    def _count(self, key: tuple[Any, ...], cost: int, now: float, *, only_if_left: bool) -> Window:
        """``MemoryCounter.add`` (or, ``only_if_left``, ``take``) on the table; the
        caller holds the lock."""
        amount: int = key[0]
        digest = self._digest(key)
        offset, count, end = self._find(digest, now)
        if offset < 0:
            self._full()
            return Window(True, amount, amount, now + key[1])
        if end == 0.0:  # no live window: this hit opens one
            if only_if_left and amount <= 0:
                return Window(False, amount, 0, now)
            count, end = cost, now + key[1]
        elif only_if_left and count >= amount:
            return Window(False, amount, 0, end)
        else:
            count += cost
        _SLOT.pack_into(self._table.map, offset, digest, count, end)
        remaining = amount - count
        if only_if_left:
            return Window(True, amount, max(remaining, 0), end)
        if remaining < 0:
            return Window(False, amount, 0, end)
        return Window(True, amount, remaining, end)

    def _full(self) -> None:
        now = time.monotonic()
        if now - self._last_full_log >= FULL_LOG_SECONDS:
            self._last_full_log = now
            log.error(
                "Error: UnavailableError: the shared rate-limit table is full; a counter"
                " was let through uncounted"
            )

    # -- MemoryCounter's interface, across processes ---------------------------------

    def add(self, key: tuple[Any, ...], cost: int = 1) -> Window:
        now = self._clock()
        with self._table:
            return self._count(key, cost, now, only_if_left=False)

    def add_each(self, keys: Sequence[tuple[Any, ...]]) -> tuple[int, Window]:
        now = self._clock()
        tightest: Window | None = None
        with self._table:
            for index, key in enumerate(keys):
                window = self._count(key, 1, now, only_if_left=False)
                if not window.allowed:
                    return index, window
                if tightest is None or window.remaining < tightest.remaining:
                    tightest = window
        assert tightest is not None
        return -1, tightest

    def take(self, key: tuple[Any, ...], cost: int) -> Window:
        now = self._clock()
        with self._table:
            return self._count(key, cost, now, only_if_left=True)

    def look(self, key: tuple[Any, ...]) -> Window:
        now = self._clock()
        amount: int = key[0]
        with self._table:
            offset, count, end = self._find(self._digest(key), now)
        if offset < 0 or end == 0.0:
            return Window(amount > 0, amount, amount, now)
        remaining = amount - count
        if remaining > 0:
            return Window(True, amount, remaining, end)
        return Window(False, amount, 0, end)

    async def close(self) -> None:
        self._table.close()
