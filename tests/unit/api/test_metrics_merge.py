"""``/metrics`` of several HTTP workers: counters and histograms add up, node-wide gauges
do not, a series only one worker has is kept, and promtool-valid text comes out."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from stemedb.api.metrics_merge import merge_expositions


def page(requests: int, observed: list[float], memory: float, segments: int, wal: bool) -> bytes:
    r = CollectorRegistry()
    counter = Counter("stemedb_http_requests_total", "Requests.", ["path"], registry=r)
    counter.labels("/v1/query").inc(requests)
    histogram = Histogram(
        "stemedb_query_latency_seconds", "Latency.", buckets=(0.1, 1.0), registry=r
    )
    for value in observed:
        histogram.observe(value)
    Gauge("process_resident_memory_bytes", "Memory.", registry=r).set(memory)
    Gauge("stemedb_wal_segments", "Segments.", registry=r).set(segments)
    if wal:
        Counter("stemedb_wal_writes_total", "WAL records.", registry=r).inc(7)
    return generate_latest(r)


def values(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(text.decode())
        for s in f.samples
        if not s.name.endswith("_created")
    }


def test_counters_histograms_and_per_process_gauges_add_up() -> None:
    merged = values(
        merge_expositions(
            [
                page(3, [0.05, 2.0], 100.0, 4, wal=True),
                page(5, [0.5], 50.0, 4, wal=False),
            ]
        )
    )
    assert merged[("stemedb_http_requests_total", (("path", "/v1/query"),))] == 8
    assert merged[("stemedb_query_latency_seconds_bucket", (("le", "0.1"),))] == 1
    assert merged[("stemedb_query_latency_seconds_bucket", (("le", "1.0"),))] == 2
    assert merged[("stemedb_query_latency_seconds_bucket", (("le", "+Inf"),))] == 3
    assert merged[("stemedb_query_latency_seconds_count", ())] == 3
    assert merged[("stemedb_query_latency_seconds_sum", ())] == pytest.approx(2.55)
    assert merged[("process_resident_memory_bytes", ())] == 150.0


def test_node_wide_gauges_are_not_multiplied_and_lone_series_are_kept() -> None:
    merged = values(
        merge_expositions(
            [
                page(1, [], 1.0, 4, wal=True),
                page(1, [], 1.0, 4, wal=False),
            ]
        )
    )
    assert merged[("stemedb_wal_segments", ())] == 4
    assert merged[("stemedb_wal_writes_total", ())] == 7


def test_one_page_comes_out_as_it_went_in() -> None:
    one = page(3, [0.05], 10.0, 2, wal=True)
    assert values(merge_expositions([one])) == values(one)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_the_merged_page_passes_promtool() -> None:
    merged = merge_expositions([page(3, [0.05], 1.0, 2, True), page(2, [0.5], 1.0, 2, False)])
    check = subprocess.run(
        ["promtool", "check", "metrics"], input=merged, capture_output=True, check=False
    )
    assert check.returncode == 0, check.stderr.decode() + check.stdout.decode()
