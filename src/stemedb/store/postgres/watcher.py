"""Cross-node notifications: a thread that learns about every node's commits.

It holds a connection of its own to the primary doing ``LISTEN stemedb_commit`` (every
batch sends ``NOTIFY stemedb_commit, '<its last LSN>'`` inside its transaction, so the
notification is delivered right after the COMMIT). On a notification, and at the latest
every ``poll_ms`` whether one came or not, it calls ``catch_up(notified_lsn)``: the
store reads what changed since it last caught up and refreshes its memory state and
result cache. The poll bounds the staleness when notifications are lost (a dropped
connection, a failover: ``NOTIFY`` is not replicated, and a notification sent while the
watcher reconnects is never seen): a node reflects another node's commit at most
``poll_ms`` (+ one catch-up query) after it became visible on its read connections.
After a connection error the watcher reconnects (the DSN finds the new primary) with a
backoff up to ``poll_ms`` and catches up at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Final

import psycopg

from stemedb.store.postgres.apply import NOTIFY_CHANNEL
from stemedb.store.postgres.connection import Conn, connect

log = logging.getLogger("stemedb.store.postgres")

DEFAULT_POLL_MS: Final = 1000
MIN_BACKOFF_SECONDS: Final = 0.05
STOP_CHECK_SECONDS: Final = 0.2  # how soon ``stop()`` is seen while waiting


class Watcher:
    """``start()`` runs the thread; ``stop()`` ends it within ``STOP_CHECK_SECONDS``."""

    def __init__(self, dsn: str, catch_up: Callable[[int], None], *, poll_ms: int) -> None:
        self._dsn = dsn
        self._catch_up = catch_up
        self._poll = max(poll_ms, 10) / 1000.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stemedb-pg-watcher", daemon=True)
        self.connected = threading.Event()
        self.reconnects = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=STOP_CHECK_SECONDS + 10.0)

    def _run(self) -> None:
        backoff = MIN_BACKOFF_SECONDS
        while not self._stop.is_set():
            conn: Conn | None = None
            try:
                conn = connect(self._dsn)
                conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                self.connected.set()
                backoff = MIN_BACKOFF_SECONDS
                self._safe_catch_up(0)  # whatever was missed while (re)connecting
                self._listen(conn)
            except psycopg.Error as exc:
                self.connected.clear()
                self.reconnects += 1
                log.warning("commit watcher: %s; reconnecting", exc)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self._poll)
            finally:
                if conn is not None:
                    conn.close()

    def _listen(self, conn: Conn) -> None:
        deadline = time.monotonic() + self._poll
        while not self._stop.is_set():
            notified = 0
            wait = min(max(deadline - time.monotonic(), 0.0), STOP_CHECK_SECONDS)
            for notify in conn.notifies(timeout=wait, stop_after=1):
                notified = max(notified, _lsn_of(notify.payload))
            if notified:  # drain a burst of commits without waiting
                for notify in conn.notifies(timeout=0.0):
                    notified = max(notified, _lsn_of(notify.payload))
            if notified or time.monotonic() >= deadline:
                self._safe_catch_up(notified)
                deadline = time.monotonic() + self._poll

    def _safe_catch_up(self, notified: int) -> None:
        try:
            self._catch_up(notified)
        except Exception:  # the store translates its errors; keep the thread alive
            log.exception("commit watcher: catching up failed (retried at the next poll)")


def _lsn_of(payload: str) -> int:
    try:
        return int(payload)
    except ValueError:
        return 0
