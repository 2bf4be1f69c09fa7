"""The slow-query log: queries slower than ``api.slow_query_ms`` in a bounded ring.

``GET /v1/admin/slow-queries`` lists them newest first; the ring keeps the last
``api.slow_query_log_entries``. Each slow query is also logged at WARNING
(``Slow query: <ms> ms lens=… subject=… predicate=… query_id=…``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque

from stemedb.wire import SlowQuery

log = logging.getLogger("stemedb.slow_queries")


class SlowQueryLog:
    def __init__(self, threshold_ms: float, entries: int) -> None:
        self.threshold_ms = threshold_ms
        self._ring: deque[SlowQuery] = deque(maxlen=max(1, entries))
        self._lock = threading.Lock()
        self.recorded = 0

    def observe(
        self,
        query_id: str,
        subject: str | None,
        predicate: str | None,
        lens: str,
        seconds: float,
        agent_id: str | None,
    ) -> None:
        duration_ms = seconds * 1000.0
        if duration_ms < self.threshold_ms:
            return
        entry = SlowQuery(
            query_id, subject, predicate, lens, round(duration_ms, 3), time.time(), agent_id
        )
        with self._lock:
            self._ring.append(entry)
            self.recorded += 1
        log.warning(
            "Slow query: %.1f ms lens=%s subject=%s predicate=%s agent_id=%s query_id=%s",
            duration_ms,
            lens,
            subject,
            predicate,
            agent_id or "-",
            query_id,
            extra={
                "ctx": {
                    "query_id": query_id,
                    "duration_ms": entry.duration_ms,
                    "lens": lens,
                    "agent_id": agent_id,
                }
            },
        )

    def newest_first(self) -> list[SlowQuery]:
        with self._lock:
            return list(reversed(self._ring))
