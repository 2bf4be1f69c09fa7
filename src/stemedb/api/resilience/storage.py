"""Storage calls made by the API: timed, counted, and guarded by circuit breakers.

Every store read the API makes (``ApiState.offload`` and the on-loop single query) and
every write it hands to the engine goes through a ``StorageGuard``, which

- observes ``stemedb_storage_operation_duration_seconds``, ``..._operations_total`` and
  ``..._operation_errors_total`` by ``operation`` (the call, e.g. ``query``, ``trace``,
  ``write``) and ``backend`` (``sqlite``, ``postgres``); in cluster mode a failure is
  also counted in ``stemedb_postgres_errors_total`` by ``operation``;
- bounds an offloaded read by ``resilience.timeout_ms`` (``StorageError`` code
  ``storage_timeout``; the thread finishes in the background);
- keeps one ``CircuitBreaker`` for reads and one for writes (``[resilience]``, the state
  machine of ``api.resilience.breaker``): after
  ``failure_threshold`` consecutive storage failures the breaker opens and calls fail
  at once with 503 ``StorageError`` code ``storage_circuit_open`` (retryable, with
  ``Retry-After``) for ``reset_timeout_ms``; then one trial call goes through
  (half-open): success closes the breaker, failure opens it again. Reads and writes
  are separate so a full disk (writes fail) does not take reads down.

Only storage failures count: ``StorageError`` other than ``ReadOnlyError`` (a node
made read-only by a failed fsync already refuses writes at once). A validation error
or a 404 is a working storage answering.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Executor
from functools import partial
from typing import Any, Final, TypeVar

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from stemedb.api.resilience.breaker import CLOSED, Breaker
from stemedb.config import ResilienceConfig
from stemedb.errors import ReadOnlyError, StemeError, StorageError

T = TypeVar("T")

log = logging.getLogger("stemedb.resilience")

BREAKER_OPEN_CODE: Final = "storage_circuit_open"
STORAGE_TIMEOUT_CODE: Final = "storage_timeout"
STORAGE_BUCKETS_SECONDS: Final = (
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
    5.0,
)


def is_storage_failure(exc: BaseException) -> bool:
    """Does ``exc`` say the storage backend failed (as opposed to refusing a request)?"""
    return (
        isinstance(exc, StorageError)
        and not isinstance(exc, ReadOnlyError)
        and exc.code not in (BREAKER_OPEN_CODE, "writer_restarting")
    )


class CircuitBreaker:
    """A storage breaker: the state machine of ``api.resilience.breaker`` behind a lock
    (reads run on several threads), with its log lines and ``snapshot``."""

    def __init__(
        self,
        name: str,
        *,
        enabled: bool,
        threshold: int,
        reset_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.enabled = enabled
        self.threshold = max(1, threshold)
        self.reset_seconds = max(0.0, reset_seconds)
        self._clock = clock
        self._lock = threading.Lock()
        self._breaker = Breaker()
        self.last_error: str | None = None
        self.opened_total = 0

    @property
    def state(self) -> str:
        with self._lock:
            return self._breaker.state(self._clock(), self.reset_seconds)

    def retry_after_seconds(self) -> float:
        with self._lock:
            return self._breaker.retry_after(self._clock(), self.reset_seconds)

    def admit(self) -> None:
        """Raise ``StorageError(storage_circuit_open)`` unless a call may go ahead."""
        if not self.enabled:
            return
        with self._lock:
            now = self._clock()
            if self._breaker.admit(now, self.reset_seconds) != "refused":
                return
            wait = max(1.0, self._breaker.retry_after(now, self.reset_seconds))
        raise StorageError(
            f"storage {self.name}s are failing: the circuit breaker opened after"
            f" {self.threshold} consecutive failures (last: {self.last_error});"
            f" retry in {wait:.0f}s",
            code=BREAKER_OPEN_CODE,
            details={"breaker": self.name, "retry_after_seconds": int(wait + 0.999)},
        )

    def record_success(self) -> None:
        if not self.enabled:
            return
        with self._lock:
            was_open = self._breaker.succeed()
        if was_open:
            log.warning("storage circuit breaker (%s) closed: storage answers again", self.name)

    def release_trial(self) -> None:
        """A half-open trial ended without telling anything (e.g. it was cancelled)."""
        with self._lock:
            self._breaker.release_trial()

    def record_failure(self, error: BaseException) -> None:
        if not self.enabled:
            return
        message = f"{getattr(error, 'code', type(error).__name__)}: {error}"
        with self._lock:
            self.last_error = message
            if not self._breaker.fail(self._clock(), self.threshold):
                return
            self.opened_total += 1
            failures = self._breaker.failures
        log.error(
            "Error: StorageError: storage circuit breaker (%s) open for %.1fs after %d"
            " consecutive failures; last: %s",
            self.name,
            self.reset_seconds,
            failures,
            message,
            extra={
                "ctx": {
                    "error_type": "StorageError",
                    "code": BREAKER_OPEN_CODE,
                    "breaker": self.name,
                }
            },
        )

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            breaker = self._breaker
            return {
                "name": self.name,
                "enabled": self.enabled,
                "state": breaker.state(self._clock(), self.reset_seconds)
                if self.enabled
                else CLOSED,
                "consecutive_failures": breaker.failures,
                "failure_threshold": self.threshold,
                "reset_timeout_ms": int(self.reset_seconds * 1000),
                "last_error": self.last_error,
                "opened_total": self.opened_total,
            }


class StorageMetrics:
    """The ``stemedb_storage_*`` metrics of API.md, plus each breaker's state."""

    def __init__(
        self, registry: CollectorRegistry, backend: str, postgres_errors: Counter | None = None
    ) -> None:
        self.backend = backend
        self.postgres_errors = postgres_errors  # cluster mode: also counted by operation
        self.duration = Histogram(
            "stemedb_storage_operation_duration_seconds",
            "Duration of storage calls made by the API, by operation and backend.",
            ["operation", "backend"],
            buckets=STORAGE_BUCKETS_SECONDS,
            registry=registry,
        )
        self.operations = Counter(
            "stemedb_storage_operations_total",
            "Storage calls made by the API, by operation and backend.",
            ["operation", "backend"],
            registry=registry,
        )
        self.errors = Counter(
            "stemedb_storage_operation_errors_total",
            "Storage calls that failed (StorageError), by operation and backend.",
            ["operation", "backend"],
            registry=registry,
        )
        self._children: dict[str, tuple[Histogram, Counter, Counter]] = {}

    def observe(self, operation: str, seconds: float, failed: bool) -> None:
        children = self._children.get(operation)
        if children is None:
            children = (
                self.duration.labels(operation, self.backend),
                self.operations.labels(operation, self.backend),
                self.errors.labels(operation, self.backend),  # exposed at 0 from the start
            )
            self._children[operation] = children
        children[0].observe(seconds)
        children[1].inc()
        if failed:
            children[2].inc()
            if self.postgres_errors is not None:
                self.postgres_errors.labels(operation).inc()


class _BreakerCollector(Collector):
    def __init__(self, breakers: tuple[CircuitBreaker, ...]) -> None:
        self._breakers = breakers

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "stemedb_storage_circuit_open",
            "1 while the storage circuit breaker refuses calls (open or half-open), else 0.",
            labels=["breaker"],
        )
        for breaker in self._breakers:
            family.add_metric([breaker.name], 0 if breaker.state == CLOSED else 1)
        yield family


class StorageGuard:
    def __init__(
        self,
        config: ResilienceConfig,
        registry: CollectorRegistry,
        *,
        backend: str = "sqlite",
        postgres_errors: Counter | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        def breaker(name: str) -> CircuitBreaker:
            return CircuitBreaker(
                name,
                enabled=config.enable_circuit_breaker,
                threshold=config.failure_threshold,
                reset_seconds=config.reset_timeout_ms / 1000.0,
                clock=clock,
            )

        self.reads = breaker("read")
        self.writes = breaker("write")
        self.timeout_seconds = config.timeout_ms / 1000.0 if config.timeout_ms > 0 else None
        self.metrics = StorageMetrics(registry, backend, postgres_errors)
        registry.register(_BreakerCollector((self.reads, self.writes)))

    def breakers(self) -> list[dict[str, Any]]:
        return [self.reads.snapshot(), self.writes.snapshot()]

    def settle(
        self, breaker: CircuitBreaker, operation: str, started: float, error: BaseException | None
    ) -> None:
        failed = error is not None and is_storage_failure(error)
        self.metrics.observe(operation, time.perf_counter() - started, failed)
        if failed:
            assert error is not None
            breaker.record_failure(error)
        elif error is None or (
            isinstance(error, StemeError) and not isinstance(error, StorageError)
        ):
            breaker.record_success()  # the storage answered (a 404 or a bad record too)
        else:
            breaker.release_trial()  # cancelled, or refused without asking the storage

    def read(self, operation: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a store read on this thread (the loop's fast path)."""
        self.reads.admit()
        started = time.perf_counter()
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            self.settle(self.reads, operation, started, exc)
            raise
        self.settle(self.reads, operation, started, None)
        return result

    async def read_offloaded(
        self,
        executor: Executor | None,
        operation: str,
        fn: Callable[..., T],
        *args: Any,
        **kwargs: Any,
    ) -> T:
        """Run a store read on ``executor``, bounded by ``resilience.timeout_ms``."""
        self.reads.admit()
        loop = asyncio.get_running_loop()
        call = partial(fn, *args, **kwargs) if kwargs else partial(fn, *args)
        started = time.perf_counter()
        try:
            future = loop.run_in_executor(executor, call)
            if self.timeout_seconds is None:
                result = await future
            else:
                try:
                    result = await asyncio.wait_for(future, self.timeout_seconds)
                except TimeoutError:
                    raise StorageError(
                        f"storage {operation} took longer than resilience.timeout_ms"
                        f" ({self.timeout_seconds * 1000:.0f} ms)",
                        code=STORAGE_TIMEOUT_CODE,
                    ) from None
        except BaseException as exc:
            self.settle(self.reads, operation, started, exc)
            raise
        self.settle(self.reads, operation, started, None)
        return result

    async def write(self, operation: str, call: Callable[[], Awaitable[T]]) -> T:
        """Await an engine write; a StorageError it raises counts for the write breaker."""
        self.writes.admit()
        started = time.perf_counter()
        try:
            result = await call()
        except BaseException as exc:
            self.settle(self.writes, operation, started, exc)
            raise
        self.settle(self.writes, operation, started, _first_storage_failure(result))
        return result


def _first_storage_failure(result: object) -> BaseException | None:
    """A batch write answers per item: the first storage failure among them, if any."""
    if isinstance(result, list):
        for item in result:
            if isinstance(item, BaseException) and is_storage_failure(item):
                return item
    return None
