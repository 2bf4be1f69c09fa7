"""Prometheus metrics of one app (API.md "Metrics"), on a per-app CollectorRegistry.

Label children are cached in dicts so the per-request cost is a dict lookup plus an
increment. The ``agent`` label names the top ``api.metrics_top_agents`` agents by
volume (``api.observability.top_agents``) and folds the rest into ``"_other"``; no agent is ``""``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Final

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from stemedb.api.observability.top_agents import TopAgents
from stemedb.errors import ERROR_TYPES
from stemedb.wire import ClusterNode, Standby

DEFAULT_TOP_AGENTS: Final = 100
LATENCY_BUCKETS_SECONDS: Final = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
FSYNC_BUCKETS_SECONDS: Final = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    1.0,
)
BATCH_SIZE_BUCKETS: Final = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048)
CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"


class _CacheCollector(Collector):
    """Cache hit/miss counters read from the store at scrape time."""

    def __init__(self, read: Callable[[], dict[str, tuple[int, int]]]) -> None:
        self._read = read

    def collect(self) -> Iterator[Metric]:
        hits = CounterMetricFamily("stemedb_cache_hits", "Cache hits.", labels=["cache"])
        misses = CounterMetricFamily("stemedb_cache_misses", "Cache misses.", labels=["cache"])
        for name, (hit, miss) in self._read().items():
            hits.add_metric([name], hit)
            misses.add_metric([name], miss)
        yield hits
        yield misses


class _AuditCollector(Collector):
    """The query audit log's pruned and dropped rows, read at scrape time."""

    def __init__(self, read: Callable[[], tuple[int, int]]) -> None:
        self._read = read

    def collect(self) -> Iterator[Metric]:
        pruned, dropped = self._read()
        yield CounterMetricFamily(
            "stemedb_audit_queries_pruned",
            "Audited queries deleted by the audit.retention_days retention.",
            value=pruned,
        )
        yield CounterMetricFamily(
            "stemedb_audit_records_dropped",
            "Audit records lost: buffer full or a failed flush to audit.sqlite.",
            value=dropped,
        )


class AssertionCount(Collector):
    """``stemedb_assertions_total``: assertions in the store. API.md calls it a gauge,
    but a gauge named ``*_total`` fails ``promtool check metrics``, which API.md also
    requires; the store is append-only, so the count never falls and is exposed as a
    counter (set from the store at start-up, then counted up by the write routes)."""

    def __init__(self) -> None:
        self.value = 0

    def set(self, value: int) -> None:
        self.value = value

    def inc(self, amount: int = 1) -> None:
        self.value += amount

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "stemedb_assertions", "Assertions in the store.", value=self.value
        )


class Metrics:
    def __init__(
        self, version: str, *, top_agents: int = DEFAULT_TOP_AGENTS, cluster: bool = False
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        # Cluster mode only (storage.backend = "postgres"): exposed when ``cluster``.
        c = r if cluster else None
        self.cluster_nodes = Gauge(
            "stemedb_cluster_nodes",
            "Nodes in the cluster's node registry with a recent heartbeat.",
            registry=c,
        )
        self.replication_lag = Gauge(
            "stemedb_replication_lag_seconds",
            "Replication lag of each PostgreSQL standby, seconds.",
            ["standby"],
            registry=c,
        )
        self.postgres_errors = Counter(
            "stemedb_postgres_errors_total",
            "Failed PostgreSQL operations of this node (cluster mode), by operation.",
            ["operation"],
            registry=c,
        )
        # process_resident_memory_bytes, open fds, CPU: the MemoryExhaustion alert uses them.
        ProcessCollector(registry=r)
        self.http_requests = Counter(
            "stemedb_http_requests_total",
            "HTTP requests by method, route template, status and agent.",
            ["method", "path", "status", "agent"],
            registry=r,
        )
        self.http_duration = Histogram(
            "stemedb_http_request_duration_seconds",
            "HTTP request duration by method and route template.",
            ["method", "path"],
            buckets=LATENCY_BUCKETS_SECONDS,
            registry=r,
        )
        self.errors_by_type = Gauge(
            "stemedb_error_count_by_type",
            "Error answers so far, by envelope error type (cumulative count).",
            ["error_type"],
            registry=r,
        )
        for error_type in ERROR_TYPES:
            self.errors_by_type.labels(error_type)
        self.assertions_ingested = Counter(
            "stemedb_assertions_ingested_total", "Assertions newly stored via the API.", registry=r
        )
        self.assertions_total = AssertionCount()
        r.register(self.assertions_total)
        self.queries = Counter(
            "stemedb_queries_total",
            "Queries by endpoint and lens.",
            ["endpoint", "lens"],
            registry=r,
        )
        self.query_latency = Histogram(
            "stemedb_query_latency_seconds",
            "Query latency by endpoint and lens.",
            ["endpoint", "lens"],
            buckets=LATENCY_BUCKETS_SECONDS,
            registry=r,
        )
        self.wal = WalMetrics(r)
        self.rate_limited = Counter(
            "stemedb_rate_limited_total",
            "Requests refused by a limit.",
            ["path", "scope"],
            registry=r,
        )
        self.process_restarts = Counter(
            "stemedb_process_restarts_total",
            "Crashed processes of the node replaced: the writer process, an HTTP worker.",
            ["process"],
            registry=r,
        )
        for process in ("writer", "http_worker"):  # exposed at 0 from the start
            self.process_restarts.labels(process)
        self.breakers_open = Gauge(
            "stemedb_circuit_breakers_open", "Open per-agent circuit breakers.", registry=r
        )
        self.build_info = Gauge("stemedb_build_info", "Build information.", ["version"], registry=r)
        self.unauthenticated_network = Gauge(
            "stemedb_unauthenticated_network",
            "1 while API keys are off and [api] allow_unauthenticated_network opens the node"
            " to non-loopback clients.",
            registry=r,
        )
        self.build_info.labels(version).set(1)
        self._request_children: dict[tuple[str, str, int, str], Counter] = {}
        self._duration_children: dict[tuple[str, str], Histogram] = {}
        self._query_children: dict[tuple[str, str], tuple[Counter, Histogram]] = {}
        self.top_agents = TopAgents(top_agents)

    def observe_cluster(self, nodes: list[ClusterNode], standbys: list[Standby]) -> None:
        """Cluster mode, after each heartbeat: the healthy nodes and each standby's lag
        (a standby that is gone, or whose lag is unknown, has no series)."""
        self.cluster_nodes.set(sum(1 for node in nodes if node.healthy))
        self.replication_lag.clear()
        for standby in standbys:
            if standby.lag_seconds is not None:
                self.replication_lag.labels(standby.name).set(standby.lag_seconds)

    def watch_caches(self, read: Callable[[], dict[str, tuple[int, int]]]) -> None:
        self.registry.register(_CacheCollector(read))

    def watch_audit(self, read: Callable[[], tuple[int, int]]) -> None:
        self.registry.register(_AuditCollector(read))

    def agent_label(self, agent: str | None) -> str:
        label, dropped = self.top_agents.label(agent)
        if dropped:
            self._drop_agents(set(dropped))
        return label

    def _drop_agents(self, agents: set[str]) -> None:
        """Remove the series of agents that fell out of the top N."""
        for key in [k for k in self._request_children if k[3] in agents]:
            del self._request_children[key]
            self.http_requests.remove(key[0], key[1], str(key[2]), key[3])

    def observe_request(
        self, method: str, path: str, status: int, agent: str | None, seconds: float
    ) -> None:
        key = (method, path, status, self.agent_label(agent))
        counter = self._request_children.get(key)
        if counter is None:
            counter = self.http_requests.labels(method, path, str(status), key[3])
            self._request_children[key] = counter
        counter.inc()
        dkey = (method, path)
        histogram = self._duration_children.get(dkey)
        if histogram is None:
            histogram = self.http_duration.labels(method, path)
            self._duration_children[dkey] = histogram
        histogram.observe(seconds)

    def observe_error(self, error_type: str) -> None:
        self.errors_by_type.labels(error_type).inc()

    def observe_query(self, endpoint: str, lens: str, seconds: float) -> None:
        key = (endpoint, lens)
        children = self._query_children.get(key)
        if children is None:
            children = (
                self.queries.labels(endpoint, lens),
                self.query_latency.labels(endpoint, lens),
            )
            self._query_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class WalMetrics:
    """The ``stemedb_wal_*`` metrics; also the engine's ``WalObserver``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.fsync_duration = Histogram(
            "stemedb_wal_fsync_duration_seconds",
            "WAL fdatasync duration.",
            buckets=FSYNC_BUCKETS_SECONDS,
            registry=r,
        )
        self.fsync_errors = Counter(
            "stemedb_wal_fsync_errors_total", "Failed WAL fsyncs (fatal for writes).", registry=r
        )
        self.writes = Counter("stemedb_wal_writes_total", "WAL records appended.", registry=r)
        self.bytes_written = Counter(
            "stemedb_wal_bytes_written_total", "WAL bytes appended.", registry=r
        )
        self.batch_size = Histogram(
            "stemedb_wal_batch_size",
            "Records per group commit.",
            buckets=BATCH_SIZE_BUCKETS,
            registry=r,
        )
        self.rotations = Counter(
            "stemedb_wal_rotations_total", "WAL segment rotations.", registry=r
        )
        self.segments = Gauge("stemedb_wal_segments", "WAL segment files.", registry=r)
        self.disk_usage = Gauge(
            "stemedb_wal_disk_usage_bytes", "Bytes in WAL segment files.", registry=r
        )
        self.recovery_duration = Gauge(
            "stemedb_wal_recovery_duration_seconds",
            "Time the last start-up spent opening the WAL and replaying it.",
            registry=r,
        )

    # -- WalObserver (called on the writer thread) -------------------------------------

    def on_fsync(self, duration_seconds: float) -> None:
        self.fsync_duration.observe(duration_seconds)

    def on_append(self, records: int, bytes: int) -> None:
        self.writes.inc(records)
        self.bytes_written.inc(bytes)
        self.batch_size.observe(records)

    def on_rotation(self) -> None:
        self.rotations.inc()

    def on_fsync_error(self) -> None:
        self.fsync_errors.inc()
