"""Shared helpers of the benchmarks: pre-signed records, percentiles, memory, fsync counting.

Benchmarks are not tests (STYLE.md rule 9): they print JSON and, with ``--plot`` and
matplotlib importable, write plots.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from stemedb.model.records import Assertion
from stemedb.model.signing import AgentKey, sign_assertion

SOURCE_CLASSES = ("regulatory", "clinical", "observational", "expert", "community", "anecdotal")


def agent_keys(count: int) -> list[AgentKey]:
    """A fixed pool of deterministic agent keys."""
    return [
        AgentKey.from_seed(hashlib.sha256(f"stemedb-bench-key-{i}".encode()).digest())
        for i in range(count)
    ]


def make_assertion(keys: Sequence[AgentKey], index: int, *, now: int, tag: str = "") -> Assertion:
    """One signed assertion; deterministic in ``index`` (unique subject/object per index)."""
    key = keys[index % len(keys)]
    return sign_assertion(
        key,
        subject=f"bench{tag}/entity-{index // 4}",
        predicate=f"attr-{index % 4}",
        object=f"value-{index}",
        confidence=0.5 + (index % 50) / 100.0,
        timestamp=now - (index % 1000),
        source_class=SOURCE_CLASSES[index % len(SOURCE_CLASSES)],  # type: ignore[arg-type]
    )


def _sign_range(args: tuple[int, int, int, int, str]) -> list[bytes]:
    import msgspec

    key_count, start, stop, now, tag = args
    keys = agent_keys(key_count)
    enc = msgspec.msgpack.Encoder()
    return [enc.encode(make_assertion(keys, i, now=now, tag=tag)) for i in range(start, stop)]


def presign(count: int, *, key_count: int = 16, tag: str = "", workers: int = 0) -> list[Assertion]:
    """``count`` signed assertions, signed in worker processes (signing is the client's cost)."""
    import msgspec

    now = int(time.time())
    workers = workers or os.cpu_count() or 1
    if count < 2000 or workers == 1:
        keys = agent_keys(key_count)
        return [make_assertion(keys, i, now=now, tag=tag) for i in range(count)]
    step = max(1000, -(-count // (workers * 4)))
    jobs = [(key_count, s, min(count, s + step), now, tag) for s in range(0, count, step)]
    dec = msgspec.msgpack.Decoder(Assertion)
    out: list[Assertion] = []
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for blobs in pool.map(_sign_range, jobs):
            out.extend(dec.decode(b) for b in blobs)
    return out


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) of already sorted values, nearest rank; 0 for no values."""
    if not sorted_values:
        return 0.0
    rank = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[rank]


def latency_summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    values = sorted(seconds)
    return {
        "count": len(values),
        "p50_ms": round(percentile(values, 0.50) * 1e3, 3),
        "p90_ms": round(percentile(values, 0.90) * 1e3, 3),
        "p99_ms": round(percentile(values, 0.99) * 1e3, 3),
        "max_ms": round((values[-1] if values else 0.0) * 1e3, 3),
    }


def memory_kib() -> dict[str, int]:
    """VmRSS (current) and VmHWM (peak resident set) of this process, from /proc."""
    out = {}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(("VmRSS:", "VmHWM:")):
                name, value = line.split(":", 1)
                out[name] = int(value.split()[0])
    except OSError:
        pass
    return {"rss_kib": out.get("VmRSS", 0), "peak_rss_kib": out.get("VmHWM", 0)}


class FsyncCounter:
    """A ``WalObserver`` that counts and times fsyncs (thread-safe enough: one writer)."""

    def __init__(self) -> None:
        self.fsyncs = 0
        self.fsync_seconds = 0.0
        self.appends = 0
        self.appended_records = 0
        self.appended_bytes = 0
        self.rotations = 0
        self.errors = 0
        self._lock = threading.Lock()

    def on_fsync(self, duration_seconds: float) -> None:
        with self._lock:
            self.fsyncs += 1
            self.fsync_seconds += duration_seconds

    def on_append(self, records: int, bytes: int) -> None:
        with self._lock:
            self.appends += 1
            self.appended_records += records
            self.appended_bytes += bytes

    def on_rotation(self) -> None:
        self.rotations += 1

    def on_fsync_error(self) -> None:
        self.errors += 1

    def reset(self) -> None:
        with self._lock:
            self.fsyncs = self.appends = self.appended_records = self.appended_bytes = 0
            self.rotations = self.errors = 0
            self.fsync_seconds = 0.0

    def summary(self, records: int) -> dict[str, Any]:
        return {
            "fsyncs": self.fsyncs,
            "fsyncs_per_record": round(self.fsyncs / records, 5) if records else 0.0,
            "fsync_mean_ms": round(self.fsync_seconds / self.fsyncs * 1e3, 4)
            if self.fsyncs
            else 0.0,
            "wal_bytes": self.appended_bytes,
            "wal_bytes_per_record": round(self.appended_bytes / records, 1) if records else 0.0,
            "rotations": self.rotations,
        }


def batch_size_distribution(batch_sizes: dict[int, int]) -> dict[str, Any]:
    """Summary of the writer's batch-size histogram (size -> number of batches)."""
    if not batch_sizes:
        return {"batches": 0}
    expanded: list[int] = []
    for size, n in sorted(batch_sizes.items()):
        expanded.extend([size] * n)
    buckets: dict[str, int] = {}
    edges = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]
    for size, n in batch_sizes.items():
        label = next((f"<={e}" for e in edges if size <= e), f">{edges[-1]}")
        buckets[label] = buckets.get(label, 0) + n
    ordered = {f"<={e}": buckets[f"<={e}"] for e in edges if f"<={e}" in buckets}
    if f">{edges[-1]}" in buckets:
        ordered[f">{edges[-1]}"] = buckets[f">{edges[-1]}"]
    return {
        "batches": len(expanded),
        "mean": round(sum(expanded) / len(expanded), 2),
        "p50": percentile(expanded, 0.5),
        "p99": percentile(expanded, 0.99),
        "max": expanded[-1],
        "histogram_batches": ordered,
    }


def try_plot(path: Path, draw: Any) -> str | None:
    """Call ``draw(plt)`` and save to ``path`` if matplotlib is importable; else None."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig = plt.figure(figsize=(8, 4.5))
    draw(plt)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return str(path)
