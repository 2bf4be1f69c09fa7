"""The server's WAL archiver (``[archive] enabled``) and its metrics.

Metrics (only when the archiver runs), read at scrape time:

- ``stemedb_wal_archive_lag_segments`` (gauge): sealed local WAL segments with records
  that are not archived yet. 0 when the archiver keeps up; alert when it stays > 0.
- ``stemedb_wal_archive_archived_lsn`` (gauge): every LSN up to this one is archived
  without a gap (the point a restore from the archive reaches).
- ``stemedb_wal_archive_gaps`` (gauge): gaps found in the archive by the last pass.
- ``stemedb_wal_archive_last_success_timestamp_seconds`` (gauge): unix time of the last
  pass that finished without an error.
- ``stemedb_wal_archive_failures_total`` / ``stemedb_wal_archive_segments_total``
  (counters): failed passes; segments shipped.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from stemedb.config import Config
from stemedb.engine import Engine
from stemedb.errors import ValidationError
from stemedb.ops.archive.archiver import BackgroundArchiver


class ArchiveCollector(Collector):
    def __init__(self, archiver: BackgroundArchiver) -> None:
        self._archiver = archiver

    def collect(self) -> Iterator[Metric]:
        status = self._archiver.status
        yield GaugeMetricFamily(
            "stemedb_wal_archive_lag_segments",
            "Sealed WAL segments not archived yet.",
            value=self._archiver.lag_segments(),
        )
        yield GaugeMetricFamily(
            "stemedb_wal_archive_archived_lsn",
            "Every LSN up to this one is in the WAL archive without a gap.",
            value=status.archived_through_lsn,
        )
        yield GaugeMetricFamily(
            "stemedb_wal_archive_gaps",
            "Gaps in the WAL archive found by the last archiver pass.",
            value=status.gaps,
        )
        yield GaugeMetricFamily(
            "stemedb_wal_archive_last_success_timestamp_seconds",
            "Unix time of the last WAL archiver pass without an error.",
            value=status.last_success_at,
        )
        yield CounterMetricFamily(
            "stemedb_wal_archive_failures",
            "WAL archiver passes that failed.",
            value=status.failed_passes,
        )
        yield CounterMetricFamily(
            "stemedb_wal_archive_segments",
            "WAL segments shipped to the archive.",
            value=status.segments_shipped,
        )


def check_archive_config(config: Config) -> None:
    """Refuse ``[archive] enabled`` without an archive base (at app creation)."""
    if config.archive.enabled and not config.archive.s3_url:
        raise ValidationError(
            "archive.s3_url",
            "required when archive.enabled",
            "[archive] enabled = true needs archive.s3_url (s3://bucket/prefix or a directory)",
        )


def start_archiver(
    config: Config, engine: Engine, registry: CollectorRegistry
) -> BackgroundArchiver | None:
    """Start the archiver and register its metrics if ``[archive] enabled``."""
    if not config.archive.enabled:
        return None
    check_archive_config(config)
    archiver = BackgroundArchiver(
        engine.wal,
        config.data_dir,
        config.archive.s3_url,
        interval_seconds=config.archive.interval_seconds,
        keep_local=config.archive.keep_local,
    )
    registry.register(ArchiveCollector(archiver))
    archiver.start()
    return archiver


__all__ = ["ArchiveCollector", "check_archive_config", "start_archiver"]
