"""``stemedb_quarantine_pending`` and ``stemedb_quarantined_total{reason}`` (API.md
"Metrics"; ADR 0023), read from the store's quarantine table at scrape time.

Registered by the process that owns the WAL (worker 0) only: the values are the node's
(the store's), so the other workers do not report them and the merged ``/metrics`` of
several workers does not add them up."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from stemedb.errors import StemeError
from stemedb.model.records import QUARANTINE_REASONS


class QuarantineCollector(Collector):
    def __init__(self, read: Callable[[], dict[tuple[str, str], int]]) -> None:
        self._read = read

    def collect(self) -> Iterator[Metric]:
        try:
            counts = self._read()
        except StemeError:  # the store is down: its own metrics say so
            return
        pending = GaugeMetricFamily(
            "stemedb_quarantine_pending",
            "Quarantined assertions waiting for an admin's approve or reject.",
            value=sum(n for (_, status), n in counts.items() if status == "pending"),
        )
        total = CounterMetricFamily(
            "stemedb_quarantined",
            "Assertions the screening step quarantined, by reason (any review since).",
            labels=["reason"],
        )
        for reason in QUARANTINE_REASONS:
            total.add_metric([reason], sum(n for (r, _), n in counts.items() if r == reason))
        yield pending
        yield total
