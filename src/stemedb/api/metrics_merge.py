"""One ``/metrics`` page from several HTTP processes' pages (``api.workers``).

Counters, histograms and summaries add up. A gauge adds up too (memory, open file
descriptors, open breakers, error counts are per process and the node's value is their
sum) unless ``GAUGE_MERGE`` says that every process reports the same node-wide value
(``max``) or the earliest one counts (``min``). A series only some processes have (the
WAL metrics, which worker 0 alone keeps) is taken from those.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Final

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

GAUGE_MERGE: Final = {
    "process_start_time_seconds": min,
    "process_max_fds": max,
    "stemedb_build_info": max,
    "stemedb_wal_segments": max,
    "stemedb_wal_disk_usage_bytes": max,
    "stemedb_wal_recovery_duration_seconds": max,
    "stemedb_tls_certificate_expiry_seconds": max,
    "stemedb_cluster_nodes": max,
    "stemedb_replication_lag_seconds": max,
}
_CREATED_SUFFIX: Final = "_created"

_SeriesKey = tuple[str, tuple[tuple[str, str], ...]]


class _Merged(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        yield from self._families


def merge_expositions(pages: Sequence[bytes]) -> bytes:
    """The text exposition of every series in ``pages``, merged as described above."""
    families: dict[str, Metric] = {}
    values: dict[str, dict[_SeriesKey, float]] = {}
    for page in pages:
        for family in text_string_to_metric_families(page.decode()):
            merged = families.get(family.name)
            if merged is None:
                merged = Metric(family.name, family.documentation, family.type, family.unit)
                families[family.name] = merged
                values[family.name] = {}
            series = values[family.name]
            combine = GAUGE_MERGE.get(family.name) if family.type == "gauge" else None
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                old = series.get(key)
                if old is None:
                    series[key] = sample.value
                elif sample.name.endswith(_CREATED_SUFFIX):
                    series[key] = min(old, sample.value)
                elif combine is not None:
                    series[key] = combine(old, sample.value)
                else:
                    series[key] = old + sample.value
    for name, merged in families.items():
        for (sample_name, labels), value in values[name].items():
            merged.add_sample(sample_name, dict(labels), value)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Merged(list(families.values())))
    return generate_latest(registry)
